"""`mindface-au export` to MindIR: the exported graph reproduces the checkpoint's probabilities, in Python
(`Predictor`) and in `detect`; errors are one line and leave no file. `--format CKPT`: the model-zoo release file
(name, hash, contents, recipe) loads through `create_model`, the loader, `eval` and `detect` with the source's
probabilities."""

import dataclasses
import hashlib
import json
import os
import re

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_AUNET, randomise_params, run_cli, run_cli_in_process, write_random_crops

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
    proc = run_cli("export", "--model", ckpt, "--format", "MINDIR", "--out", mindir, "--batch-size", 4)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["batch_size"] == 4  # stdout holds only the JSON (the config echo is on stderr)
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

    folder = write_random_crops(tmp_path / "crops", 6, seed=2)
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
    proc = run_cli_in_process("export", *args)
    assert proc.returncode == (1 if "file.txt/" in " ".join(args) else 2)  # a file where a folder is needed: 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mindface-au export: error:") and culprit in lines[0], proc.stderr
    assert [n for n in os.listdir(tmp_path) if n != "file.txt"] == []


def test_bad_mindir_is_a_user_error(tmp_path):
    from mindface_au.inference.predictor import Predictor

    bad = tmp_path / "bad.mindir"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(UserError, match="bad.mindir"):
        Predictor(str(bad), device="CPU")


# ------------------------------------------------------------------------------------------------ --format CKPT
OPTIMISER_KEYS = ("global_step", "learning_rate", "momentum", "epoch_num", "best")


def _sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def release(tmp_path_factory, tiny_synthau):
    """A run folder as training leaves it (config.yaml; best.ckpt; resume.ckpt with Momentum state and counters)
    for a tiny network on a tiny SynthAU set, and its release written by the CLI from best.ckpt."""
    from helpers import tiny_config  # noqa: I100 - tests/ is on sys.path under pytest
    from mindspore import nn

    from mindface_au.config import load_config
    from mindface_au.engine.run_dir import RunDirectory
    from mindface_au.models import create_model_from_config

    root = tmp_path_factory.mktemp("release")
    config = tiny_config(tiny_synthau, root / "tiny.yaml")  # the session's SynthAU set (conftest), read-only
    cfg = load_config(config, ["model.input_size=32", f"train.out_dir={root / 'run'}"])
    net = randomise_params(create_model_from_config(cfg.model))
    run = RunDirectory(cfg.train.out_dir, model_config=dataclasses.asdict(cfg.model))
    run.save_config(cfg)
    best = run.save_checkpoint(net, "best", 2)
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    train_net = nn.TrainOneStepCell(nn.WithLossCell(net, nn.BCEWithLogitsLoss()), optimizer)
    resume = run.save_checkpoint(train_net, "resume", 2, extra={"best": json.dumps({"epoch": 2})})
    out = root / "release"
    info = _last_json(run_cli("export", "--format", "CKPT", "--ckpt", best, "--out", out, "--device", "CPU"))
    return {"root": root, "cfg": cfg, "net": net, "best": best, "resume": resume, "out": out, "info": info}


def test_release_name_is_model_spec_and_sha256_of_its_bytes(release):
    info, out = release["info"], release["out"]
    name = os.path.basename(info["out"])
    match = re.fullmatch(r"aunet_iresnet18_run-([0-9a-f]{8})\.ckpt", name)  # spec: the run folder's name
    assert match, name
    assert info["sha256"] == _sha256(info["out"]) and match.group(1) == info["sha256"][:8]
    assert sorted(os.listdir(out)) == sorted([name, "aunet_iresnet18_run.yaml"])  # no temporary file left behind
    assert (info["spec"], info["model"], info["bytes"]) == ("run", "aunet_iresnet18", os.path.getsize(info["out"]))


def test_release_holds_the_network_parameters_only(release):
    from mindface_au.models.checkpoint import MODEL_CONFIG_KEY

    stored = ms.load_checkpoint(release["info"]["out"])
    params = {k: v for k, v in stored.items() if isinstance(v, ms.Parameter)}
    assert sorted(params) == sorted(name for name, _ in release["net"].parameters_and_names())
    assert not [k for k in stored if k.startswith("moments.") or k in OPTIMISER_KEYS]
    assert {v.dtype for v in params.values()} == {ms.float32}
    assert set(stored) - set(params) == {MODEL_CONFIG_KEY}
    assert json.loads(stored[MODEL_CONFIG_KEY]) == dataclasses.asdict(release["cfg"].model)
    source = ms.load_checkpoint(release["resume"])
    assert [k for k in source if k.startswith("moments.")] and "global_step" in source  # the source had them
    size = os.path.getsize(release["info"]["out"])
    assert size < os.path.getsize(release["best"]) and size < 0.6 * os.path.getsize(release["resume"])


def test_release_from_resume_checkpoint_with_spec_is_the_same_file(release, tmp_path):
    out = tmp_path / "zoo"
    args = ("--ckpt", release["resume"], "--out", out, "--spec", "tiny_cpu.v1", "--device", "CPU")
    info = _last_json(run_cli("export", "--format", "CKPT", *args))
    assert os.path.basename(info["out"]) == f"aunet_iresnet18_tiny_cpu.v1-{release['info']['sha256'][:8]}.ckpt"
    assert _sha256(info["out"]) == release["info"]["sha256"]  # same parameters, same bytes: moments dropped
    assert os.path.isfile(out / "aunet_iresnet18_tiny_cpu.v1.yaml")


def test_release_recipe_is_the_run_config(release):
    from mindface_au.config import load_config

    recipe = load_config(release["info"]["recipe"])
    assert recipe == load_config(os.path.join(release["cfg"].train.out_dir, "config.yaml")) == release["cfg"]


def test_release_loads_with_create_model_loader_eval_and_detect(release, tmp_path):
    from mindface_au.data import get_split
    from mindface_au.engine.evaluator import evaluate, predict_videos
    from mindface_au.inference.loader import load_inference_model
    from mindface_au.models import create_model

    path, best, cfg = release["info"]["out"], release["best"], release["cfg"]
    kwargs = {k: v for k, v in dataclasses.asdict(cfg.model).items() if k != "name"}
    net = create_model(cfg.model.name, checkpoint_path=path, **kwargs)
    x = np.random.default_rng(3).normal(0, 1, (4, 3, 32, 32)).astype(np.float32)
    source = release["net"]
    source.set_train(False)
    net.set_train(False)
    np.testing.assert_array_equal(net(ms.Tensor(x)).asnumpy(), source(ms.Tensor(x)).asnumpy())
    a = load_inference_model(path, device="CPU", batch_size=4)
    b = load_inference_model(best, device="CPU", batch_size=4)
    assert a.model_config == b.model_config
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    videos = get_split(cfg.data)[1]  # the frames `eval` scores
    for (ids_a, probs_a), (ids_b, probs_b) in zip(
        predict_videos(a, videos, cfg.data), predict_videos(b, videos, cfg.data)
    ):
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(probs_a, probs_b)
    from_best = evaluate(cfg, best, device="CPU")
    proc = run_cli("eval", "--config", release["info"]["recipe"], "--ckpt", path, "--json", "--device", "CPU")
    assert proc.returncode == 0, proc.stderr[-2000:]
    scored = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert scored["mean_f1"] == pytest.approx(from_best["mean_f1"], abs=1e-12)
    assert scored["per_au_smoothed"] == pytest.approx(from_best["per_au_smoothed"], abs=1e-12)
    crops = write_random_crops(tmp_path / "crops", 5, seed=4)
    csvs = []
    for model_file in (path, best):
        csv = tmp_path / (os.path.basename(model_file) + ".csv")
        args = ("--input", crops, "--output", csv, "--ckpt", model_file, "--aligned", "--no-progress")
        proc = run_cli("detect", *args, "--device", "CPU")
        assert proc.returncode == 0, proc.stderr[-2000:]
        csvs.append(csv.read_text())
    assert csvs[0] == csvs[1] and len(csvs[0].splitlines()) == 6


@pytest.mark.parametrize(
    "case, culprit",
    [
        ("out_is_file", "is a file"),
        ("plain_no_config", "no embedded model config"),
        ("no_recipe", "no recipe"),
        ("mindir_source", "already an exported MindIR"),
        ("onnx_source", "already an exported ONNX"),
        ("bad_spec", "--spec"),
        ("other_model", "model.head_dim"),
    ],
)
def test_release_errors_are_one_line_and_write_nothing(release, exported, tmp_path, case, culprit):
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    out = tmp_path / "zoo"
    ckpt = release["best"]
    extra = []
    if case == "out_is_file":
        out = tmp_path / "zoo.txt"
        out.write_text("a file")
    elif case in ("plain_no_config", "no_recipe"):  # outside any run folder
        ckpt = str(tmp_path / "loose.ckpt")
        cfg = dataclasses.asdict(release["cfg"].model) if case == "no_recipe" else None
        save_checkpoint_atomic(release["net"], ckpt, model_config=cfg)
    elif case == "mindir_source":
        ckpt = exported["mindir"]
    elif case == "onnx_source":
        ckpt = str(tmp_path / "model.onnx")
        open(ckpt, "wb").close()
    elif case == "bad_spec":
        extra = ["--spec", "my recipe/v1"]
    elif case == "other_model":
        extra = ["--config", release["info"]["recipe"], "--set", "model.head_dim=32"]
    before = sorted(os.listdir(tmp_path))
    proc = run_cli_in_process("export", "--format", "CKPT", "--ckpt", ckpt, "--out", out, *extra)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mindface-au export: error:") and culprit in lines[0], proc.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing written: no zoo/ folder, no file
