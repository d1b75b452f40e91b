"""ONNX export and the one loader: .ckpt, .mindir and .onnx give the same probabilities and the same `detect` CSV;
dynamic batch; every Table 3 configuration and a bare backbone export; int8 stays near float32; strict model
configs in all three formats; wrong, corrupt and foreign files are one-line errors that write nothing."""

import dataclasses
import json
import os

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_AUNET, run_cli, run_cli_in_process, run_cli_without, write_random_crops

from mindface_au.config import ModelConfig

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TINY = TINY_AUNET
INT8_TOLERANCE = 0.1  # largest |p_int8 - p_float32| accepted on held-out crops (tiny random net: about 0.02)


def randomise_bn(net, seed: int = 0) -> None:
    """Move BatchNorm statistics off their defaults so folding and eval mode matter."""
    rng = np.random.default_rng(seed)
    for name, param in net.parameters_and_names():
        if name.endswith("moving_mean"):
            param.set_data(ms.Tensor(rng.normal(0, 0.1, param.shape).astype(np.float32)))
        elif name.endswith("moving_variance"):
            param.set_data(ms.Tensor(rng.uniform(0.5, 1.5, param.shape).astype(np.float32)))


def save_ckpt(path: str, **changes) -> ModelConfig:
    from mindface_au.inference.loader import build_network
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    cfg = ModelConfig(**{**TINY, **changes})
    net = build_network(cfg)
    randomise_bn(net)
    save_checkpoint_atomic(net, path, model_config=dataclasses.asdict(cfg))
    return cfg


def crops(n: int, size: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 3, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny checkpoint and its MindIR, ONNX float32 and ONNX int8 files, all through the CLI."""
    root = tmp_path_factory.mktemp("onnx")
    ckpt = str(root / "tiny.ckpt")
    cfg = save_ckpt(ckpt)
    out = {"root": root, "ckpt": ckpt, "cfg": cfg}
    for key, args in {
        "mindir": ["--format", "MINDIR", "--batch-size", 4],
        "onnx": ["--format", "ONNX"],
        "int8": ["--format", "onnx", "--quantize", "int8", "--calib-frames", 48],
    }.items():
        path = str(root / f"tiny_{key}.{'mindir' if key == 'mindir' else 'onnx'}")
        proc = run_cli("export", "--ckpt", ckpt, "--out", path, *args)
        assert proc.returncode == 0, proc.stderr
        out[key] = path
        out[key + "_log"] = proc
    return out


def test_three_formats_give_the_same_probabilities(files):
    from mindface_au.inference.loader import load_inference_model

    models = {k: load_inference_model(files[k], device="CPU", batch_size=8) for k in ("ckpt", "mindir", "onnx")}
    assert [m.backend for m in models.values()] == ["mindspore", "mindir", "onnxruntime"]
    for m in models.values():
        assert m.input_size == 32 and m.out_dim == 12 and m.model_config == files["cfg"]
        assert m.mean == (0.5, 0.5, 0.5) and m.std == (0.5, 0.5, 0.5)
        assert "CPU" in m.describe()
    assert models["mindir"].fixed_batch and not models["onnx"].fixed_batch
    x = crops(7)
    ref = models["ckpt"].predict(x)
    for key in ("mindir", "onnx"):
        np.testing.assert_allclose(models[key].predict(x), ref, rtol=0, atol=1e-4)
    # and the checkpoint (BatchNorm folded) equals the training-form network in eval mode
    from mindface_au.engine.evaluator import load_model
    from mindface_au.inference.loader import AUProbabilities

    net, _ = load_model(files["ckpt"])
    np.testing.assert_allclose(AUProbabilities(net)(ms.Tensor(x)).asnumpy(), ref, rtol=0, atol=1e-5)


def test_onnx_batch_axis_is_dynamic(files):
    from mindface_au.inference.loader import load_inference_model

    model = load_inference_model(files["onnx"], batch_size=64)
    ckpt = load_inference_model(files["ckpt"], batch_size=64)
    for n in (1, 7, 32):
        x = crops(n, seed=n)
        got = model.predict(x)
        assert got.shape == (n, 12)
        np.testing.assert_allclose(got, ckpt.predict(x), rtol=0, atol=1e-4)
    # the graph itself has a symbolic batch and runs every size in one call (no padding in the loader)
    assert not isinstance(model.session.get_inputs()[0].shape[0], int)


def test_export_log_and_metadata(files):
    info = json.loads(files["onnx_log"].stdout.strip().splitlines()[-1])
    assert info["format"] == "ONNX" and info["batch_size"] is None and info["input_size"] == 32
    assert info["max_abs_diff_vs_mindspore"] < 1e-5
    model = onnx.load(files["onnx"])
    meta = json.loads({p.key: p.value for p in model.metadata_props}["mindface_au"])
    assert meta["model"]["name"] == "aunet_iresnet18" and meta["input_size"] == 32 and meta["out_dim"] == 12
    assert meta["mean"] == [0.5, 0.5, 0.5] and meta["output"] == "probabilities"
    assert model.opset_import[0].version == 11


def test_int8_stays_near_float32(files):
    from mindface_au.inference.loader import load_inference_model

    log = files["int8_log"]
    report = json.loads(log.stdout.strip().splitlines()[-1])["int8"]
    assert report["max_diff"] < INT8_TOLERANCE and report["opset"] == 13
    assert "not used for calibration" in report["compared_on"] and "SynthAU" in report["calibration"]
    assert "the float32 file's time" in log.stderr
    model = onnx.load(files["int8"])
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    q = load_inference_model(files["int8"])
    f = load_inference_model(files["onnx"])
    x = crops(16, seed=5)
    assert np.abs(q.predict(x) - f.predict(x)).max() < INT8_TOLERANCE


def test_int8_calibration_folder_and_errors(files, tmp_path):
    folder = write_random_crops(tmp_path / "crops", 10, seed=0)
    out = str(tmp_path / "q.onnx")
    proc = run_cli("export", "--ckpt", files["ckpt"], "--format", "ONNX", "--out", out, "--quantize", "int8",
                   "--calib", folder, "--calib-frames", 5)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])["int8"]
    assert report["calibration"].startswith("5 crops of") and report["compared_on"].startswith("2 crops")
    for args, culprit in [
        (["--format", "MINDIR", "--out", str(tmp_path / "x.mindir"), "--quantize", "int8"], "--quantize"),
        (["--format", "ONNX", "--out", str(tmp_path / "x.onnx"), "--quantize", "int8", "--calib", str(tmp_path / "no")],
         "--calib"),
        (["--format", "ONNX", "--out", str(tmp_path / "x.mindir")], "x.mindir"),
    ]:  # fmt: skip
        proc = run_cli_in_process("export", "--ckpt", files["ckpt"], *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and culprit in lines[0], proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["crops", "q.onnx"]


@pytest.mark.parametrize(
    "changes",
    [
        dict(lrp=False, arl=False, fusion="none"),  # Table 3: IResNet + classifier
        dict(lrp=True, arl=False, fusion="none"),
        dict(lrp=False, arl=True, fusion="none"),
        dict(lrp=True, arl=True, fusion="none"),
        dict(lrp=True, arl=True, fusion="fixed"),
        dict(lrp=True, arl=True, fusion="transformer", embedding_size=24),  # with the token projection
    ],
)
def test_every_table3_configuration_exports(tmp_path, changes):
    from mindface_au.inference.export import export_network
    from mindface_au.inference.loader import build_network, inference_network, load_inference_model

    cfg = ModelConfig(**{**TINY, **changes})
    net = build_network(cfg)
    randomise_bn(net, 3)
    x = crops(7, seed=4)
    expected = inference_network(build_network(cfg), cfg)  # only for shapes; the numbers below use `net`
    assert expected(ms.Tensor(x)).shape == (7, 12)
    net.set_train(False)
    logits = net(ms.Tensor(x)).asnumpy().astype(np.float64)
    out = str(tmp_path / "m.onnx")
    export_network(net, cfg, out, "ONNX", batch_size=4)
    model = load_inference_model(out)
    for n in (1, 7):
        np.testing.assert_allclose(model.predict(x[:n]), 1 / (1 + np.exp(-logits[:n])), rtol=0, atol=1e-5)


def test_bare_backbone_exports_its_embedding(tmp_path):
    from mindface_au.inference.loader import load_inference_model

    ckpt = str(tmp_path / "r18.ckpt")
    cfg = save_ckpt(ckpt, name="iresnet18")
    out = str(tmp_path / "r18.onnx")
    proc = run_cli("export", "--ckpt", ckpt, "--format", "ONNX", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["output"] == "embedding"
    x = crops(3)
    ms_model, ox = load_inference_model(ckpt), load_inference_model(out)
    assert ox.out_dim == cfg.embedding_size == 16 and ox.au_names == []
    np.testing.assert_allclose(ox.predict(x), ms_model.predict(x), rtol=0, atol=1e-4)


def test_detect_writes_the_same_csv_from_all_three(files, tmp_path):
    """Same rows, frames, timestamps, face ids, boxes and 0/1 columns; probabilities within 1e-5 (ONNX Runtime's
    kernels round differently in the 7th decimal, which the 6-decimal CSV can show)."""
    import csv

    from test_detect import write_video  # noqa: I100 - tests/ is on sys.path under pytest

    from mindface_au.inference.detect import detect

    video = str(tmp_path / "faces.avi")
    write_video(video, 12)
    tables = []
    for key in ("ckpt", "mindir", "onnx"):
        out = str(tmp_path / f"{key}.csv")
        summary = detect(video, out, ckpt=files[key], batch_size=4, progress=False, device="CPU")
        assert summary["frames"] == 12
        with open(out, newline="") as handle:
            tables.append(list(csv.reader(handle)))
    header = tables[0][0]
    start, stop = header.index("AU1_prob"), header.index("AU1")
    for table in tables[1:]:
        assert table[0] == header and len(table) == len(tables[0]) == 13
        for a, b in zip(tables[0][1:], table[1:]):
            assert a[:start] == b[:start] and a[stop:] == b[stop:]
            if a[3] == "1":
                np.testing.assert_allclose(np.float64(a[start:stop]), np.float64(b[start:stop]), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ errors
def _tampered(src: str, dst: str, **meta_changes) -> str:
    model = onnx.load(src)
    props = {p.key: p for p in model.metadata_props}
    meta = json.loads(props["mindface_au"].value)
    for key, value in meta_changes.items():
        if key.startswith("model."):
            meta["model"][key[6:]] = value
        else:
            meta[key] = value
    props["mindface_au"].value = json.dumps(meta)
    onnx.save(model, dst)
    return dst


def test_unknown_model_config_key_in_each_format(files, tmp_path):
    """One strict rule for the model config stored in a checkpoint, a MindIR file and an ONNX file."""
    import cv2

    from mindface_au.inference.loader import build_network, inference_network
    from mindface_au.inference.metadata import MODEL_INFO_KEY, model_metadata
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    cfg = files["cfg"]
    net = build_network(cfg)
    bad_ckpt = str(tmp_path / "bad.ckpt")
    save_checkpoint_atomic(net, bad_ckpt, model_config={**dataclasses.asdict(cfg), "colour": 1})
    bad_onnx = _tampered(files["onnx"], str(tmp_path / "bad.onnx"), **{"model.colour": 1})
    info = model_metadata(cfg, 2)
    info["model"]["colour"] = 1

    def add_info(proto) -> None:
        proto.user_info[MODEL_INFO_KEY] = json.dumps(info)

    dummy = ms.Tensor(np.zeros((2, 3, 32, 32), np.float32))
    ms.export(inference_network(net, cfg), dummy, file_name=str(tmp_path / "bad"), file_format="MINDIR",
              custom_func=add_info)  # fmt: skip
    folder = tmp_path / "faces"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((32, 32, 3), np.uint8))
    for path in (bad_ckpt, str(tmp_path / "bad.mindir"), bad_onnx):
        out = str(tmp_path / "out.csv")
        proc = run_cli("detect", "--input", folder, "--output", out, "--ckpt", path, "--aligned", "--no-progress")
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert os.path.basename(path) in lines[0] and "unknown key model.colour" in lines[0], lines[0]
        assert not os.path.exists(out)


@pytest.mark.parametrize("kind", ["width", "size", "corrupt", "foreign"])
def test_wrong_onnx_files_fail_on_one_line_without_csv(files, tmp_path, kind):
    src, path = files["onnx"], str(tmp_path / f"{kind}.onnx")
    if kind == "width":  # an embedding network that claims to be an AU network: 16 outputs, not 12
        ckpt = str(tmp_path / "r18.ckpt")
        save_ckpt(ckpt, name="iresnet18")
        r18 = str(tmp_path / "r18.onnx")
        assert run_cli("export", "--ckpt", ckpt, "--format", "ONNX", "--out", r18).returncode == 0
        _tampered(r18, path, output="probabilities", out_dim=12, **{"model.name": "aunet_iresnet18"})
        culprit = "output shape"
    elif kind == "size":  # metadata says 64, the graph takes 32
        _tampered(src, path, input_size=64, **{"model.input_size": 64})
        culprit = "input shape"
    elif kind == "corrupt":
        with open(src, "rb") as handle:
            data = handle.read()
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
        culprit = "not a readable ONNX model"
    else:  # a valid ONNX file without mindface-au metadata
        model = onnx.load(src)
        del model.metadata_props[:]
        onnx.save(model, path)
        culprit = "no mindface-au metadata"
    video = str(tmp_path / "blank.avi")
    import cv2

    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    out = str(tmp_path / "out.csv")
    proc = run_cli("detect", "--input", video, "--output", out, "--ckpt", path, "--no-progress")
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("mindface-au detect: error:") and culprit in lines[0] and path in lines[0], lines[0]
    assert not os.path.exists(out) and not os.path.exists(out + ".partial")


def test_missing_onnxruntime_names_the_extra(files, tmp_path):
    out = str(tmp_path / "o.csv")
    args = ["detect", "--input", str(tmp_path), "--output", out, "--ckpt", files["onnx"], "--aligned"]
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    proc = run_cli_without("onnxruntime", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and 'pip install "mindface-au[onnx]"' in lines[0], proc.stderr
    assert not os.path.exists(out)
