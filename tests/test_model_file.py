"""The model file is the one source of truth for how to run it (mindface_au.inference.model_file): read once, its
settings used by eval and predict, contradicting --config/--set values refused, smoothing overrides said, older
files read with the packaged defaults (and said), mistyped stored values one line, create_model on a checkpoint of
another architecture one line."""

import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
import yaml
from helpers import TINY_AUNET, run_cli, run_cli_in_process

from mindface_au.config import Config, EvalConfig, ModelConfig, load_config
from mindface_au.errors import UserError
from mindface_au.inference.model_file import read_model_file

NO_CARD_CKPT = os.path.join(os.path.dirname(__file__), "fixtures", "aunet_tiny_no_card.ckpt")  # no card, no settings


def _json(proc):
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def small_model(tiny_synthau, tmp_path_factory):
    """An untrained 32 px network (not the default 112) saved as the trainer saves, with a config of non-default
    prob_k / label_k / threshold: (checkpoint, its run config YAML)."""
    import mindspore as ms

    from mindface_au.model_card import make_card
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    base = tmp_path_factory.mktemp("small_model")
    run_cfg = {
        "model": {k: v for k, v in TINY_AUNET.items() if k != "backbone_checkpoint"},
        "data": {"root": str(tiny_synthau), "eval_batch_size": 16, "num_workers": 1},
        "eval": {"prob_k": 1, "label_k": 2, "threshold": 0.45},
    }
    config = str(base / "config.yaml")
    with open(config, "w") as handle:
        yaml.safe_dump(run_cfg, handle)
    cfg = load_config(config)
    ms.set_seed(3)
    ckpt = str(base / "small.ckpt")
    net = create_model_from_config(cfg.model)
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg.model), card=make_card(cfg))
    return ckpt, config


def test_training_checkpoint_carries_its_settings_and_is_read_once(trained_tiny_run, monkeypatch):
    import mindspore as ms

    from mindface_au.inference.loader import load_inference_model

    mf = read_model_file(trained_tiny_run.best_ckpt)
    assert mf.defaults == ()  # the trainer wrote preprocessing and evaluation settings
    assert mf.eval == EvalConfig(threshold=0.5, prob_k=2, label_k=1)  # helpers.tiny_config's
    size = TINY_AUNET["input_size"]  # helpers.tiny_config's model
    assert (mf.input_size, mf.preprocessing.mean, mf.preprocessing.std) == (size, (0.5,) * 3, (0.5,) * 3)
    assert mf.crop == f"arcface5@{size}" and mf.card["dataset"] == "SynthAU"
    with open(trained_tiny_run.best_ckpt, "rb") as handle:
        assert mf.sha256 == hashlib.sha256(handle.read()).hexdigest()
    resume = read_model_file(os.path.join(trained_tiny_run.run, "checkpoints", "resume.ckpt"))
    assert resume.params and not [n for n in resume.params if n.startswith("moments.") or n == "global_step"]
    assert set(resume.params) == set(mf.params)  # the network's parameters, nothing of the optimiser

    calls = []
    real = ms.load_checkpoint
    monkeypatch.setattr(ms, "load_checkpoint", lambda *a, **k: calls.append(a) or real(*a, **k))
    model = load_inference_model(trained_tiny_run.best_ckpt, device="CPU")
    assert len(calls) == 1 and model.file.eval == mf.eval  # one read: config, parameters and card


def test_eval_model_alone_equals_eval_with_its_run_config(small_model, tiny_synthau):
    ckpt, config = small_model
    alone = run_cli("eval", "--model", ckpt, "--set", f"data.root={tiny_synthau}", "--json")
    with_config = _json(run_cli_in_process("eval", "--config", config, "--model", ckpt, "--json"))
    alone = _json(alone)
    assert (alone["prob_k"], alone["label_k"]) == (1, 2)
    for key in ("mean_f1", "mean_f1_smoothed", "per_au", "per_au_smoothed", "frames"):
        assert alone[key] == with_config[key], key  # to the last digit
    # the echoed config (stderr) is what runs: the file's input size and smoothing, not the packaged 112 / 8
    text = run_cli_in_process("eval", "--model", ckpt, "--set", f"data.root={tiny_synthau}")
    assert text.returncode == 0, text.stderr[-1500:]
    assert "input_size: 32" in text.stderr and "prob_k: 1" in text.stderr and "threshold: 0.45" in text.stderr


def test_trained_run_eval_without_config_gives_the_run_numbers(trained_tiny_run):
    run_config = os.path.join(trained_tiny_run.run, "config.yaml")
    model = trained_tiny_run.best_ckpt
    alone = _json(run_cli_in_process("eval", "--model", model, "--set", f"data.root={trained_tiny_run.data}", "--json"))
    with_config = _json(run_cli_in_process("eval", "--config", run_config, "--model", model, "--json"))
    assert (alone["prob_k"], alone["label_k"]) == (2, 1)
    assert alone["mean_f1_smoothed"] == with_config["mean_f1_smoothed"]
    assert alone["mean_f1"] == with_config["mean_f1"]


def test_contradicting_input_size_or_au_set_is_refused(small_model, tiny_synthau):
    ckpt, _ = small_model
    root = f"data.root={tiny_synthau}"
    for extra, named in (
        (["--set", "model.input_size=64"], ("model.input_size", "64", "32")),
        (["--set", "model.input_size=32", "--set", "data.image_size=32"], None),
    ):
        proc = run_cli_in_process("eval", "--model", ckpt, "--set", root, *extra, "--json")
        if named is None:
            assert proc.returncode == 0, proc.stderr[-1500:]  # agreeing with the file is fine
            continue
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert all(word in lines[0] for word in named) and "small.ckpt" in lines[0], lines[0]
    # the loader refuses the same for detect, Predictor and export (a Config with given values)
    from mindface_au.inference.loader import load_inference_model

    au_set = ["model.au_names=[AU1, AU2]", "model.arl_k=1", "data.format=list", "data.rare_aus=[]"]
    given = load_config(None, au_set)
    with pytest.raises(UserError, match=r"model.au_names: got AU1, AU2, but the model file .* has AU1, AU2, AU4"):
        load_inference_model(ckpt, device="CPU", config=given)
    load_inference_model(ckpt, device="CPU", config=Config())  # nothing given: the file decides


def test_smoothing_override_is_allowed_and_said(small_model, tiny_synthau):
    ckpt, _ = small_model
    proc = run_cli_in_process(
        "eval", "--model", ckpt, "--set", f"data.root={tiny_synthau}", "--set", "eval.label_k=0", "--prob-k", "3",
        "--json",
    )  # fmt: skip
    out = _json(proc)
    assert (out["prob_k"], out["label_k"]) == (3, 0)
    (line,) = [line for line in proc.stderr.splitlines() if "override" in line]
    assert "eval.prob_k 3 (the model file's: 1)" in line and "eval.label_k 0 (the model file's: 2)" in line


def test_older_file_reads_with_the_packaged_defaults_and_says_which(tiny_synthau):
    mf = read_model_file(NO_CARD_CKPT)
    assert mf.eval == EvalConfig() and "eval.prob_k" in mf.defaults and "preprocessing.mean" in mf.defaults
    proc = run_cli_in_process("eval", "--model", NO_CARD_CKPT, "--set", f"data.root={tiny_synthau}", "--json")
    out = _json(proc)
    assert (out["prob_k"], out["label_k"]) == (8, 6)
    (line,) = [line for line in proc.stderr.splitlines() if "packaged defaults" in line and "prob_k" in line]
    assert "prob_k 8, label_k 6, threshold 0.5, mean 0.5, 0.5, 0.5, std 0.5, 0.5, 0.5" in line, line
    # a value the user gives is not a default, and is not reported as overriding anything
    proc = run_cli_in_process("eval", "--model", NO_CARD_CKPT, "--set", f"data.root={tiny_synthau}", "--prob-k", "1")
    assert proc.returncode == 0 and "override" not in proc.stderr
    assert "prob_k 8" not in proc.stderr and "label_k 6, threshold 0.5" in proc.stderr


@pytest.mark.parametrize(
    "model_config, card, key",
    [
        ({**TINY_AUNET, "widths": "wide"}, None, "model.widths"),
        ({**TINY_AUNET, "input_size": "large"}, None, "model.input_size"),
        (TINY_AUNET, {"eval": {"prob_k": "two"}}, "eval.prob_k"),
        (TINY_AUNET, {"eval": {"threshold": 2.0}}, "eval.threshold"),
        (TINY_AUNET, {"preprocessing": {"input_size": 32, "mean": [0.5, 0.5], "std": [0.5] * 3}}, "mean"),
    ],
)
def test_a_mistyped_stored_value_is_one_line(tmp_path, model_config, card, key):
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    path = str(tmp_path / "bad.ckpt")
    save_checkpoint_atomic({"w": np.zeros(2, np.float32)}, path, model_config=dict(model_config), card=card)
    with pytest.raises(UserError, match=key):
        read_model_file(path)
    proc = run_cli_in_process("eval", "--model", path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and key in lines[0] and "bad.ckpt" in lines[0], proc.stderr


def test_onnx_export_carries_the_settings(small_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from mindface_au.inference.export import export_model

    ckpt, _ = small_model
    out = str(tmp_path / "small.onnx")
    export_model(ckpt, out, fmt="ONNX", batch_size=2, device="CPU")
    source, exported = read_model_file(ckpt), read_model_file(out, device="CPU")
    assert exported.defaults == () and exported.eval == source.eval == EvalConfig(0.45, 1, 2)
    assert exported.preprocessing == source.preprocessing and exported.crop == source.crop == "arcface5@32"
    # --set values that contradict the checkpoint are refused by export too
    with pytest.raises(UserError, match="model.input_size: got 64"):
        export_model(ckpt, str(tmp_path / "x.onnx"), fmt="ONNX", config=load_config(None, ["model.input_size=64"]))


def test_create_model_on_another_architecture_is_one_line(small_model):
    from mindface_au.models import create_model

    ckpt, _ = small_model
    with pytest.raises(UserError) as info:
        create_model("aunet_iresnet100", checkpoint_path=ckpt)
    message = str(info.value)
    assert "\n" not in message and "aunet_iresnet100" in message and "holds the network aunet_iresnet18" in message
    with pytest.raises(UserError, match="widths=\\[8, 16, 16, 32\\]"):
        create_model("aunet_iresnet18", checkpoint_path=ckpt, widths=[64, 128, 256, 512])
    # named right: the file's own arguments build it; unnamed: the reader builds it
    net = create_model("aunet_iresnet18", checkpoint_path=ckpt)
    same = read_model_file(ckpt).build_network()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    import mindspore as ms

    net.set_train(False)
    np.testing.assert_allclose(net(ms.Tensor(x)).asnumpy(), same(ms.Tensor(x)).asnumpy(), atol=1e-5)
    assert isinstance(read_model_file(ckpt).model_config, ModelConfig)


def test_model_zoo_page_snippet_runs(small_model, tmp_path, monkeypatch, capsys):
    import re
    import shutil

    page = os.path.join(os.path.dirname(__file__), "..", "docs", "model-zoo.md")
    with open(page, encoding="utf-8") as handle:
        (snippet,) = re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)
    shutil.copy(small_model[0], tmp_path / "best.ckpt")  # an aunet_iresnet18, as the snippet names
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "docs/model-zoo.md", "exec"), {})  # noqa: S102 - the page's own code
    assert "aunet_iresnet18" in capsys.readouterr().out


def test_bench_times_the_file_network(small_model):
    ckpt, _ = small_model
    proc = run_cli_in_process("bench", "--model", ckpt, "--set", "model.input_size=64", "--backend", "mindspore")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "got 64" in proc.stderr
    args = ("bench", "--model", ckpt, "--backend", "mindspore", "--repeats", "1", "--warmup", "0", "--device", "CPU")
    proc = run_cli_in_process(*args)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert "aunet_iresnet18, batch 8" in proc.stdout and "| mindspore |" in proc.stdout


def test_detect_refuses_a_contradicting_set(small_model, tmp_path):
    from helpers import write_random_crops

    faces = write_random_crops(str(tmp_path / "faces"), 2, size=32)
    out = tmp_path / "au.csv"
    args = ["detect", "--input", faces, "--out", out, "--model", small_model[0], "--aligned", "--no-progress"]
    proc = run_cli_in_process(*args, "--set", "model.input_size=64", "--device", "CPU")
    assert proc.returncode == 2 and "model.input_size: got 64" in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["faces"]  # nothing written, no lock left


def test_eval_normalises_with_the_file_mean_and_std():
    """The data pipeline normalises with the packaged mean/std; a file storing others is fed its own."""
    from mindface_au.data.transforms import FaceInput
    from mindface_au.engine.evaluator import _normalisation_remap
    from mindface_au.models import default_face_input

    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 4)).astype(np.float64)
    packaged, stored = default_face_input(4), FaceInput(4, (0.4, 0.45, 0.5), (0.2, 0.25, 0.3))

    def normalise(spec):
        return (pixels / 255 - np.reshape(spec.mean, (1, 3, 1, 1))) / np.reshape(spec.std, (1, 3, 1, 1))

    remapped = _normalisation_remap(stored)(normalise(packaged).astype(np.float32))
    np.testing.assert_allclose(remapped, normalise(stored), atol=1e-5)
    same = normalise(packaged).astype(np.float32)
    assert _normalisation_remap(packaged)(same) is same


def test_export_metadata_reads_back_as_written():
    """One schema (mindface_au.inference.metadata): what the exporters write is what the model-file reader parses."""
    from mindface_au.config import section_from_dict
    from mindface_au.inference.metadata import (
        FORMAT_VERSION,
        encode_metadata,
        model_metadata,
        parse_metadata,
        stored_settings,
    )

    cfg = section_from_dict("model", TINY_AUNET)
    settings = {"preprocessing": {"mean": [0.4, 0.5, 0.6], "crop": "box@32"}, "eval": {"prob_k": 3}}
    card = {"data": "synthau"}
    info = parse_metadata(encode_metadata(model_metadata(cfg, None, "/runs/x/best.ckpt", card=card, settings=settings)),
                          "m.onnx", "ONNX")  # fmt: skip
    assert info["format_version"] == FORMAT_VERSION and info["batch_size"] is None
    assert info["source_checkpoint"] == "best.ckpt" and info["model"]["name"] == cfg.name
    assert info["au_names"] == list(cfg.au_names) and info["out_dim"] == cfg.num_classes
    got_card, stored = stored_settings(info)
    assert got_card == card and stored["eval"] == {"prob_k": 3}
    assert stored["preprocessing"]["mean"] == [0.4, 0.5, 0.6] and stored["preprocessing"]["crop"] == "box@32"
    for raw, problem in (("", "no mindface-au metadata"), ("{", "not valid JSON"), ("{}", "lacks the model")):
        with pytest.raises(UserError, match=problem):
            parse_metadata(raw, "m.onnx", "ONNX")
