"""Read a `torch.save` checkpoint into numpy arrays without PyTorch and without running pickled code.

A `.pth` written by `torch.save` is a zip archive: `<top>/data.pkl` is a pickle describing the object and
`<top>/data/<key>` holds the raw bytes of each tensor storage. Unpickling with the standard unpickler runs
whatever the file asks for, so `_RestrictedUnpickler.find_class` allows only the few globals that rebuild
tensors and dicts, maps them to local functions that return numpy arrays, and refuses everything else.
Legacy (pre-1.6, non-zip) torch files are refused without being unpickled.
"""

import collections
import io
import os
import pickle
import zipfile
from typing import Any, Dict, Tuple

import numpy as np

from mindface_au.errors import UserError

__all__ = ["read_torch_file", "read_torch_state_dict", "unwrap_state_dict"]

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
_WRAPPER_KEYS = ("state_dict", "model")
_LEGACY_HINT = "re-save it with torch.save(obj, path, _use_new_zipfile_serialization=True)"


class _StorageType:
    """Stands in for torch.FloatStorage & co.: only carries the storage's element type."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = dtype


class _StorageRef:
    """Opaque handle returned by persistent_load; the bytes stay in the unpickler's table."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can build only dicts, OrderedDicts, tuples, lists, scalars and tensors (as numpy arrays)."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, source: str, big_endian: bool) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._source = source
        self._big_endian = big_endian
        self._storages: Dict[str, np.ndarray] = {}
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
            self._storages[key] = self._load_storage(key, storage_type, numel)
        return _StorageRef(key)

    # -- tensor rebuilding --------------------------------------------------------------------------------------
    def _load_storage(self, key: str, storage_type: _StorageType, numel: Any) -> np.ndarray:
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
        buffer = bytearray(info.file_size)
        with self._archive.open(info) as handle:
            if handle.readinto(buffer) != info.file_size:
                raise UserError(f"{self._source}: storage {name} is truncated")
        array = np.frombuffer(buffer, dtype=dtype.newbyteorder(">") if self._big_endian else dtype)
        if self._big_endian:
            array = array.astype(dtype)
        if storage_type.name == "BFloat16Storage":  # bfloat16 = the upper half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> np.ndarray:
        if type(storage) is not _StorageRef or storage.key not in self._storages:
            raise UserError(f"{self._source}: tensor without a storage in data.pkl")
        flat = self._storages[storage.key]
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
        if last >= flat.size:
            raise UserError(
                f"{self._source}: tensor of size {size} stride {stride} at offset {offset} "
                f"reads past its storage of {flat.size} elements"
            )
        if numel == 0:
            return np.zeros(size, dtype=flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False
        )
        contiguous_whole = offset == 0 and numel == flat.size and view.flags.c_contiguous
        return flat.reshape(size) if contiguous_whole else np.array(view, copy=True, order="C")

    def _rebuild_parameter(self, data: Any, *_rest: Any) -> np.ndarray:
        if not isinstance(data, np.ndarray):
            raise UserError(f"{self._source}: parameter without tensor data in data.pkl")
        return data


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


def read_torch_file(path: str) -> Any:
    """Load the object stored by `torch.save` at `path`, tensors as numpy arrays (no torch, no code execution)."""
    with _open_archive(path) as archive:
        pickles = [n for n in archive.namelist() if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
        if len(pickles) != 1:
            raise UserError(f"{path}: zip archive without a single <name>/data.pkl; not a torch.save checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        big_endian = byteorder in archive.namelist() and archive.read(byteorder).strip() == b"big"
        unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix, path, big_endian)
        try:
            return unpickler.load()
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside a corrupt pickle is the file's fault
            raise UserError(f"{path}: corrupt data.pkl ({type(exc).__name__}: {str(exc)[:80]})") from exc


def unwrap_state_dict(obj: Any, source: str) -> Dict[str, Any]:
    """Take the state_dict out of {"state_dict": ...} / {"model": ...} wrappers and drop "module." prefixes."""
    while isinstance(obj, dict):
        inner = [k for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)]
        if not inner:
            break
        obj = obj[inner[0]]
    if not isinstance(obj, dict):
        raise UserError(f"{source}: expected a state_dict (a dict of tensors), found {type(obj).__name__}")
    state: Dict[str, Any] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise UserError(f"{source}: state_dict key {key!r} is not a string")
        name = key[len("module.") :] if key.startswith("module.") else key
        if name in state:
            raise UserError(f"{source}: state_dict names {name!r} twice (with and without 'module.')")
        state[name] = value
    return state


def read_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    """The state_dict saved at `path` as {name: numpy array}, wrappers and "module." prefixes removed."""
    state = unwrap_state_dict(read_torch_file(path), path)
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, np.ndarray))
    if not_tensors:
        raise UserError(f"{path}: state_dict entries that are not tensors: {', '.join(not_tensors[:8])}")
    if not state:
        raise UserError(f"{path}: the state_dict is empty")
    return state


def storage_summary(state: Dict[str, np.ndarray]) -> Tuple[int, int]:
    """(number of tensors, number of values) of a state_dict."""
    return len(state), int(sum(v.size for v in state.values()))
