"""The intensity head (model.intensity): outputs, the unchanged network without it, the loss and a GRAPH-mode step."""

import dataclasses

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_AUNET
from mindspore import nn

from mindface_au.config import ModelConfig, load_config, validate_model_config
from mindface_au.errors import UserError
from mindface_au.losses import IntensityLoss, OccurrenceIntensityLoss, create_loss
from mindface_au.models import create_model_from_config


def _cfg(**kwargs) -> ModelConfig:
    cfg = ModelConfig(**{**TINY_AUNET, **kwargs})
    validate_model_config(cfg, aunet=True)
    return cfg


def _images(n: int = 4, seed: int = 0) -> ms.Tensor:
    return ms.Tensor(np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32))


def test_no_head_means_the_same_network():
    """model.intensity off: same parameter names and a single logits output, as before the head existed."""
    plain = create_model_from_config(_cfg())
    off = create_model_from_config(_cfg(intensity=False))
    assert [p.name for p in plain.get_parameters()] == [p.name for p in off.get_parameters()]
    assert not any("intensity" in p.name for p in off.get_parameters())
    off.set_train(False)
    out = off(_images())
    assert isinstance(out, ms.Tensor) and out.shape == (4, 12)


@pytest.mark.parametrize("arl,fusion", [(True, "transformer"), (True, "none"), (False, "none")])
def test_head_outputs_lie_in_0_5(arl, fusion):
    cfg = _cfg(arl=arl, fusion=fusion, intensity=True, intensity_au_names=["AU6", "AU12", "AU25"])
    net = create_model_from_config(cfg)
    net.set_train(False)
    logits, intensity = net(_images())
    assert logits.shape == (4, 12) and intensity.shape == (4, 3)
    values = intensity.asnumpy()
    assert np.all(values >= 0) and np.all(values <= 5) and np.isfinite(values).all()
    kind = "NodeIntensityHead" if arl else "EmbeddingIntensityHead"
    assert type(net.intensity_head).__name__ == kind
    assert net.intensity_au_names == ("AU6", "AU12", "AU25")


def test_node_head_reads_the_named_aus_nodes():
    """On the graph, intensity k is 5 * sigmoid(<w_k, node_{index of AU k}> + b_k): checked against numpy."""
    cfg = _cfg(fusion="none", intensity=True, intensity_au_names=["AU25", "AU1"])
    net = create_model_from_config(cfg)
    net.set_train(False)
    x = _images(2, seed=3)
    feats = net.backbone.forward_features(x)
    attended, _ = net.lrp(feats)
    nodes = net.graph(net.node_features(attended)).asnumpy().astype(np.float64)
    w = net.intensity_head.weight.asnumpy().astype(np.float64)
    b = net.intensity_head.bias.asnumpy().astype(np.float64)
    rows = [net.au_names.index("AU25"), net.au_names.index("AU1")]
    expected = 5.0 / (1.0 + np.exp(-((nodes[:, rows, :] * w).sum(-1) + b)))
    np.testing.assert_allclose(net(x)[1].asnumpy(), expected, rtol=1e-4, atol=1e-5)


def test_config_rules():
    assert _cfg(intensity=True).intensity_au_names == list(_cfg().au_names)  # empty = every occurrence AU
    with pytest.raises(UserError, match="model.intensity_au_names: AU5 is not an AU of model.au_names"):
        _cfg(intensity=True, intensity_au_names=["AU5"])
    with pytest.raises(UserError, match="set while model.intensity is false"):
        _cfg(intensity_au_names=["AU6"])
    with pytest.raises(UserError, match="train.best_metric icc needs the intensity head"):
        load_config(None, ["train.best_metric=icc"])
    with pytest.raises(UserError, match="train.best_metric: got 'map', expected f1 or icc"):
        load_config(None, ["train.best_metric=map"])
    with pytest.raises(UserError, match="name that model file in train.init_checkpoint"):
        load_config(None, ["data.format=disfa", "model.intensity=true", "train.intensity_only=true"])
    bp4d = load_config(None, ["data.format=bp4d", "model.intensity=true"])
    assert bp4d.model.intensity_au_names == ["AU6", "AU10", "AU12", "AU14", "AU17"]
    disfa = load_config(None, ["data.format=disfa", "model.intensity=true"])
    assert disfa.model.intensity_au_names == list(disfa.model.au_names)  # DISFA's 8 occurrence AUs all have one


def test_intensity_loss_against_numpy():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 5, (6, 3)).astype(np.float32)
    labels = rng.integers(-1, 6, (6, 3)).astype(np.float32)
    mask = labels >= 0
    expected = (((pred - labels) / 5.0) ** 2)[mask].mean()
    got = float(IntensityLoss()(ms.Tensor(pred), ms.Tensor(labels)).asnumpy())
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert float(IntensityLoss()(ms.Tensor(pred), ms.Tensor(-np.ones_like(labels))).asnumpy()) == 0.0


def test_joint_loss_splits_the_label_columns():
    cfg = load_config(
        None,
        ["data.format=bp4d", "model.intensity=true", "model.intensity_au_names=[AU6, AU12]", "loss.intensity_weight=2"],
    )
    loss = create_loss(cfg.loss, cfg.model)
    assert isinstance(loss, OccurrenceIntensityLoss)
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 12)).astype(np.float32)
    occ = rng.integers(0, 2, (4, 12)).astype(np.float32)
    inten = rng.integers(0, 6, (4, 2)).astype(np.float32)
    pred = rng.uniform(0, 5, (4, 2)).astype(np.float32)
    labels = ms.Tensor(np.concatenate([occ, inten], axis=1))
    occurrence_only = float(create_loss(cfg.loss)(ms.Tensor(logits), ms.Tensor(occ)).asnumpy())
    expected = occurrence_only + 2.0 * (((pred - inten) / 5.0) ** 2).mean()
    got = float(loss((ms.Tensor(logits), ms.Tensor(pred)), labels).asnumpy())
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    alone = create_loss(cfg.loss, cfg.model, intensity_only=True)
    np.testing.assert_allclose(
        float(alone((ms.Tensor(logits), ms.Tensor(pred)), labels).asnumpy()), expected - occurrence_only, rtol=1e-5
    )


def test_graph_mode_training_step_moves_the_head():
    """One Model.train step in GRAPH mode on labels (B, C + K): the head's weights and the backbone change."""
    import mindspore.dataset as ds
    from mindspore.train import Model

    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = _cfg(intensity=True, intensity_au_names=["AU6", "AU12"])
    net = create_model_from_config(cfg)
    full = load_config(None, ["data.format=bp4d", "model.intensity=true", "model.intensity_au_names=[AU6, AU12]"])
    full.model = dataclasses.replace(cfg)
    rng = np.random.default_rng(2)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    labels = np.concatenate([rng.integers(0, 2, (8, 12)), rng.integers(-1, 6, (8, 2))], axis=1).astype(np.float32)
    data = ds.NumpySlicesDataset({"image": images, "label": labels}, shuffle=False).batch(4)
    before = net.intensity_head.weight.asnumpy().copy()
    model = Model(net, loss_fn=create_loss(full.loss, full.model), optimizer=nn.SGD(net.trainable_params(), 0.1))
    model.train(1, data, dataset_sink_mode=False)
    assert not np.array_equal(before, net.intensity_head.weight.asnumpy())
