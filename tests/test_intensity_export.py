"""A model with the intensity head everywhere a model file goes: the loader's `predict_outputs` (checkpoint, MindIR,
ONNX, int8 ONNX) gives both outputs equal to the MindSpore network's, the export metadata records both AU lists and
reads back, a file whose graph lacks the intensity output is refused in one line, `Predictor` returns intensities;
a model without the head exports and loads as before."""

import dataclasses
import json

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_AUNET, randomise_params

from mindface_au.config import ModelConfig, validate_model_config
from mindface_au.errors import UserError

HEAD_AUS = ["AU6", "AU12", "AU25"]


def _cfg(**kwargs) -> ModelConfig:
    cfg = ModelConfig(**{**TINY_AUNET, **kwargs})
    validate_model_config(cfg, aunet=True)
    return cfg


def _faces(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 3, 32, 32)).astype(np.float32)


def _reference(net, x: np.ndarray):
    """Probabilities (an independent numpy sigmoid of the eval-mode logits) and intensities of the network."""
    net.set_train(False)
    out = net(ms.Tensor(x))
    logits, intensity = out if isinstance(out, tuple) else (out, None)
    probs = 1 / (1 + np.exp(-logits.asnumpy().astype(np.float64)))
    return probs, (None if intensity is None else intensity.asnumpy().astype(np.float64))


def _card(model_cfg: ModelConfig) -> dict:
    from mindface_au.config import load_config
    from mindface_au.model_card import make_card

    cfg = load_config()
    cfg.model = model_cfg
    return make_card(cfg)


@pytest.fixture(scope="module")
def head_ckpt(tmp_path_factory):
    """A tiny checkpoint with the intensity head (embedded config, non-trivial BN statistics) and its network."""
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("intensity_export")
    cfg = _cfg(intensity=True, intensity_au_names=HEAD_AUS)
    ms.set_seed(0)  # the same initial weights whatever ran before in this process (the int8 error depends on them)
    net = randomise_params(create_model_from_config(cfg))
    ckpt = str(root / "head.ckpt")
    card = dict(_card(cfg), val_mean_f1=0.5, val_mean_icc=0.4321)  # as the trainer writes best.ckpt's card
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg), card=card)
    return {"root": root, "ckpt": ckpt, "cfg": cfg, "net": net}


def test_checkpoint_predict_outputs_match_the_network(head_ckpt):
    from mindface_au.modelfile.loader import load_inference_model

    model = load_inference_model(head_ckpt["ckpt"], device="CPU", batch_size=4)
    assert model.intensity_au_names == HEAD_AUS and len(model.au_names) == 12
    x = _faces(7)  # 7 > batch 4: two padded passes
    probs, intensity = model.predict_outputs(x)
    assert probs.shape == (7, 12) and intensity.shape == (7, 3)
    assert probs.dtype == intensity.dtype == np.float32
    ref_p, ref_i = _reference(head_ckpt["net"], x)
    np.testing.assert_allclose(probs, ref_p, atol=1e-5)
    np.testing.assert_allclose(intensity, ref_i, atol=1e-4)
    np.testing.assert_array_equal(model.predict(x), probs)  # predict keeps returning probabilities only
    empty_p, empty_i = model.predict_outputs(x[:0])
    assert empty_p.shape == (0, 12) and empty_i.shape == (0, 3)


@pytest.fixture(scope="module")
def head_exports(head_ckpt):
    """The head checkpoint exported to MindIR (batch 4), ONNX and int8 ONNX (through the package function)."""
    from mindface_au.inference.export import export_model

    root, ckpt = head_ckpt["root"], head_ckpt["ckpt"]
    out = {"mindir": str(root / "head.mindir"), "onnx": str(root / "head.onnx"), "int8": str(root / "head_int8.onnx")}
    infos = {
        "mindir": export_model(ckpt, out["mindir"], "MINDIR", batch_size=4, device="CPU"),
        "onnx": export_model(ckpt, out["onnx"], "ONNX", batch_size=4, device="CPU"),
        "int8": export_model(ckpt, out["int8"], "ONNX", batch_size=4, quantize="int8", calib_frames=24, device="CPU"),
    }
    return {"paths": out, "infos": infos}


@pytest.mark.parametrize("kind", ["mindir", "onnx"])
def test_exports_give_both_outputs_of_the_network(head_ckpt, head_exports, kind):
    from mindface_au.modelfile.loader import load_inference_model

    model = load_inference_model(head_exports["paths"][kind], device="CPU")
    assert model.kind == kind and model.intensity_au_names == HEAD_AUS
    x = _faces(6, seed=4)  # MindIR: 6 over batch 4, the last pass padded
    probs, intensity = model.predict_outputs(x)
    ref_p, ref_i = _reference(head_ckpt["net"], x)
    np.testing.assert_allclose(probs, ref_p, rtol=0, atol=1e-4)
    np.testing.assert_allclose(intensity, ref_i, rtol=0, atol=5e-4)
    info = head_exports["infos"][kind]
    assert info["max_abs_diff_vs_mindspore"] < 1e-4 and info["max_abs_diff_intensity_vs_mindspore"] < 5e-4


def test_onnx_outputs_are_named_and_int8_stays_near(head_ckpt, head_exports):
    import onnx

    from mindface_au.modelfile.loader import load_inference_model

    for kind in ("onnx", "int8"):
        graph = onnx.load(head_exports["paths"][kind]).graph
        assert [o.name for o in graph.output] == ["probabilities", "intensity"]
    report = head_exports["infos"]["int8"]["int8"]
    assert report["max_diff"] < 0.1 and report["max_intensity_diff"] < 0.5  # 0.1 on the 0-1 scale, 5x on 0-5
    from mindface_au.inference.export import calibration_crops

    model = load_inference_model(head_exports["paths"]["int8"], device="CPU")
    _, x, _ = calibration_crops(model.face_input, None, 24, held_out=6)  # face crops not used for calibration
    probs, intensity = model.predict_outputs(x)
    ref_p, ref_i = _reference(head_ckpt["net"], x)
    assert np.abs(probs - ref_p).max() < 0.1 and np.abs(intensity - ref_i).max() < 0.5


def test_model_card_records_the_intensity_aus_and_icc(head_ckpt):
    from mindface_au.modelfile.loader import load_inference_model

    card = _card(head_ckpt["cfg"])
    assert card["intensity_au_names"] == HEAD_AUS and card["val_mean_icc"] is None  # until validation measures it
    assert "intensity_au_names" not in _card(_cfg()) and "val_mean_icc" not in _card(_cfg())
    text = load_inference_model(head_ckpt["ckpt"], device="CPU").card_text()
    assert "# intensity (0-5): 3 AUs (AU6, AU12, AU25); validation mean ICC(3,1) 0.432" in text.splitlines()


def test_metadata_round_trip(head_exports):
    from mindface_au.modelfile.reader import read_model_file

    for kind in ("mindir", "onnx", "int8"):
        mf = read_model_file(head_exports["paths"][kind], device="CPU")
        assert mf.card["intensity_au_names"] == HEAD_AUS and mf.card["val_mean_icc"] == 0.4321
        assert mf.info["intensity_au_names"] == HEAD_AUS == mf.intensity_au_names
        assert mf.info["au_names"] == mf.au_names and len(mf.au_names) == 12
        assert mf.info["outputs"] == ["probabilities", "intensity"]
        assert mf.model_config.intensity and mf.model_config.intensity_au_names == HEAD_AUS


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A tiny checkpoint without the head and its MindIR and ONNX exports."""
    from mindface_au.inference.export import export_model
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("plain_export")
    cfg = _cfg()
    net = randomise_params(create_model_from_config(cfg))
    ckpt = str(root / "plain.ckpt")
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg))
    paths = {"mindir": str(root / "plain.mindir"), "onnx": str(root / "plain.onnx")}
    infos = {
        "mindir": export_model(ckpt, paths["mindir"], "MINDIR", batch_size=4, device="CPU"),
        "onnx": export_model(ckpt, paths["onnx"], "ONNX", batch_size=4, device="CPU"),
    }
    return {"root": root, "ckpt": ckpt, "cfg": cfg, "net": net, "paths": paths, "infos": infos}


# the metadata keys an export of a model without the head carried before the intensity head existed
PLAIN_KEYS = {"format_version", "input_size", "batch_size", "mean", "std", "input", "output", "out_dim", "model"}
PLAIN_KEYS |= {"source_checkpoint", "au_names", "card", "crop", "eval", "max_abs_diff_vs_mindspore"}


def test_model_without_the_head_exports_as_before(plain):
    import onnx

    from mindface_au.modelfile.loader import load_inference_model

    assert [o.name for o in onnx.load(plain["paths"]["onnx"]).graph.output] == ["probs"]
    x = _faces(5, seed=6)
    ref_p, ref_i = _reference(plain["net"], x)
    assert ref_i is None
    for kind in ("ckpt", "mindir", "onnx"):
        path = plain["ckpt"] if kind == "ckpt" else plain["paths"][kind]
        model = load_inference_model(path, device="CPU", batch_size=4)
        assert model.intensity_au_names == [] and model.file.intensity_au_names == []
        probs, intensity = model.predict_outputs(x)
        assert intensity is None and probs.shape == (5, 12)
        np.testing.assert_allclose(probs, ref_p, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(model.predict(x), probs)
        if kind != "ckpt":
            assert set(model.file.info) == PLAIN_KEYS - {"max_abs_diff_vs_mindspore"}  # added after writing
            assert set(plain["infos"][kind]) == PLAIN_KEYS


def _one_line_refusal(path: str) -> str:
    from mindface_au.modelfile.reader import read_model_file

    with pytest.raises(UserError) as err:
        read_model_file(path, device="CPU")
    message = str(err.value)
    assert "\n" not in message and message.startswith(path)
    return message


def test_metadata_naming_intensity_without_the_output_is_refused(plain, tmp_path):
    """Metadata of a model with the head over a graph with one output: refused by the reader, in one line."""
    import onnx

    from mindface_au.inference.export.mindir import write_mindir
    from mindface_au.inference.metadata import MODEL_INFO_KEY
    from mindface_au.modelfile.loader import inference_network

    head_cfg = _cfg(intensity=True, intensity_au_names=HEAD_AUS)
    # ONNX: the plain graph, its metadata rewritten to the head model's
    model = onnx.load(plain["paths"]["onnx"])
    entry = [p for p in model.metadata_props if p.key == MODEL_INFO_KEY][0]
    info = json.loads(entry.value)
    info.update(model=dataclasses.asdict(head_cfg), intensity_au_names=HEAD_AUS, outputs=["probabilities", "intensity"])
    entry.value = json.dumps(info)
    onnx_path = str(tmp_path / "lying.onnx")
    onnx.save(model, onnx_path)
    assert "intensity AUs AU6, AU12, AU25" in _one_line_refusal(onnx_path)
    # MindIR: the plain network written with the head model's metadata
    mindir_path = str(tmp_path / "lying.mindir")
    write_mindir(inference_network(plain["net"], plain["cfg"]), head_cfg, mindir_path, 4)
    assert "the graph has 1 output(s), but its metadata expects 2" in _one_line_refusal(mindir_path)
    # metadata intensity AUs that contradict the model config
    info.update(model=dataclasses.asdict(plain["cfg"]))
    info.pop("outputs")
    entry.value = json.dumps(info)
    other = str(tmp_path / "other.onnx")
    onnx.save(model, other)
    assert "metadata intensity_au_names AU6, AU12, AU25 differs" in _one_line_refusal(other)


def test_predictor_returns_intensities(head_ckpt, plain):
    from mindface_au.data.transforms import preprocess_faces
    from mindface_au.inference.predictor import Predictor

    crops = list(np.random.default_rng(7).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8))
    predictor = Predictor(head_ckpt["ckpt"], device="CPU", batch_size=4, show_card=False)
    assert predictor.intensity_au_names == HEAD_AUS
    probs, intensity = predictor.predict_images(crops, aligned=True, intensity=True)
    ref_p, ref_i = _reference(head_ckpt["net"], preprocess_faces(crops, predictor.face_input))
    np.testing.assert_allclose(probs, ref_p, rtol=0, atol=1e-5)
    np.testing.assert_allclose(intensity, ref_i, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(predictor.predict_images(crops, aligned=True), probs)  # the default: probabilities
    without = Predictor(plain["ckpt"], device="CPU", batch_size=4, show_card=False)
    assert without.intensity_au_names == []
    probs, intensity = without.predict_images(crops, aligned=True, intensity=True)
    assert probs.shape == (3, 12) and intensity is None


def test_to_dataframe_puts_intensity_columns_after_the_probabilities(head_ckpt, tmp_path):
    """Predictor.predict_video rows through to_dataframe: AUxx_intensity columns after the AUxx_prob (and 0/1)
    columns, equal to predict_outputs at the CSV's 4 decimals."""
    pytest.importorskip("pandas")
    import cv2

    from mindface_au.data.transforms import preprocess_faces
    from mindface_au.inference.detect import to_dataframe
    from mindface_au.inference.predictor import Predictor

    crops = list(np.random.default_rng(8).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8))
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"{i}.png"), crop)
    predictor = Predictor(head_ckpt["ckpt"], device="CPU", batch_size=4, show_card=False)
    frame = to_dataframe(predictor.predict_video(str(folder), aligned=True))
    columns = list(frame.columns)
    wanted = [f"{au}_intensity" for au in HEAD_AUS]
    assert [c for c in columns if c.endswith("_intensity")] == wanted
    last_au_column = max(columns.index(c) for c in columns if c.startswith("AU") and not c.endswith("_intensity"))
    assert min(columns.index(c) for c in wanted) > last_au_column
    _, ref_i = predictor.predict_outputs(
        preprocess_faces([cv2.imread(str(folder / f"{i}.png")) for i in range(2)], predictor.face_input)
    )
    np.testing.assert_array_equal(
        np.round(frame[wanted].to_numpy(np.float64), 4), np.round(ref_i.astype(np.float64), 4)
    )


def test_bench_measures_the_intensity_head_cost():
    """The benchmark's intensity-head row: both forward medians and their cost, rounded as the report rounds it."""
    import os
    import sys

    from helpers import TINY_LAYERS, TINY_WIDTHS

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/ is not installed
    from benchmarks import measure
    from benchmarks import report as bench_report

    spec = {"framework": "mindspore", "model": "aunet_iresnet18", "mode": "forward", "batch": 2,
            "widths": TINY_WIDTHS, "layers": TINY_LAYERS, "input_size": 32, "warmup": 1, "repeats": 2,
            "device": "CPU", "threads": 1}  # fmt: skip
    row = measure.measure_intensity_head(spec)
    assert row["intensity_s"] > 0 and row["aunet_s"] > 0
    assert row["intensity_cost"] == round(row["intensity_s"] / row["aunet_s"] - 1.0, 3)
    with pytest.raises(ValueError, match="forward pass only"):
        measure.measure_intensity_head(dict(spec, mode="train"))
    rows = [{"framework": "mindspore", "model": "aunet_iresnet18", "mode": "forward", "batch": 8, "intensity_s": 0.105,
             "aunet_s": 0.1, "intensity_cost": 0.05}, {"framework": "mindspore", "model": "aunet_iresnet50",
             "mode": "forward", "batch": 8, "error": "boom"}]  # fmt: skip
    report = {"machine": {"mindspore": "x", "torch": "y", "numpy": "z", "threads": 2, "cpus": 2, "processor": "p"},
              "matmul": {}, "models": [], "intensity_head": rows}  # fmt: skip
    assert "| mindspore | aunet_iresnet18 | forward | 8 | 0.1050 | 0.1000 | +5.0% |" in bench_report.format_table(
        report
    )
    assert "intensity head aunet_iresnet50 forward: boom" in bench_report.failures(report)


def test_release_checkpoint_keeps_the_head(head_ckpt, tmp_path):
    """--format CKPT: the release file of a model with the head loads with both outputs and its card."""
    from mindface_au.config import load_config
    from mindface_au.inference.export import export_model
    from mindface_au.modelfile.loader import load_inference_model

    recipe = load_config()
    recipe.model = dataclasses.replace(head_ckpt["cfg"], backbone_checkpoint="")
    result = export_model(
        head_ckpt["ckpt"], str(tmp_path / "release"), "CKPT", config=recipe, spec="head", device="CPU"
    )
    model = load_inference_model(result["out"], device="CPU", batch_size=4)
    assert model.intensity_au_names == HEAD_AUS and model.card["intensity_au_names"] == HEAD_AUS
    x = _faces(3, seed=9)
    probs, intensity = model.predict_outputs(x)
    ref_p, ref_i = _reference(head_ckpt["net"], x)
    np.testing.assert_allclose(probs, ref_p, rtol=0, atol=1e-5)
    np.testing.assert_allclose(intensity, ref_i, rtol=0, atol=1e-4)
