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
