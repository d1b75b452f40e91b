"""Model zoo: default configs, pretrained loading with sha256 checks, and the params / GFLOPs table."""

import hashlib

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_LAYERS, TINY_WIDTHS

import mindface_au.models.aunet  # noqa: F401  (registers aunet_*)
from mindface_au.config import AU_NAMES
from mindface_au.errors import UserError
from mindface_au.models import create_model, get_default_cfg, list_models, registry
from mindface_au.models.checkpoint import save_checkpoint_atomic, sha256_file
from mindface_au.models.zoo import count_macs, count_params, format_model_table, model_stats, model_table

TINY = dict(widths=TINY_WIDTHS, layers=TINY_LAYERS, embedding_size=16)


def test_every_model_has_a_default_config():
    names = list_models()
    assert {f"aunet_iresnet{d}" for d in (18, 34, 50, 100, 200)} <= set(names)
    for name in names:
        cfg = get_default_cfg(name)
        assert cfg["input_size"] == (3, 112, 112), name
        assert tuple(cfg["mean"]) == (0.5, 0.5, 0.5) and tuple(cfg["std"]) == (0.5, 0.5, 0.5), name
        assert cfg["checkpoint"].endswith(".ckpt"), name
        assert "sha256" in cfg, name
        if name.startswith("aunet_"):
            assert tuple(cfg["au_names"]) == tuple(AU_NAMES), name


@pytest.fixture
def tiny_ckpt(tmp_path):
    net = create_model("iresnet18", **TINY)
    path = str(tmp_path / "tiny_r18.ckpt")
    save_checkpoint_atomic(net, path)
    return net, path


def test_pretrained_checks_the_hash(tiny_ckpt, monkeypatch):
    net, path = tiny_ckpt
    digest = sha256_file(path)
    with open(path, "rb") as handle:
        assert digest == hashlib.sha256(handle.read()).hexdigest()
    monkeypatch.setitem(registry._DEFAULT_CFGS["iresnet18"], "sha256", digest)
    loaded = create_model("iresnet18", pretrained=True, checkpoint_path=path, **TINY)
    for (name, a), (_, b) in zip(net.parameters_and_names(), loaded.parameters_and_names()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=name)
    monkeypatch.setitem(registry._DEFAULT_CFGS["iresnet18"], "sha256", "0" * 64)
    with pytest.raises(UserError, match="sha256"):
        create_model("iresnet18", pretrained=True, checkpoint_path=path, **TINY)
    # without pretrained=True the hash is not the gate (local fine-tuned weights)
    create_model("iresnet18", checkpoint_path=path, **TINY)


def test_pretrained_needs_a_local_file(tmp_path):
    with pytest.raises(UserError, match="checkpoint_path"):
        create_model("iresnet18", pretrained=True, **TINY)
    with pytest.raises(UserError, match="not found"):
        create_model("iresnet18", pretrained=True, checkpoint_path=str(tmp_path / "none.ckpt"), **TINY)


def _iresnet_macs(widths, layers, size=112, embedding=512):
    """Independent count: conv and fc multiply-accumulates of an IResNet written out from its definition."""
    macs = size * size * 3 * 9 * widths[0]  # conv1, stride 1
    res, cin = size, widths[0]
    for c, n in zip(widths, layers):
        out = res // 2
        macs += res * res * cin * 9 * c  # block 1 conv1 at the input resolution
        macs += out * out * c * 9 * c  # block 1 conv2, stride 2
        macs += out * out * cin * c  # 1x1 stride-2 shortcut
        macs += (n - 1) * 2 * out * out * c * 9 * c
        res, cin = out, c
    return macs + res * res * cin * embedding


def _iresnet_params(widths, layers, size=112, embedding=512):
    p = 3 * 9 * widths[0] + 3 * widths[0]  # conv1, bn1 (gamma, beta), prelu
    cin = widths[0]
    for c, n in zip(widths, layers):
        for i in range(n):
            ci = cin if i == 0 else c
            p += 2 * ci + ci * 9 * c + 2 * c + c + c * 9 * c + 2 * c  # bn1 conv1 bn2 prelu conv2 bn3
            if i == 0:
                p += ci * c + 2 * c
        cin = c
    feat = size // 16
    return p + 2 * cin + cin * feat * feat * embedding + embedding + 2 * embedding


def test_counts_match_an_independent_calculation():
    widths, layers = [8, 16, 16, 32], [2, 1, 3, 1]
    net = create_model("iresnet18", widths=widths, layers=layers, embedding_size=24)
    assert count_params(net) == _iresnet_params(widths, layers, embedding=24)
    assert count_macs(net, 112) == _iresnet_macs(widths, layers, embedding=24)
    assert ms.get_context("mode") == ms.GRAPH_MODE  # restored after the PyNative counting pass
    # the formula itself reproduces insightface's published r100 figures: 65.2 M parameters, 12.1 GMACs
    r100 = ([64, 128, 256, 512], [3, 13, 30, 3])
    assert _iresnet_params(*r100) / 1e6 == pytest.approx(65.16, abs=0.01)
    assert _iresnet_macs(*r100) / 1e9 == pytest.approx(12.09, abs=0.01)


def test_aunet_counts_add_the_heads():
    stats = model_stats("aunet_iresnet18", input_size=112, head_dim=16, fusion_heads=4, lrp_reduction=4, **TINY)
    backbone = model_stats("iresnet18", input_size=112, **TINY)
    assert stats["params_m"] > backbone["params_m"] and stats["gmacs"] > backbone["gmacs"]
    assert stats["gflops"] == pytest.approx(2 * stats["gmacs"], abs=2e-3)


def test_model_table_rows_and_markdown(monkeypatch):
    monkeypatch.setattr(
        "mindface_au.models.zoo.model_stats",
        lambda name, input_size=112: {"name": name, "params_m": 1.0, "gmacs": 2.0, "gflops": 4.0},
    )
    rows = model_table(["aunet_iresnet18", "iresnet18"], f1={"aunet_iresnet18": {"synthau_f1": 70.1}})
    assert rows[0]["checkpoint"] == "aunet_iresnet18_affwild2.ckpt" and rows[0]["synthau_f1"] == 70.1
    text = format_model_table(rows)
    lines = text.splitlines()
    assert lines[0].startswith("| name | params_m | gmacs | gflops | checkpoint | weights | synthau_f1")
    assert len(lines) == 4 and "| iresnet18 |" in lines[3] and lines[3].rstrip().endswith("| - |")


def test_models_table_shows_which_weights_exist_and_how_to_make_the_others(tmp_path):
    """No weights ship: `models --table` says which files are in --weights-dir and how to make each missing one."""
    from helpers import run_cli

    from mindface_au.models.zoo import weights_status

    (tmp_path / "glint360k_r18.ckpt").write_bytes(b"weights")
    proc = run_cli("models", "--table", "*iresnet18", "--weights-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split(" | ")[0].strip("| "): line for line in proc.stdout.splitlines() if "resnet18 |" in line}
    assert sorted(rows) == ["aunet_iresnet18", "iresnet18"]
    assert f"| found: {tmp_path / 'glint360k_r18.ckpt'} |" in rows["iresnet18"]
    assert "| not shipped: train one (mindface-au train) |" in rows["aunet_iresnet18"]
    assert "No weights ship with mindface-au" in proc.stdout
    missing = weights_status("iresnet100", "glint360k_r100.ckpt", str(tmp_path))
    out = tmp_path / "glint360k_r100.ckpt"
    assert missing == f"not shipped: mindface-au convert --src GLINT360K.pth --arch iresnet100 --out {out}"


def test_mac_count_matches_pytorch_flop_counter():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from mindface_au.reference.torch_iresnet import iresnet as torch_iresnet

    for widths, layers, size in ((TINY_WIDTHS, TINY_LAYERS, 112), ([16, 24, 32, 40], [2, 1, 3, 1], 64)):
        net = torch_iresnet("iresnet18", widths=widths, layers=layers, input_size=size).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net(torch.zeros(1, 3, size, size))
        expected = counter.get_total_flops() / 1e9
        ms_net = create_model("iresnet18", widths=widths, layers=layers, input_size=size)
        assert 2 * count_macs(ms_net, size) / 1e9 == pytest.approx(expected, rel=1e-9)


def test_release_file_name_hash_is_checked(tiny_ckpt, tmp_path):
    import shutil

    net, path = tiny_ckpt
    digest = sha256_file(path)[:8]
    good = str(tmp_path / f"iresnet18_tiny-{digest}.ckpt")
    shutil.copy(path, good)
    loaded = create_model("iresnet18", checkpoint_path=good, **TINY)
    for (name, a), (_, b) in zip(net.parameters_and_names(), loaded.parameters_and_names()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=name)
    wrong = "0" * 8 if digest != "0" * 8 else "1" * 8
    bad = str(tmp_path / f"iresnet18_tiny-{wrong}.ckpt")
    shutil.copy(path, bad)
    with pytest.raises(UserError, match=f"file name says sha256 {wrong}.*file's sha256 is {digest}"):
        create_model("iresnet18", checkpoint_path=bad, **TINY)
    # names without an 8-hex-digit hash are not checked (training checkpoints, hand-named files)
    for name in ("epoch_001.ckpt", "iresnet18-best.ckpt", "r18-ABCDEF12.ckpt"):
        shutil.copy(path, tmp_path / name)
        create_model("iresnet18", checkpoint_path=str(tmp_path / name), **TINY)


def test_release_names_are_read_as_they_are_written():
    """One home for the naming (mindface_au.release): the name the CKPT export writes is the one create_model checks."""
    from mindface_au.release import check_spec, named_hash, recipe_name, release_name

    sha = hashlib.sha256(b"weights").hexdigest()
    name = release_name("aunet_iresnet18", "tiny_cpu.v1", sha)
    assert name == f"aunet_iresnet18_tiny_cpu.v1-{sha[:8]}.ckpt" and named_hash(f"/any/{name}") == sha[:8]
    assert recipe_name("aunet_iresnet18", "tiny_cpu.v1") == "aunet_iresnet18_tiny_cpu.v1.yaml"
    assert [named_hash(n) for n in ("epoch_001.ckpt", "r18-ABCDEF12.ckpt", "x-0123456.ckpt")] == [None] * 3
    check_spec("tiny_cpu.v1")
    for bad in ("tiny cpu", "_tiny", "tiny-cpu", ""):
        with pytest.raises(UserError, match="^spec "):
            check_spec(bad)
