"""Model-zoo checkpoint layouts through `convert` (CLI) and `model.backbone_checkpoint`.

Each layout is built small (tiny IResNet widths) from the PyTorch reference network, so the loaded MindSpore
backbone is compared with an independent computation: arcface_torch's training checkpoint (torch.save of the
backbone beside optimiser, scheduler, head and counters) and MindFace's recognition checkpoint
(mindspore.save_checkpoint of Network(backbone, head): `_backbone.*`, a head `fc.weight`, `moments.*`,
`learning_rate`, `global_step`, float16 weights as after AMP O2). Unknown layouts fail with one line.
"""

import dataclasses
import logging

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_AUNET, TINY_LAYERS, TINY_WIDTHS, run_cli
from test_convert import (
    FIXTURE_EMBEDDING,
    FIXTURE_PTH,
    TINY,
    TINY_SET,
    assert_one_line_failure,
    fixture_module,
    run_cli_without_torch,
    tensor,
    write_torch_zip,
)

from mindface_au.config import ModelConfig
from mindface_au.convert import ACCEPTED, convert_checkpoint, read_backbone_state, torch_to_mindspore
from mindface_au.errors import UserError
from mindface_au.models import create_model_from_config
from mindface_au.models.checkpoint import load_checkpoint_strict
from mindface_au.models.iresnet import create_iresnet
from mindface_au.weights import torch_reader

NUM_CLASSES = 10  # the recognition head's classes; its fc.weight is (NUM_CLASSES, 16), the backbone's (16, 1568)
RTOL = 1e-5  # max |reference - mindspore| relative to the reference embedding's scale


@pytest.fixture(scope="module")
def reference():
    """A randomised tiny PyTorch IResNet (eval mode) and its embedding of a fixed batch."""
    torch = pytest.importorskip("torch")
    from mindface_au.reference.torch_iresnet import iresnet, randomize_

    torch.manual_seed(0)
    ref = randomize_(iresnet("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, num_features=16), seed=21)
    x = np.random.RandomState(4).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    return ref, x


def _embedding(ref, x):
    import torch

    ref.eval()
    with torch.no_grad():
        return ref(torch.from_numpy(x)).numpy()


def _assert_close(got, want):
    scale = float(np.abs(want).max())
    assert scale > 1.0  # a non-degenerate embedding
    assert float(np.abs(got.astype(np.float64) - want).max()) <= RTOL * scale


def _backbone_of(path):
    """The backbone of a tiny AUNet built with model.backbone_checkpoint = path (input 112 like the source)."""
    cfg = dataclasses.replace(ModelConfig(**TINY_AUNET), input_size=112, backbone_checkpoint=str(path))
    net = create_model_from_config(cfg)
    net.set_train(False)
    return net.backbone


def _converted(path):
    net = create_iresnet("iresnet18", **TINY)
    load_checkpoint_strict(net, str(path))
    net.set_train(False)
    return net


# ---------------------------------------------------------------------------------------------------------------
# arcface_torch training checkpoint (checkpoint_gpu_{rank}.pt)
@pytest.fixture(scope="module")
def arcface_torch_checkpoint(reference, tmp_path_factory):
    """checkpoint_gpu_0.pt as arcface_torch's train_v2.py writes it, after one SGD step (momentum buffers set)."""
    import torch

    ref, x = reference
    head = torch.nn.Parameter(torch.randn(NUM_CLASSES, 16) * 0.01)
    optimizer = torch.optim.SGD([{"params": ref.parameters()}, {"params": [head]}], lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=100, power=2.0)
    ref.train()
    loss = (ref(torch.from_numpy(x)) @ head.t()).logsumexp(dim=1).mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
    path = tmp_path_factory.mktemp("arcface") / "checkpoint_gpu_0.pt"
    checkpoint = {
        "epoch": 3,
        "global_step": 1234,
        "state_dict_backbone": ref.state_dict(),
        "state_dict_softmax_fc": {"weight": head.detach().clone()},
        "state_optimizer": optimizer.state_dict(),
        "state_lr_scheduler": scheduler.state_dict(),
    }
    torch.save(checkpoint, path)
    return path, _embedding(ref, x), x, len(ref.state_dict())


def test_arcface_torch_checkpoint_is_read_and_only_the_backbone_is_loaded(arcface_torch_checkpoint, monkeypatch):
    path, _, _, n_backbone = arcface_torch_checkpoint
    reads = []
    original = torch_reader._RestrictedUnpickler._read_storage
    monkeypatch.setattr(
        torch_reader._RestrictedUnpickler, "_read_storage", lambda self, key: reads.append(key) or original(self, key)
    )
    state = read_backbone_state(str(path))
    assert state.layout == "arcface_torch training checkpoint (state_dict_backbone)"
    assert state.ignored == ["epoch", "global_step", "state_dict_softmax_fc", "state_lr_scheduler", "state_optimizer"]
    assert len(state.arrays) + len(state.dropped) == n_backbone
    assert len(set(reads)) == n_backbone  # the optimiser's momentum buffers and the head are never read
    # the whole file, optimiser and scheduler state included, parses with the restricted reader
    everything = torch_reader.read_torch_file(str(path))
    groups = everything["state_optimizer"]["param_groups"]
    assert groups[0]["momentum"] == 0.9 and isinstance(groups[0]["params"], list)
    momentum = [s["momentum_buffer"] for s in everything["state_optimizer"]["state"].values()]
    assert momentum and all(isinstance(m, np.ndarray) for m in momentum)
    assert everything["state_lr_scheduler"]["last_epoch"] == 1


def test_arcface_torch_checkpoint_through_convert_cli(arcface_torch_checkpoint, tmp_path):
    path, want, x, _ = arcface_torch_checkpoint
    out = tmp_path / "r.ckpt"
    proc = run_cli_without_torch("convert", "--src", path, "--arch", "iresnet18", "--out", out, *TINY_SET)
    assert proc.returncode == 0, proc.stderr
    assert (
        "layout: arcface_torch training checkpoint (state_dict_backbone); ignored epoch, global_step, " in proc.stdout
    )
    assert "converted 96 tensors" in proc.stdout
    _assert_close(_converted(out)(ms.Tensor(x)).asnumpy(), want)


def test_arcface_torch_checkpoint_verify(arcface_torch_checkpoint, tmp_path):
    path, _, _, _ = arcface_torch_checkpoint
    out = tmp_path / "v.ckpt"
    proc = run_cli("convert", "--src", path, "--arch", "iresnet18", "--out", out, "--verify", *TINY_SET)
    assert proc.returncode == 0, proc.stderr
    assert "verify: max |torch - mindspore|" in proc.stdout and out.exists()


def test_arcface_torch_checkpoint_as_backbone_checkpoint(arcface_torch_checkpoint, caplog):
    path, want, x, _ = arcface_torch_checkpoint
    with caplog.at_level(logging.INFO, logger="mindface_au.models.checkpoint"):
        backbone = _backbone_of(path)
    assert f"{path}: layout: arcface_torch training checkpoint (state_dict_backbone)" in caplog.text
    _assert_close(backbone(ms.Tensor(x)).asnumpy(), want)


def test_insightface_pth_as_backbone_checkpoint():
    """The committed {"state_dict": {"module.<name>": ...}} fixture loads straight into the backbone."""
    backbone = _backbone_of(FIXTURE_PTH)
    _assert_close(backbone(ms.Tensor(fixture_module.fixture_input())).asnumpy(), np.load(FIXTURE_EMBEDDING))


# ---------------------------------------------------------------------------------------------------------------
# MindFace recognition checkpoint (Network(backbone, head) saved by MindSpore, AMP O2)
def _is_batchnorm(name, names):
    module = name.rpartition(".")[0]
    return f"{module}.moving_variance" in names


@pytest.fixture(scope="module")
def mindface_checkpoint(reference, tmp_path_factory):
    """A MindFace-layout .ckpt of the reference's weights: float16 except BatchNorm (AMP O2 keeps it float32)."""
    import torch

    ref, x = reference
    state = {k: v.numpy().copy() for k, v in ref.state_dict().items()}
    converted, origin, _ = torch_to_mindspore(state)
    half = {name for name in converted if not _is_batchnorm(name, converted)}
    # the source network's weights, rounded to float16 like the saved ones, give the expected embedding
    rounded = {k: torch.from_numpy(v) for k, v in state.items()}
    for name in half:
        rounded[origin[name]] = rounded[origin[name]].half().float()
    from mindface_au.reference.torch_iresnet import iresnet

    source = iresnet("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, num_features=16)
    source.load_state_dict(rounded, strict=True)
    want = _embedding(source, x)
    params = []
    for name, value in converted.items():
        array = value.astype(np.float16) if name in half else value
        params.append({"name": f"_backbone.{name}", "data": ms.Tensor(array)})
        if "moving_" not in name:  # the optimiser holds moments of trainable parameters only
            params.append({"name": f"moments._backbone.{name}", "data": ms.Tensor(np.zeros_like(array))})
    head = np.random.RandomState(1).normal(0, 0.01, (NUM_CLASSES, 16)).astype(np.float16)
    assert head.shape != converted["fc.weight"].shape  # same name as the backbone's fc, other shape
    params += [
        {"name": "fc.weight", "data": ms.Tensor(head)},
        {"name": "moments.fc.weight", "data": ms.Tensor(np.zeros_like(head))},
        {"name": "learning_rate", "data": ms.Tensor(np.array(0.02, np.float32))},
        {"name": "global_step", "data": ms.Tensor(np.array([4321], np.int32))},
    ]
    path = str(tmp_path_factory.mktemp("mindface") / "ArcFace--25_4000.ckpt")
    ms.save_checkpoint(params, path)
    return path, want, x, params


def test_mindface_checkpoint_through_convert_cli(mindface_checkpoint, tmp_path):
    path, want, x, params = mindface_checkpoint
    moments = sum(p["name"].startswith("moments.") for p in params)
    out = tmp_path / "mf.ckpt"
    proc = run_cli("convert", "--src", path, "--arch", "iresnet18", "--out", out, *TINY_SET)
    assert proc.returncode == 0, proc.stderr
    assert "layout: MindFace recognition checkpoint (_backbone.* of Network(backbone, head))" in proc.stdout
    assert f"ignored fc.weight, global_step, learning_rate, moments.* ({moments})" in proc.stdout
    net = _converted(out)
    assert all(p.dtype == ms.float32 for p in net.get_parameters())
    assert tuple(dict(net.parameters_and_names())["fc.weight"].shape) == (16, 1568)
    _assert_close(net(ms.Tensor(x)).asnumpy(), want)


def test_mindface_checkpoint_as_backbone_checkpoint(mindface_checkpoint, caplog):
    path, want, x, _ = mindface_checkpoint
    with caplog.at_level(logging.INFO, logger="mindface_au.models.checkpoint"):
        backbone = _backbone_of(path)
    assert "layout: MindFace recognition checkpoint" in caplog.text
    assert all(p.dtype == ms.float32 for p in backbone.get_parameters())
    _assert_close(backbone(ms.Tensor(x)).asnumpy(), want)


def test_mindface_checkpoint_is_loaded_strictly(mindface_checkpoint, tmp_path):
    _, _, _, params = mindface_checkpoint
    kept = [p for p in params if p["name"] != "_backbone.layer2.0.bn2.moving_mean"]
    path = str(tmp_path / "incomplete.ckpt")
    ms.save_checkpoint(kept, path)
    with pytest.raises(
        UserError, match=r"incomplete.ckpt: does not fit .*missing 1: _backbone.layer2.0.bn2.moving_mean"
    ):
        _backbone_of(path)
    out = tmp_path / "out" / "x.ckpt"
    out.parent.mkdir()
    proc = run_cli("convert", "--src", path, "--arch", "iresnet18", "--out", out, *TINY_SET)
    assert_one_line_failure(proc, str(out), "missing 1: _backbone.layer2.0.bn2.moving_mean")


def test_mindface_checkpoint_verify_needs_torch_source(mindface_checkpoint, tmp_path):
    path, _, _, _ = mindface_checkpoint
    out = tmp_path / "out" / "x.ckpt"
    out.parent.mkdir()
    proc = run_cli("convert", "--src", path, "--arch", "iresnet18", "--out", out, "--verify", *TINY_SET)
    assert_one_line_failure(proc, str(out), "--verify compares with the PyTorch reference")


# ---------------------------------------------------------------------------------------------------------------
# What already worked: our own .ckpt (now also a `convert` source), tensors inside tuples
def test_own_checkpoint_converts_again_unchanged(tmp_path):
    first = convert_checkpoint(FIXTURE_PTH, "iresnet18", str(tmp_path / "a.ckpt"), **TINY)
    assert first["layout"] == "insightface state_dict inside {'state_dict': ...}, 'module.' prefixes removed"
    again = convert_checkpoint(first["out"], "iresnet18", str(tmp_path / "b.ckpt"), **TINY)
    assert again["layout"] == "MindSpore checkpoint (mindface-au)" and again["tensors"] == first["tensors"]
    a, b = ms.load_checkpoint(first["out"]), ms.load_checkpoint(again["out"])
    for name, param in a.items():
        if isinstance(param, ms.Parameter):
            np.testing.assert_array_equal(b[name].asnumpy(), param.asnumpy(), err_msg=name)


def test_tensors_in_tuples_are_read(tmp_path):
    storages = {}
    obj = {"pair": (tensor(storages, np.arange(3, dtype=np.float32)), 7)}
    got = torch_reader.read_torch_file(write_torch_zip(str(tmp_path / "t.pth"), obj, storages))
    np.testing.assert_array_equal(got["pair"][0], np.arange(3, dtype=np.float32))
    assert got["pair"][1] == 7


# ---------------------------------------------------------------------------------------------------------------
# Unknown layouts: one line naming the top-level keys and the accepted layouts, no output
def _unknown_file(tmp_path):
    storages = {}
    obj = {
        "epoch": 2,
        "weights": {"conv1.weight": tensor(storages, np.zeros((8, 3, 3, 3), np.float32))},
        "optimizer": {"lr": 0.1, "params": [0, 1]},
    }
    return write_torch_zip(str(tmp_path / "unknown.pth"), obj, storages)


def test_unknown_layout_through_convert_cli(tmp_path):
    src = _unknown_file(tmp_path)
    out = tmp_path / "out" / "x.ckpt"
    out.parent.mkdir()
    proc = run_cli("convert", "--src", src, "--arch", "iresnet18", "--out", out, *TINY_SET)
    assert_one_line_failure(
        proc,
        str(out),
        "unknown.pth: unrecognised checkpoint layout (top-level keys epoch, optimizer, weights;",
        "not tensors: epoch, optimizer, weights",
        f"accepted: {ACCEPTED}",
    )


def test_unknown_layout_as_backbone_checkpoint(tmp_path):
    src = _unknown_file(tmp_path)
    with pytest.raises(UserError, match=r"unrecognised checkpoint layout \(top-level keys epoch, optimizer, weights"):
        _backbone_of(src)


def test_unknown_layout_lists_keys_truncated_and_non_dicts(tmp_path):
    storages = {}
    many = {f"entry_{i:02d}_" + "x" * 60: i for i in range(14)}
    path = write_torch_zip(str(tmp_path / "many.pth"), many, storages)
    with pytest.raises(UserError) as info:
        read_backbone_state(path)
    message = str(info.value)
    assert "\n" not in message and "(+4 more)" in message and "x" * 60 not in message
    path = write_torch_zip(str(tmp_path / "list.pth"), [tensor(storages, np.zeros(2, np.float32))], storages)
    with pytest.raises(UserError, match=r"list.pth: unrecognised checkpoint layout \(a list at the top level"):
        read_backbone_state(path)
