"""A model with the intensity head everywhere a model file goes: the loader's `predict_outputs` (checkpoint, MindIR,
ONNX, int8 ONNX) gives both outputs equal to the MindSpore network's, the export metadata records both AU lists and
reads back, a file whose graph lacks the intensity output is refused in one line, `Predictor` returns intensities;
a model without the head exports and loads as before."""

import dataclasses

import mindspore as ms
import numpy as np
import pytest
from conftest import TINY_AUNET, randomise_params

from mindface_au.config import ModelConfig, validate_model_config

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


@pytest.fixture(scope="module")
def head_ckpt(tmp_path_factory):
    """A tiny checkpoint with the intensity head (embedded config, non-trivial BN statistics) and its network."""
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    root = tmp_path_factory.mktemp("intensity_export")
    cfg = _cfg(intensity=True, intensity_au_names=HEAD_AUS)
    net = randomise_params(create_model_from_config(cfg))
    ckpt = str(root / "head.ckpt")
    save_checkpoint_atomic(net, ckpt, model_config=dataclasses.asdict(cfg))
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


def test_metadata_round_trip(head_exports):
    from mindface_au.modelfile.reader import read_model_file

    for kind in ("mindir", "onnx", "int8"):
        mf = read_model_file(head_exports["paths"][kind], device="CPU")
        assert mf.info["intensity_au_names"] == HEAD_AUS == mf.intensity_au_names
        assert mf.info["au_names"] == mf.au_names and len(mf.au_names) == 12
        assert mf.info["outputs"] == ["probabilities", "intensity"]
        assert mf.model_config.intensity and mf.model_config.intensity_au_names == HEAD_AUS
