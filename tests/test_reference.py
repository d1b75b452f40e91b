"""The PyTorch twins in mindface_au.reference: same outputs and loss as the MindSpore models, strict weight mapping."""

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_LAYERS, TINY_WIDTHS, random_faces, randomise_params


def test_torch_twin_matches_mindspore_aunet():
    torch = pytest.importorskip("torch")
    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config
    from mindface_au.reference.torch_aunet import build_torch_model, load_mindspore_params, torch_au_loss

    cfg = ModelConfig(name="aunet_iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, head_dim=16, fusion_heads=4)
    net = randomise_params(create_model_from_config(cfg))
    net.set_train(False)
    twin = build_torch_model(cfg.name, widths=TINY_WIDTHS, layers=TINY_LAYERS, head_dim=16, fusion_heads=4)
    load_mindspore_params(twin, {p.name: p.asnumpy() for p in net.get_parameters()})
    twin.eval()
    x = random_faces(batch=4, seed=3)
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
