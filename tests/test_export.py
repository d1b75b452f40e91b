"""`mindface-au export` to MindIR: the exported graph reproduces the checkpoint's probabilities, in Python
(`Predictor`) and in `detect`; errors are one line and leave no file."""

import dataclasses
import json
import os

import cv2
import mindspore as ms
import numpy as np
import pytest
from conftest import TINY_AUNET, run_cli

from mindface_au.config import AU_NAMES, ModelConfig
from mindface_au.errors import UserError

TINY = TINY_AUNET


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny trained-style checkpoint (embedded config, non-trivial BN statistics) and its MindIR via the CLI."""
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("export")
    cfg = ModelConfig(**TINY)
    net = create_model_from_config(cfg)
    rng = np.random.default_rng(0)
    for name, param in net.parameters_and_names():  # move BN statistics off their defaults so eval mode matters
        if name.endswith("moving_mean"):
            param.set_data(ms.Tensor(rng.normal(0, 0.1, param.shape).astype(np.float32)))
        elif name.endswith("moving_variance"):
            param.set_data(ms.Tensor(rng.uniform(0.5, 1.5, param.shape).astype(np.float32)))
    ckpt = str(root / "tiny.ckpt")
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg))
    mindir = str(root / "tiny.mindir")
    proc = run_cli("export", "--ckpt", ckpt, "--format", "MINDIR", "--out", mindir, "--batch-size", 4)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["batch_size"] == 4
    return {"root": root, "ckpt": ckpt, "mindir": mindir, "cfg": cfg, "net": net}


def test_mindir_reproduces_checkpoint_probabilities(exported):
    from mindface_au.inference.predictor import Predictor

    from_ckpt = Predictor(exported["ckpt"], device="CPU", batch_size=4)
    from_mindir = Predictor(exported["mindir"], device="CPU")
    assert (from_mindir.kind, from_mindir.batch_size, from_mindir.input_size) == ("mindir", 4, 32)
    assert from_mindir.au_names == list(AU_NAMES)
    assert from_mindir.model_config == dataclasses.replace(exported["cfg"], backbone_checkpoint="")
    x = np.random.default_rng(1).normal(0, 1, (7, 3, 32, 32)).astype(np.float32)  # 7: the last batch is padded
    a, b = from_ckpt.predict_array(x), from_mindir.predict_array(x)
    assert a.shape == b.shape == (7, 12)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # and both equal an independent sigmoid of the trained network's logits (eval mode)
    net = exported["net"]
    net.set_train(False)
    logits = net(ms.Tensor(x[:4])).asnumpy().astype(np.float64)
    np.testing.assert_allclose(b[:4], 1 / (1 + np.exp(-logits)), atol=1e-6)
    # a padded batch does not change the real rows
    np.testing.assert_allclose(from_mindir.predict_array(x[:1]), b[:1], atol=1e-6)


def test_detect_from_mindir_matches_checkpoint(exported, tmp_path):
    from mindface_au.inference.detect import detect
    from mindface_au.inference.predictor import Predictor

    folder = tmp_path / "crops"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:05d}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    outs = []
    for path in (exported["ckpt"], exported["mindir"]):
        out = str(tmp_path / (os.path.basename(path) + ".csv"))
        detect(str(folder), out, predictor=Predictor(path, device="CPU", batch_size=4), aligned=True, progress=False)
        with open(out) as handle:
            outs.append(handle.read())
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) == 7


def test_export_needs_config_for_plain_checkpoint(exported, tmp_path):
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    plain = str(tmp_path / "plain.ckpt")
    save_checkpoint_atomic(exported["net"], plain)  # no embedded config
    out = str(tmp_path / "plain.mindir")
    proc = run_cli("export", "--ckpt", plain, "--out", out)
    assert proc.returncode == 2 and "embedded model config" in proc.stderr and "plain.ckpt" in proc.stderr
    assert not os.path.exists(out)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in TINY.items()))
    proc = run_cli("export", "--config", cfg, "--ckpt", plain, "--out", out, "--batch-size", 2)
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(out)


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--out", "{root}/x.onnx"], "x.onnx"),
        (["--out", "{root}/x.mindir", "--batch-size", "0"], "--batch-size"),
        (["--ckpt", "{root}/missing.ckpt", "--out", "{root}/x.mindir"], "missing.ckpt"),
        (["--out", "{root}/file.txt/x.mindir"], "x.mindir"),
    ],
)
def test_export_errors_are_one_line(exported, tmp_path, args, culprit):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    args = [a.format(root=tmp_path) for a in args]
    if "--ckpt" not in args:
        args = ["--ckpt", exported["ckpt"]] + args
    proc = run_cli("export", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mindface-au export: error:") and culprit in lines[0], proc.stderr
    assert [n for n in os.listdir(tmp_path) if n != "file.txt"] == []


def test_bad_mindir_is_a_user_error(tmp_path):
    from mindface_au.inference.predictor import Predictor

    bad = tmp_path / "bad.mindir"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(UserError, match="bad.mindir"):
        Predictor(str(bad), device="CPU")
