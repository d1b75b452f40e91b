"""AU sets as data, `model.au_names` in the model config, the one validator and the one network builder."""

import numpy as np
import pytest
from helpers import TINY_AUNET

from mindface_au.au_sets import ABAW_AUS, BP4D_AUS, DISFA_AUS, KNOWN_AU_SETS, au_number, au_set, au_set_of
from mindface_au.config import AU_NAMES, ModelConfig, load_config, validate_model_config
from mindface_au.errors import UserError


def test_known_sets_match_the_benchmarks():
    assert [au_number(a) for a in ABAW_AUS] == [1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26]
    assert [au_number(a) for a in BP4D_AUS] == [1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24]
    assert [au_number(a) for a in DISFA_AUS] == [1, 2, 4, 6, 9, 12, 25, 26]
    assert AU_NAMES == KNOWN_AU_SETS["abaw"].au_names
    assert au_set_of(list(DISFA_AUS)).name == "disfa" and au_set(["AU1", "AU9"]).name == "custom"
    union = sorted({au_number(a) for s in KNOWN_AU_SETS.values() for a in s.au_names})
    assert union == [1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26]


def test_model_config_num_classes_follows_au_names():
    names = "model.au_names=[AU1, AU2, AU4, AU6, AU9, AU12, AU25, AU26]"
    cfg = load_config(None, [names, "model.arl_k=3", "data.format=list", "data.rare_aus=[AU9]"])
    assert cfg.model.num_classes == 8 and cfg.model.au_names == list(DISFA_AUS)
    assert load_config().model.num_classes == 12 and load_config().model.au_names == list(ABAW_AUS)
    old = ModelConfig(**{**TINY_AUNET, "num_classes": 12})  # a stored config of today's main: no au_names key
    validate_model_config(old)
    assert old.au_names == list(ABAW_AUS)


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.au_names=[AU1, AU1]", "model.au_names"),
        ("model.au_names=[Brow]", "model.au_names"),
        ("model.num_classes=8", "model.num_classes"),
        ("model.name=aunet_resnet", "model.name"),
        ("model.arl_k=13", "model.arl_k"),
    ],
)
def test_model_config_errors_name_the_key(override, key):
    with pytest.raises(UserError, match=key):
        load_config(None, [override])


def test_build_network_outputs_follow_au_names():
    import mindspore as ms

    from mindface_au.models import build_network

    cfg = ModelConfig(**{**TINY_AUNET, "au_names": list(DISFA_AUS), "arl_k": 3})
    net = build_network(cfg)
    net.set_train(False)
    out = net(ms.Tensor(np.zeros((2, 3, 32, 32), np.float32))).asnumpy()
    assert out.shape == (2, 8) and net.au_names == DISFA_AUS
    backbone = build_network(ModelConfig(**{**TINY_AUNET, "name": "iresnet18"}))
    assert type(backbone).__name__ == "IResNet" and backbone.fc.out_channels == 16


def test_checkpoint_from_before_au_names_loads_as_abaw():
    """tests/fixtures/aunet_tiny_no_card.ckpt was saved by the code before model.au_names (make_aunet_tiny_no_card.py):
    its embedded config has no au_names, so it is the ABAW 12 and predicts what it predicted then."""
    import os

    from mindface_au.inference.loader import checkpoint_model_config, load_inference_model

    fixtures = os.path.join(os.path.dirname(__file__), "fixtures")
    ckpt = os.path.join(fixtures, "aunet_tiny_no_card.ckpt")
    cfg = checkpoint_model_config(ckpt)
    assert cfg.au_names == list(ABAW_AUS) and cfg.num_classes == 12
    model = load_inference_model(ckpt, device="cpu")
    assert list(model.au_names) == list(ABAW_AUS)
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    expect = np.load(os.path.join(fixtures, "aunet_tiny_no_card_probs.npy"))
    np.testing.assert_allclose(model.predict(x, pad=True), expect, atol=1e-5)
