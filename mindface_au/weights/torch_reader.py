"""Read a `torch.save` checkpoint into numpy arrays without PyTorch and without running pickled code.

A `.pth` written by `torch.save` is a zip archive: `<top>/data.pkl` is a pickle describing the object and
`<top>/data/<key>` holds the raw bytes of each tensor storage. Unpickling with the standard unpickler runs
whatever the file asks for, so `_RestrictedUnpickler.find_class` allows only the few globals that rebuild
tensors and dicts, maps them to local functions, and refuses everything else. Plain containers and numbers
(optimiser and scheduler state) need no globals. Tensors are checked while unpickling but their bytes are read
only for the part of the object a caller keeps (`read_torch_file(select=...)`), so a training checkpoint's
optimiser state costs no memory. Legacy (pre-1.6, non-zip) torch files are refused without being unpickled.
"""

import collections
import io
import os
import pickle
import zipfile
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from mindface_au.errors import UserError

__all__ = ["read_torch_file", "is_tensor", "is_torch_file"]

# torch storage class name -> numpy dtype of its bytes ("bfloat16" is widened to float32 on read)
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(np.uint16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}
_LEGACY_HINT = "re-save it with torch.save(obj, path, _use_new_zipfile_serialization=True)"


class _StorageType:
    """Stands in for torch.FloatStorage & co.: only carries the storage's element type."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = dtype


class _StorageRef:
    """Opaque handle returned by persistent_load; the storage's zip entry and type stay in the unpickler's table."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class LazyTensor:
    """A checked tensor whose bytes are not read yet (`read_torch_file` turns the kept ones into numpy arrays)."""

    __slots__ = ("key", "offset", "shape", "stride")

    def __init__(self, key: str, offset: int, shape: Tuple[int, ...], stride: Tuple[int, ...]) -> None:
        self.key, self.offset, self.shape, self.stride = key, offset, shape, stride


def is_tensor(value: Any) -> bool:
    """True for a tensor read by this module (a numpy array, or a LazyTensor before `read_torch_file` returns)."""
    return isinstance(value, (np.ndarray, LazyTensor))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can build only dicts, OrderedDicts, tuples, lists, scalars and tensors (as numpy arrays)."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: str, big_endian: bool) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._source = source
        self._big_endian = big_endian
        self._storages: Dict[str, Tuple[zipfile.ZipInfo, _StorageType, int]] = {}  # checked, not read
        self._arrays: Dict[str, np.ndarray] = {}  # storages read so far
        self._allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter,
        }

    # -- pickle hooks -------------------------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise UserError(f"{self._source}: refusing to unpickle {module}.{name} (only tensors and dicts are allowed)")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UserError(f"{self._source}: unsupported persistent id {str(pid)[:60]!r} in data.pkl")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not key.isalnum():
            raise UserError(f"{self._source}: malformed storage reference {str(pid)[:60]!r} in data.pkl")
        if key not in self._storages:
            self._storages[key] = self._check_storage(key, storage_type, numel)
        return _StorageRef(key)

    # -- tensor rebuilding --------------------------------------------------------------------------------------
    def _check_storage(self, key: str, storage_type: _StorageType, numel: Any) -> Tuple[zipfile.ZipInfo, Any, int]:
        name = f"{self._prefix}data/{key}"
        try:
            info = self._archive.getinfo(name)
        except KeyError:
            raise UserError(f"{self._source}: storage {name} named in data.pkl is missing from the archive") from None
        dtype = storage_type.dtype
        if not isinstance(numel, int) or numel < 0 or info.file_size != numel * dtype.itemsize:
            raise UserError(
                f"{self._source}: storage {name} holds {info.file_size} bytes, expected {numel} x {dtype.itemsize}"
            )
        return info, storage_type, numel

    def _read_storage(self, key: str) -> np.ndarray:
        if key in self._arrays:
            return self._arrays[key]
        info, storage_type, _ = self._storages[key]
        name, dtype = info.filename, storage_type.dtype
        buffer = bytearray(info.file_size)
        with self._archive.open(info) as handle:
            if handle.readinto(buffer) != info.file_size:
                raise UserError(f"{self._source}: storage {name} is truncated")
        array = np.frombuffer(buffer, dtype=dtype.newbyteorder(">") if self._big_endian else dtype)
        if self._big_endian:
            array = array.astype(dtype)
        if storage_type.name == "BFloat16Storage":  # bfloat16 = the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        self._arrays[key] = array
        return array

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> LazyTensor:
        if type(storage) is not _StorageRef or storage.key not in self._storages:
            raise UserError(f"{self._source}: tensor without a storage in data.pkl")
        storage_numel = self._storages[storage.key][2]
        if not (
            isinstance(offset, int)
            and isinstance(size, tuple)
            and isinstance(stride, tuple)
            and len(size) == len(stride)
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))
        ):
            raise UserError(f"{self._source}: malformed tensor (offset {offset!r}, size {size!r}, stride {stride!r})")
        numel = int(np.prod(size, dtype=np.int64)) if size else 1
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if numel else offset - 1
        if last >= storage_numel:
            raise UserError(
                f"{self._source}: tensor of size {size} stride {stride} at offset {offset} "
                f"reads past its storage of {storage_numel} elements"
            )
        return LazyTensor(storage.key, offset, size, stride)

    def _rebuild_parameter(self, data: Any, *_rest: Any) -> LazyTensor:
        if not isinstance(data, LazyTensor):
            raise UserError(f"{self._source}: parameter without tensor data in data.pkl")
        return data

    def materialise(self, tensor: LazyTensor) -> np.ndarray:
        """Read a tensor's storage (once) and view or copy it into a C-contiguous numpy array."""
        flat = self._read_storage(tensor.key)
        size, stride, offset = tensor.shape, tensor.stride, tensor.offset
        numel = int(np.prod(size, dtype=np.int64)) if size else 1
        if numel == 0:
            return np.zeros(size, dtype=flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False
        )
        contiguous_whole = offset == 0 and numel == flat.size and view.flags.c_contiguous
        return flat.reshape(size) if contiguous_whole else np.array(view, copy=True, order="C")

    def materialise_all(self, obj: Any) -> Any:
        """`obj` with every LazyTensor in its dicts, lists and tuples replaced by its numpy array."""
        if isinstance(obj, LazyTensor):
            return self.materialise(obj)
        if isinstance(obj, dict):
            for key, value in obj.items():
                obj[key] = self.materialise_all(value)
            return obj
        if isinstance(obj, list):
            obj[:] = [self.materialise_all(value) for value in obj]
            return obj
        if isinstance(obj, tuple):
            return tuple(self.materialise_all(value) for value in obj)
        return obj


def is_torch_file(path: str) -> bool:
    """True for a torch.save zip archive or a (legacy torch) pickle: files this reader handles or refuses."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80"


def _open_archive(path: str) -> zipfile.ZipFile:
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            head = handle.read(2)
        if head[:1] == b"\x80":
            raise UserError(f"{path}: legacy (non-zip) torch file or plain pickle, not read for safety; {_LEGACY_HINT}")
        raise UserError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: unreadable zip archive ({exc})") from exc


def read_torch_file(path: str, select: Optional[Callable[[Any], Any]] = None) -> Any:
    """Load the object stored by `torch.save` at `path`, tensors as numpy arrays (no torch, no code execution).

    `select(obj)`, when given, picks the part to keep while tensors are still unread (`is_tensor` tells them
    apart); only that part's tensors are read from the archive.
    """
    with _open_archive(path) as archive:
        pickles = [n for n in archive.namelist() if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
        if len(pickles) != 1:
            raise UserError(f"{path}: zip archive without a single <name>/data.pkl; not a torch.save checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        big_endian = byteorder in archive.namelist() and archive.read(byteorder).strip() == b"big"
        unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix, path, big_endian)
        try:
            obj = unpickler.load()
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside a corrupt pickle is the file's fault
            raise UserError(f"{path}: corrupt data.pkl ({type(exc).__name__}: {str(exc)[:80]})") from exc
        if select is not None:
            obj = select(obj)
        return unpickler.materialise_all(obj)
