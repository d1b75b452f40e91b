"""Benchmark suite and the performance changes: FLOP count, PReLU forms, BN folding, the PyTorch twin, the CLI."""

import json
import os

import mindspore as ms
import numpy as np
import pytest
from conftest import TINY_LAYERS, TINY_WIDTHS

from mindface_au import bench
from mindface_au.models import iresnet
from mindface_au.models.iresnet import PReLU, create_iresnet, fuse_for_inference


def _randomise(net, seed=0):
    """Non-trivial BN statistics/affine and PReLU slopes, so a folding or mapping mistake shows."""
    rng = np.random.default_rng(seed)
    for param in net.get_parameters():
        name, shape = param.name, param.shape
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("moving_mean", "beta")):
            value = rng.normal(0.0, 0.3, shape)
        elif name.endswith("gamma") and param.requires_grad:
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(".w"):
            value = rng.uniform(0.0, 0.5, shape)
        else:
            continue
        param.set_data(ms.Tensor(value.astype(np.float32)))
    return net


def _x(batch=2, size=112, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)


# ------------------------------------------------------------------------------------------- FLOP count
def test_iresnet100_forward_is_24_2_gflop():
    assert bench.iresnet_forward_gflop(iresnet.IRESNET_LAYERS["iresnet100"]) == pytest.approx(24.2, abs=0.05)


def test_flop_count_matches_pytorch_flop_counter():
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from mindface_au.reference.torch_iresnet import iresnet as torch_iresnet

    for widths, layers, size in ((TINY_WIDTHS, TINY_LAYERS, 112), ([16, 24, 32, 40], [2, 1, 3, 1], 64)):
        net = torch_iresnet("iresnet18", widths=widths, layers=layers, input_size=size).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net(torch.zeros(1, 3, size, size))
        expected = counter.get_total_flops() / 1e9
        assert bench.iresnet_forward_gflop(layers, widths, size, embedding=512) == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------------------------- PReLU forms
def _prelu_numpy(x, w):
    wb = w.reshape(1, -1, 1, 1)
    return np.where(x > 0, x, wb * x), np.where(x > 0, 1.0, wb), (np.minimum(x, 0.0)).sum(axis=(0, 2, 3))


@pytest.mark.parametrize("form", ["relu", "native", "auto"])
@pytest.mark.parametrize("training", [False, True])
def test_prelu_forms_match_numpy_values_and_gradients(form, training):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    w = rng.uniform(0.0, 0.5, 5).astype(np.float32)
    cell = PReLU(5, form=form)
    cell.w.set_data(ms.Tensor(w))
    cell.set_train(training)
    expected, dx_expected, dw_expected = _prelu_numpy(x, w)
    np.testing.assert_allclose(cell(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6, atol=1e-7)
    grads = ms.grad(cell, grad_position=0, weights=cell.trainable_params())(ms.Tensor(x))
    (dx,), (dw,) = (grads[0],), grads[1]
    np.testing.assert_allclose(dx.asnumpy(), dx_expected, rtol=1e-6, atol=1e-7)  # d(sum)/dx with dout = 1
    np.testing.assert_allclose(dw.asnumpy(), dw_expected, rtol=1e-5, atol=1e-6)
    assert [p.name for p in cell.get_parameters()] == ["w"]


def test_prelu_form_rejects_unknown_and_defaults_to_native():
    with pytest.raises(ValueError, match="PReLU form"):
        PReLU(3, form="fast")
    assert PReLU(3).form == "native"  # the relu form's broadcast multiply costs 1.7-3.4x inference memory


# ------------------------------------------------------------------------------------------- BN folding
def test_fuse_for_inference_is_exact_and_recompiles():
    net = _randomise(create_iresnet("iresnet18", widths=TINY_WIDTHS, layers=[1, 2, 1, 1]))
    net.set_train(False)
    x = ms.Tensor(_x())
    before = net(x).asnumpy()  # compiles the unfused graph first: the fused net must not reuse it
    n_bn_before = sum(isinstance(c, ms.nn.BatchNorm2d) for _, c in net.cells_and_names())
    fused = fuse_for_inference(net)
    after = fused(x).asnumpy()
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    # only each block's bn1 is left (it precedes a zero-padded conv); names stay unique full paths
    blocks = 5
    n_bn_after = sum(isinstance(c, ms.nn.BatchNorm2d) for _, c in fused.cells_and_names())
    assert n_bn_after == blocks and n_bn_before > n_bn_after
    assert not any(isinstance(c, ms.nn.BatchNorm1d) for _, c in fused.cells_and_names())
    names = [p.name for p in fused.get_parameters()]
    assert len(names) == len(set(names)) and "layer1.0.conv1.bias" in names
    assert fuse_for_inference(fused) is fused  # idempotent


def test_fuse_for_inference_inside_aunet():
    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config

    cfg = ModelConfig(name="aunet_iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, head_dim=16, fusion_heads=4)
    net = _randomise(create_model_from_config(cfg))
    net.set_train(False)
    x = ms.Tensor(_x(seed=2))
    before = net(x).asnumpy()
    after = fuse_for_inference(net)(x).asnumpy()
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())


# ------------------------------------------------------------------------------------------- PyTorch twin
def test_torch_twin_matches_mindspore_aunet():
    torch = pytest.importorskip("torch")
    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config
    from mindface_au.reference.torch_aunet import build_torch_model, load_mindspore_params, torch_au_loss

    cfg = ModelConfig(name="aunet_iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, head_dim=16, fusion_heads=4)
    net = _randomise(create_model_from_config(cfg))
    net.set_train(False)
    twin = build_torch_model(cfg.name, widths=TINY_WIDTHS, layers=TINY_LAYERS, head_dim=16, fusion_heads=4)
    load_mindspore_params(twin, {p.name: p.asnumpy() for p in net.get_parameters()})
    twin.eval()
    x = _x(batch=4, seed=3)
    ms_logits = net(ms.Tensor(x)).asnumpy()
    with torch.no_grad():
        torch_logits = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(torch_logits, ms_logits, rtol=1e-4, atol=1e-4 * np.abs(ms_logits).max())

    from mindface_au.config import LossConfig
    from mindface_au.losses import create_loss

    logits = np.random.default_rng(4).normal(0, 3, (6, 12)).astype(np.float32)
    labels = (np.random.default_rng(5).uniform(size=(6, 12)) > 0.6).astype(np.float32)
    ms_loss = float(create_loss(LossConfig())(ms.Tensor(logits), ms.Tensor(labels)).asnumpy())
    torch_loss = float(torch_au_loss(torch.from_numpy(logits), torch.from_numpy(labels)))
    assert torch_loss == pytest.approx(ms_loss, rel=1e-5)


def test_torch_twin_rejects_unmatched_parameters():
    pytest.importorskip("torch")
    from mindface_au.reference.torch_aunet import build_torch_model, load_mindspore_params

    twin = build_torch_model("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS)
    with pytest.raises(KeyError, match="no PyTorch counterpart"):
        load_mindspore_params(twin, {"nonexistent.gamma": np.zeros(3, np.float32)})
    with pytest.raises(KeyError, match="not set from MindSpore"):
        load_mindspore_params(twin, {"conv1.weight": np.zeros((8, 3, 3, 3), np.float32)})


# ------------------------------------------------------------------------------------------- report arithmetic
def test_ratios_and_table_from_rows():
    rows = [
        {
            "framework": "mindspore",
            "model": "iresnet18",
            "mode": "train",
            "batch": 8,
            "median_s": 2.0,
            "peak_rss_mb": 120.0,
            "images_per_s": 4.0,
        },
        {
            "framework": "torch",
            "model": "iresnet18",
            "mode": "train",
            "batch": 8,
            "median_s": 2.5,
            "peak_rss_mb": 100.0,
            "images_per_s": 3.2,
        },
        {
            "framework": "mindspore",
            "model": "aunet_iresnet18",
            "mode": "train",
            "batch": 8,
            "median_s": 2.1,
            "peak_rss_mb": 130.0,
            "images_per_s": 3.8,
        },
        {"framework": "torch", "model": "aunet_iresnet18", "mode": "train", "batch": 8, "error": "boom"},
    ]
    ratios = bench._ratios(rows)
    assert ratios == [
        {
            "model": "iresnet18",
            "mode": "train",
            "batch": 8,
            "ratio": 0.8,
            "mindspore_s": 2.0,
            "torch_s": 2.5,
            "rss_ratio": 1.2,
        }
    ]
    heads = [
        {"framework": "mindspore", "model": "aunet_iresnet18", "mode": "train", "batch": 8, "aunet_s": 2.1,
         "backbone_s": 2.0, "heads_cost": 0.05},
        {"framework": "torch", "model": "aunet_iresnet18", "mode": "train", "batch": 8, "error": "oops"},
    ]  # fmt: skip
    report = {
        "machine": {"mindspore": "x", "torch": "y", "numpy": "z", "threads": 2, "cpus": 2, "processor": "p"},
        "matmul": {"numpy": {"size": 64, "gflops": 10.0, "peak_rss_mb": 50.0}},
        "matmul_limit_gflops": 10.0,
        "matmul_limit_source": "numpy",
        "models": rows,
        "ratios": ratios,
        "heads": heads,
        "failed": ["x"],
    }
    table = bench.format_table(report)
    assert "| iresnet18 | train | 8 | 0.80 | - | 1.20 |" in table
    ratios[0]["alternating"] = 0.75
    assert "| iresnet18 | train | 8 | 0.80 | 0.75 | 1.20 |" in bench.format_table(report)
    assert "| 2.1000 | 2.0000 | +5.0% |" in table and "failed: boom" in table and "failed: oops" in table


def test_worker_failure_is_reported_not_raised():
    result = bench.run_worker({"kind": "nonsense"}, timeout=300)
    assert "unknown measurement kind" in result["error"]


def test_postprocess_measurement_counts_frames():
    result = bench.measure_postprocess(5000, repeats=1)
    assert result["frames"] == 5000
    assert result["frames_per_s"] == pytest.approx(5000 / result["median_s"], rel=1e-3)


# ------------------------------------------------------------------------------------------- CLI
def test_bench_cli_quick_tiny(cli, tmp_path):
    out = tmp_path / "bench.json"
    proc = cli(
        "bench", "--quick", "--model", "iresnet18", "--model", "aunet_iresnet18",
        "--widths", ",".join(map(str, TINY_WIDTHS)), "--layers", ",".join(map(str, TINY_LAYERS)),
        "--matmul-size", "128", "--post-frames", "2000", "--repeats", "1", "--pipeline-batches", "2",
        "--json", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == []
    assert report["machine"]["threads"] >= 1
    assert {"numpy", "mindspore"} <= set(report["matmul"]) and report["matmul_limit_gflops"] > 0
    has_torch = report["machine"]["torch"][0].isdigit()
    frameworks = {"mindspore", "torch"} if has_torch else {"mindspore"}
    measured = {(r["framework"], r["model"], r["mode"]) for r in report["models"]}
    for framework in frameworks:
        for model in ("iresnet18", "aunet_iresnet18"):
            assert {(framework, model, "forward"), (framework, model, "train")} <= measured
    for row in report["models"]:
        assert row["batch"] == 8 and row["images_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert row["images_per_s"] == pytest.approx(8 / row["median_s"], rel=1e-2)
    assert len(report["heads"]) == 2 * len(frameworks)  # forward and train per framework
    for row in report["heads"]:
        assert row["heads_cost"] == pytest.approx(row["aunet_s"] / row["backbone_s"] - 1.0, abs=1e-3)
    assert len(report["ratios"]) == (4 if has_torch else 0)
    for ratio in report["ratios"]:
        assert ratio["ratio"] == pytest.approx(ratio["mindspore_s"] / ratio["torch_s"], rel=1e-2)
        assert isinstance(ratio["alternating"], float) and ratio["alternating"] > 0
    assert report["pipeline"]["images_per_s"] > 0 and report["postprocess"]["frames"] == 2000
    assert "| framework | model | mode | batch | images/s" in proc.stdout


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--model", "nosuchnet"], "nosuchnet"),
        (["--model", "iresnet18", "--widths", "8,16"], "--widths"),
        (["--model", "iresnet18", "--json", "/nonexistent-folder/x/bench.json"], "--json"),
    ],
)
def test_bench_cli_errors(cli, tmp_path, args, culprit):
    proc = cli("bench", "--quick", *args, "--no-torch")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("mindface-au bench: error:") and culprit in lines[-1]
    assert not os.path.exists("/nonexistent-folder")
