"""Glint360K conversion: the torch-free restricted reader, the name mapping, the CLI and its failure modes.

Torch-free files are written by `write_torch_zip` below, a minimal torch.save-format writer (cross-checked
against torch.load when PyTorch is installed), so every bad-input case runs without PyTorch.
"""

import collections
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import zipfile

import mindspore as ms
import numpy as np
import pytest
import yaml
from helpers import TINY_LAYERS, TINY_WIDTHS, run_cli, run_cli_without

from mindface_au.config import load_config
from mindface_au.convert import convert_checkpoint, read_torch_file, read_torch_state_dict, torch_to_mindspore
from mindface_au.errors import UserError
from mindface_au.models.checkpoint import load_checkpoint_strict, read_model_config
from mindface_au.models.iresnet import create_iresnet

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
FIXTURE_PTH = os.path.join(FIXTURES, "iresnet_tiny.pth")
FIXTURE_EMBEDDING = os.path.join(FIXTURES, "iresnet_tiny_embedding.npy")
_spec = importlib.util.spec_from_file_location(
    "make_convert_fixture", os.path.join(FIXTURES, "make_convert_fixture.py")
)
fixture_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture_module)

TINY_SET = ["--set", "model.widths=[8,16,16,32]", "--set", "model.layers=[1,1,1,1]", "--set", "model.embedding_size=16"]
TINY = dict(widths=TINY_WIDTHS, layers=TINY_LAYERS, embedding_size=16)
assert fixture_module.WIDTHS == TINY_WIDTHS and fixture_module.LAYERS == TINY_LAYERS


# ---------------------------------------------------------------------------------------------------------------
# A minimal torch.save writer (torch-free): GLOBAL opcodes for torch names without importing torch.
class _Global:
    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # only so pickle accepts it as the callable of a reduce tuple
        raise TypeError("placeholder")


class _Call:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Storage:
    def __init__(self, key, type_name, numel):
        self.key, self.type_name, self.numel = key, type_name, numel


class _TorchPickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[_Global] = _save_global

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Global("torch", obj.type_name), obj.key, "cpu", obj.numel)
        return None


_TYPE_NAMES = {
    np.float32: "FloatStorage",
    np.float16: "HalfStorage",
    np.int64: "LongStorage",
    np.float64: "DoubleStorage",
}


def tensor(storages, flat, offset=0, size=None, stride=None, type_name=None, raw=None):
    """A _rebuild_tensor_v2 call on a new storage holding `flat` (or `raw` bytes)."""
    flat = np.array(flat, order="C")
    key = str(len(storages))
    storages[key] = raw if raw is not None else flat.tobytes()
    size = tuple(flat.shape) if size is None else tuple(size)
    if stride is None:
        stride = tuple(int(np.prod(size[i + 1 :], dtype=np.int64)) for i in range(len(size)))
    storage = _Storage(key, type_name or _TYPE_NAMES[flat.dtype.type], flat.size)
    hooks = _Call(_Global("collections", "OrderedDict"), ())
    return _Call(_Global("torch._utils", "_rebuild_tensor_v2"), (storage, offset, size, tuple(stride), False, hooks))


def write_torch_zip(path, obj, storages, top="archive", pickled=None):
    """Write `obj` (tensors made by `tensor`) in the torch.save zip layout under folder `top`."""
    if pickled is None:
        buffer = io.BytesIO()
        _TorchPickler(buffer, protocol=2).dump(obj)
        pickled = buffer.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{top}/data.pkl", pickled)
        archive.writestr(f"{top}/byteorder", "little")
        for key, data in storages.items():
            archive.writestr(f"{top}/data/{key}", data)
        archive.writestr(f"{top}/version", "3\n")
    return path


def write_state_dict(path, state, wrap=None):
    """A plain {name: float32 array} state_dict as a torch.save file (optionally inside {wrap: ...})."""
    storages = {}
    obj = collections.OrderedDict((k, tensor(storages, np.asarray(v))) for k, v in state.items())
    return write_torch_zip(path, {wrap: obj} if wrap else obj, storages)


class _SystemCall:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def assert_one_line_failure(proc, out_path, *needles):
    assert proc.returncode != 0, proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mindface-au convert: error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    folder = os.path.dirname(out_path)
    assert not os.path.exists(out_path)
    assert not [name for name in os.listdir(folder) if name.endswith(".ckpt")], os.listdir(folder)


def run_cli_without_torch(*args):
    """`mindface-au ARGS` in a process where `import torch` fails, as on a machine without PyTorch."""
    return run_cli_without("torch", *args)


def fixture_state():
    return read_torch_state_dict(FIXTURE_PTH)


# ---------------------------------------------------------------------------------------------------------------
# Reader
def test_reader_strided_offset_bfloat16_and_wrappers_without_torch(tmp_path):
    storages = {}
    base = np.arange(24, dtype=np.float32)
    bf16_values = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)
    bf16_raw = (bf16_values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    state = collections.OrderedDict(
        [
            ("module.transposed", tensor(storages, base, offset=2, size=(3, 4), stride=(1, 3))),
            ("module.half", tensor(storages, np.array([0.5, -1.25], dtype=np.float16))),
            ("module.bf16", tensor(storages, bf16_values, type_name="BFloat16Storage", raw=bf16_raw)),
            ("module.count", tensor(storages, np.array(7, dtype=np.int64))),
        ]
    )
    path = write_torch_zip(str(tmp_path / "x.pth"), {"model": state, "epoch": 3}, storages, top="anything")
    got = read_torch_state_dict(path)
    assert list(got) == ["transposed", "half", "bf16", "count"]
    expected = np.lib.stride_tricks.as_strided(base[2:], shape=(3, 4), strides=(4, 12))
    np.testing.assert_array_equal(got["transposed"], expected)
    assert got["transposed"][0, 1] == 5.0 and got["transposed"].flags.c_contiguous
    np.testing.assert_array_equal(got["half"], np.array([0.5, -1.25], dtype=np.float16))
    np.testing.assert_array_equal(got["bf16"], bf16_values)
    assert got["count"].shape == () and int(got["count"]) == 7


def test_writer_is_a_faithful_torch_file(tmp_path):
    torch = pytest.importorskip("torch")
    storages = {}
    base = np.arange(24, dtype=np.float32)
    obj = {"state_dict": {"a": tensor(storages, base, offset=2, size=(3, 4), stride=(1, 3))}}
    path = write_torch_zip(str(tmp_path / "w.pth"), obj, storages)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    np.testing.assert_array_equal(loaded["state_dict"]["a"].numpy(), read_torch_state_dict(path)["a"])


def test_reader_matches_torch_load(tmp_path):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    big = torch.randn(6, 5, generator=gen)
    state = collections.OrderedDict(
        f32=torch.randn(3, 4, 2, generator=gen),
        f16=torch.randn(5, generator=gen).half(),
        bf16=torch.randn(7, generator=gen).bfloat16(),
        f64=torch.randn(2, 2, generator=gen).double(),
        i64=torch.arange(5),
        boolean=torch.tensor([True, False, True]),
        transposed=big.t(),
        sliced=big[2:4, 1:],
        scalar=torch.tensor(2.5),
        empty=torch.zeros(0, 3),
    )
    path = str(tmp_path / "t.pth")
    torch.save({"state_dict": state, "param": torch.nn.Parameter(torch.ones(2)), "note": "x"}, path)
    raw = read_torch_file(path)
    got = raw["state_dict"]
    assert list(got) == list(state)
    for name, value in state.items():
        want = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    np.testing.assert_array_equal(raw["param"], np.ones(2, np.float32))
    assert raw["note"] == "x"


def test_refuses_to_run_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": _SystemCall(f"touch {marker}")}, protocol=2)
    path = write_torch_zip(str(tmp_path / "evil.pth"), None, {}, pickled=payload)
    with pytest.raises(UserError, match=r"refusing to unpickle (posix|os|nt)\.system \(only tensors and dicts"):
        read_torch_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("builtins", "eval"),
        ("os", "system"),
        ("subprocess", "Popen"),
        ("torch", "load"),
        ("torch.storage", "_load_from_bytes"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("collections", "defaultdict"),
    ],
)
def test_only_tensor_globals_are_allowed(tmp_path, module, name):
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."  # GLOBAL module.name; call it with ()
    path = write_torch_zip(str(tmp_path / "g.pth"), None, {}, pickled=payload)
    with pytest.raises(UserError, match=f"refusing to unpickle {module}.{name} "):
        read_torch_file(path)


def test_rejects_out_of_bounds_view(tmp_path):
    storages = {}
    state = {"w": tensor(storages, np.zeros(4, np.float32), offset=1, size=(2, 2), stride=(2, 1))}
    path = write_torch_zip(str(tmp_path / "oob.pth"), state, storages)
    with pytest.raises(UserError, match="reads past its storage of 4 elements"):
        read_torch_state_dict(path)


def test_rejects_storage_size_mismatch(tmp_path):
    storages = {}
    state = {"w": tensor(storages, np.zeros(4, np.float32), raw=b"\0" * 12)}
    path = write_torch_zip(str(tmp_path / "short.pth"), state, storages)
    with pytest.raises(UserError, match="holds 12 bytes, expected 4 x 4"):
        read_torch_state_dict(path)


def test_state_dict_with_non_tensor_entry(tmp_path):
    storages = {}
    path = write_torch_zip(str(tmp_path / "n.pth"), {"a": tensor(storages, np.zeros(2, np.float32)), "b": 3}, storages)
    with pytest.raises(UserError, match="not tensors: b"):
        read_torch_state_dict(path)


# ---------------------------------------------------------------------------------------------------------------
# Mapping
def test_name_mapping_rules():
    state = {
        "bn1.weight": np.full(2, 1.5, np.float32),
        "bn1.bias": np.full(2, 0.5, np.float32),
        "bn1.running_mean": np.zeros(2, np.float32),
        "bn1.running_var": np.ones(2, np.float64),
        "bn1.num_batches_tracked": np.array(3, np.int64),
        "prelu.weight": np.full(2, 0.25, np.float32),
        "layer1.0.prelu.weight": np.full(2, 0.1, np.float32),
        "fc.weight": np.ones((3, 2), np.float32),
        "fc.bias": np.zeros(3, np.float32),
        "layer1.0.downsample.1.weight": np.ones(2, np.float32),
        "layer1.0.downsample.1.running_var": np.ones(2, np.float32),
    }
    converted, origin, dropped = torch_to_mindspore(state)
    assert dropped == ["bn1.num_batches_tracked"]
    assert set(converted) == {
        "bn1.gamma",
        "bn1.beta",
        "bn1.moving_mean",
        "bn1.moving_variance",
        "prelu.w",
        "layer1.0.prelu.w",
        "fc.weight",
        "fc.bias",
        "layer1.0.downsample.1.gamma",
        "layer1.0.downsample.1.moving_variance",
    }
    assert origin["bn1.gamma"] == "bn1.weight" and origin["fc.weight"] == "fc.weight"
    assert all(v.dtype == np.float32 for v in converted.values())
    np.testing.assert_array_equal(converted["bn1.gamma"], state["bn1.weight"])


def test_mapping_covers_every_mindspore_parameter():
    """Every parameter of the MindSpore IResNet has exactly one source name in the torch reference."""
    torch = pytest.importorskip("torch")
    from mindface_au.reference.torch_iresnet import iresnet

    ref = iresnet("iresnet34", widths=TINY_WIDTHS, num_features=16)
    converted, _, dropped = torch_to_mindspore({k: v.numpy() for k, v in ref.state_dict().items()})
    net = create_iresnet("iresnet34", widths=TINY_WIDTHS, embedding_size=16)
    shapes = {name: tuple(p.shape) for name, p in net.parameters_and_names()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == shapes
    assert len(dropped) == sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in ref.modules())


# ---------------------------------------------------------------------------------------------------------------
# Conversion round trips
def _ms_embedding(ckpt, x, **kwargs):
    net = create_iresnet("iresnet18", **kwargs)
    load_checkpoint_strict(net, ckpt)
    net.set_train(False)
    return net, net(ms.Tensor(x)).asnumpy()


def test_fixture_converts_and_matches_pytorch_embedding_without_torch(tmp_path):
    """The committed fixture: converted through the CLI with torch made unimportable, then compared."""
    out = tmp_path / "tiny.ckpt"
    args = ["convert", "--src", FIXTURE_PTH, "--arch", "iresnet18", "--out", str(out), "--device", "CPU", *TINY_SET]
    proc = run_cli_without_torch(*args)
    assert proc.returncode == 0, proc.stderr
    assert "converted 96 tensors" in proc.stdout and "peak RSS" in proc.stdout
    expected = np.load(FIXTURE_EMBEDDING)
    _, got = _ms_embedding(str(out), fixture_module.fixture_input(), **TINY)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert np.abs(expected).max() > 1.0  # a non-degenerate embedding
    config = read_model_config(str(out))
    assert config["name"] == "iresnet18" and config["widths"] == TINY_WIDTHS and config["embedding_size"] == 16
    # weights are renamed copies: BN weight -> gamma, running_var -> moving_variance, PReLU weight -> w
    params = ms.load_checkpoint(str(out))
    state = fixture_state()
    np.testing.assert_array_equal(params["layer2.0.bn2.gamma"].asnumpy(), state["layer2.0.bn2.weight"])
    np.testing.assert_array_equal(params["bn2.moving_variance"].asnumpy(), state["bn2.running_var"])
    np.testing.assert_array_equal(params["layer1.0.prelu.w"].asnumpy(), state["layer1.0.prelu.weight"])
    assert not np.allclose(state["bn2.running_var"], 1.0) and not np.allclose(state["prelu.weight"], 0.25)


def test_torch_roundtrip_features_and_embedding(tmp_path):
    """A fresh PyTorch network (plain state_dict, 2 blocks in some stages) converts to identical outputs."""
    torch = pytest.importorskip("torch")
    from mindface_au.reference.torch_iresnet import iresnet, randomize_

    layers = [2, 1, 1, 2]
    ref = randomize_(iresnet("iresnet18", widths=TINY_WIDTHS, layers=layers, num_features=24), seed=11).eval()
    src = str(tmp_path / "plain.pth")
    torch.save(ref.state_dict(), src)
    summary = convert_checkpoint(
        src, "iresnet18", str(tmp_path / "plain.ckpt"), widths=TINY_WIDTHS, layers=layers, embedding_size=24
    )
    assert summary["tensors"] == len(ref.state_dict()) - len(summary["dropped"]) and summary["verify"] is None
    x = np.random.RandomState(5).uniform(-1, 1, (3, 3, 112, 112)).astype(np.float32)
    with torch.no_grad():
        want_features = ref.forward_features(torch.from_numpy(x)).numpy()
        want = ref(torch.from_numpy(x)).numpy()
    net, got = _ms_embedding(summary["out"], x, widths=TINY_WIDTHS, layers=layers, embedding_size=24)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    features = net.forward_features(ms.Tensor(x)).asnumpy()
    assert features.shape == (3, 32, 7, 7)
    np.testing.assert_allclose(features, want_features, rtol=0, atol=1e-4 * max(1.0, np.abs(want_features).max()))


def test_cli_verify(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "v.ckpt"
    proc = run_cli("convert", "--src", FIXTURE_PTH, "--arch", "iresnet18", "--out", out, "--verify", *TINY_SET)
    assert proc.returncode == 0, proc.stderr
    assert "verify: max |torch - mindspore|" in proc.stdout and out.exists()


def test_failed_verify_leaves_no_output(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from mindface_au.convert import converter

    monkeypatch.setattr(converter, "VERIFY_RTOL", -1.0)  # a negative tolerance: the check must fail
    out = tmp_path / "v.ckpt"
    with pytest.raises(UserError, match=": verify failed: max"):
        convert_checkpoint(FIXTURE_PTH, "iresnet18", str(out), verify=True, **TINY)
    assert os.listdir(tmp_path) == []


def test_cli_verify_without_torch_fails_cleanly(tmp_path):
    out = tmp_path / "v.ckpt"
    proc = run_cli_without_torch(
        "convert", "--src", FIXTURE_PTH, "--arch", "iresnet18", "--out", out, "--verify", *TINY_SET
    )
    assert_one_line_failure(proc, str(out), "--verify needs PyTorch")


def test_tools_script(tmp_path):
    out = tmp_path / "t.ckpt"
    script = os.path.join(os.path.dirname(FIXTURES), "..", "tools", "convert.py")
    args = ["--src", FIXTURE_PTH, "--arch", "iresnet18", "--out", str(out), *TINY_SET]
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs through the CLI: non-zero exit, one line naming the culprit, no output file
def _convert(tmp_path, src, arch="iresnet18", extra=TINY_SET):
    out = tmp_path / "out" / "model.ckpt"
    out.parent.mkdir(exist_ok=True)
    return run_cli("convert", "--src", src, "--arch", arch, "--out", out, *extra), str(out)


def test_cli_missing_file(tmp_path):
    proc, out = _convert(tmp_path, tmp_path / "nope.pth")
    assert_one_line_failure(proc, out, "nope.pth: file not found")


def test_cli_not_zip_or_pickle(tmp_path):
    src = tmp_path / "notes.pth"
    src.write_text("hello, not a checkpoint\n")
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "notes.pth: not a PyTorch checkpoint")


def test_cli_legacy_pickle_is_not_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "legacy.pth"
    src.write_bytes(pickle.dumps(_SystemCall(f"touch {marker}"), protocol=2))
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "legacy.pth: legacy", "_use_new_zipfile_serialization=True")
    assert not marker.exists()


def test_cli_pickle_calling_a_function(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(collections.OrderedDict(x=_SystemCall(f"touch {marker}")), protocol=2)
    src = write_torch_zip(str(tmp_path / "evil.pth"), None, {}, pickled=payload)
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "evil.pth: refusing to unpickle", "system")
    assert not marker.exists()


def test_cli_zip_without_data_pkl(tmp_path):
    src = tmp_path / "other.zip"
    with zipfile.ZipFile(src, "w") as archive:
        archive.writestr("readme.txt", "x")
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "other.zip: zip archive without a single <name>/data.pkl")


def test_cli_unknown_architecture(tmp_path):
    proc, out = _convert(tmp_path, FIXTURE_PTH, arch="resnet50")
    assert_one_line_failure(proc, out, "unknown architecture 'resnet50'", "iresnet100")


def test_cli_wrong_architecture(tmp_path):
    """An iresnet18-layout file converted as iresnet34 (same widths): missing blocks listed, arch hinted."""
    proc, out = _convert(tmp_path, FIXTURE_PTH, arch="iresnet34", extra=TINY_SET[:2] + TINY_SET[4:])
    assert_one_line_failure(proc, out, "does not fit iresnet34", "missing 180: layer1.1.bn1.bias", "[1, 1, 1, 1]")


def test_cli_missing_key(tmp_path):
    state = fixture_state()
    del state["layer3.0.bn2.running_mean"]
    src = write_state_dict(str(tmp_path / "missing.pth"), state, wrap="state_dict")
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "missing.pth: does not fit", "missing 1: layer3.0.bn2.running_mean")


def test_cli_unexpected_key(tmp_path):
    state = fixture_state()
    state["head.weight"] = np.zeros((2, 2), np.float32)
    src = write_state_dict(str(tmp_path / "extra.pth"), state)
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "unexpected 1: head.weight")


def test_cli_wrong_shape(tmp_path):
    state = fixture_state()
    state["layer2.0.conv1.weight"] = np.zeros((16, 8, 1, 1), np.float32)
    src = write_state_dict(str(tmp_path / "shape.pth"), state)
    proc, out = _convert(tmp_path, src)
    assert_one_line_failure(proc, out, "shape mismatch 1: layer2.0.conv1.weight (16, 8, 1, 1) vs (16, 8, 3, 3)")


def test_cli_embedding_size_mismatch(tmp_path):
    proc, out = _convert(tmp_path, FIXTURE_PTH, extra=TINY_SET[:4])
    assert_one_line_failure(proc, out, "shape mismatch", "fc.weight (16, 1568) vs (512, 1568)")


# ---------------------------------------------------------------------------------------------------------------
# Config errors
def test_cli_config_unknown_key(tmp_path):
    proc, out = _convert(tmp_path, FIXTURE_PTH, extra=[*TINY_SET, "--set", "model.widht=[8,8,8,8]"])
    assert_one_line_failure(proc, out, "unknown config key model.widht", "widths")


def test_cli_config_wrong_type(tmp_path):
    proc, out = _convert(tmp_path, FIXTURE_PTH, extra=[*TINY_SET, "--set", "model.embedding_size=big"])
    assert_one_line_failure(proc, out, "model.embedding_size", "expected int")


def test_config_file_errors(tmp_path):
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text(yaml.safe_dump({"model": {"layer": [1, 1, 1, 1]}}))
    with pytest.raises(UserError, match=r"unknown config key model\.layer; valid keys: .*layers"):
        load_config(str(bad_key))
    bad_type = tmp_path / "bad_type.yaml"
    bad_type.write_text(yaml.safe_dump({"model": {"widths": [8, "x", 16, 32]}}))
    with pytest.raises(UserError, match=r"config key model\.widths\[1\]: got 'x' \(str\), expected int"):
        load_config(str(bad_type))
    good = tmp_path / "tiny.yaml"
    good.write_text(yaml.safe_dump({"model": {"widths": TINY_WIDTHS, "layers": TINY_LAYERS, "embedding_size": 16}}))
    proc, out = _convert(tmp_path, FIXTURE_PTH, extra=["--config", str(good)])
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(out)
