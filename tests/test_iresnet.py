"""IResNet family: parameter counts of every depth (IResNet100 = 65.2 M), output shapes, torch reference parity."""

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_LAYERS, TINY_WIDTHS, random_faces, randomise_params

from mindface_au.models import create_model, list_models
from mindface_au.models.iresnet import IRESNET_LAYERS, PReLU, create_iresnet, fuse_for_inference, set_prelu_form

DEPTHS = {"iresnet18": (2, 2, 2, 2), "iresnet34": (3, 4, 6, 3), "iresnet50": (3, 4, 14, 3)}
DEPTHS.update({"iresnet100": (3, 13, 30, 3), "iresnet200": (6, 26, 60, 6)})


def expected_parameter_count(layers, widths=(64, 128, 256, 512), embedding=512, input_size=112) -> int:
    """Learnable + frozen parameters (no running statistics), counted by hand from the insightface layout."""
    bn = 2  # weight + bias per channel
    total = 3 * 9 * widths[0] + bn * widths[0] + widths[0]  # conv1, bn1, prelu
    in_ch = widths[0]
    for blocks, ch in zip(layers, widths):
        for i in range(blocks):
            total += bn * in_ch + in_ch * ch * 9 + bn * ch + ch + ch * ch * 9 + bn * ch  # bn1 conv1 bn2 prelu conv2 bn3
            if i == 0:
                total += in_ch * ch + bn * ch  # downsample: 1x1 conv + BN
            in_ch = ch
    side = input_size // 16
    total += bn * widths[3] + widths[3] * side * side * embedding + embedding + bn * embedding  # bn2, fc, features
    return total


def _count(net) -> int:
    return sum(int(np.prod(p.shape)) for name, p in net.parameters_and_names() if ".moving_" not in name)


def _shapes_only(arch, **kwargs):
    from mindspore.nn.utils import no_init_parameters

    with no_init_parameters():  # shapes without allocating 65 M+ weights
        return create_iresnet(arch, **kwargs)


def test_every_depth_is_registered():
    assert DEPTHS == IRESNET_LAYERS  # the block counts of insightface's iresnet.py, written out above
    assert set(DEPTHS) <= set(list_models("iresnet*"))


@pytest.mark.parametrize("arch", list(DEPTHS))
def test_parameter_count(arch):
    net = _shapes_only(arch)
    assert _count(net) == expected_parameter_count(DEPTHS[arch])
    names = [name for name, _ in net.parameters_and_names()]
    blocks = {name.split(".")[0] + "." + name.split(".")[1] for name in names if name.startswith("layer")}
    assert len(blocks) == sum(DEPTHS[arch])
    fc = dict(net.parameters_and_names())["fc.weight"]
    assert tuple(fc.shape) == (512, 512 * 7 * 7)


def test_iresnet100_is_65_2_million():
    count = _count(_shapes_only("iresnet100"))
    assert count == 65_156_160 and round(count / 1e6, 1) == 65.2


@pytest.mark.parametrize("arch", list(DEPTHS))
def test_parameter_count_matches_torch_reference(arch):
    pytest.importorskip("torch")
    from mindface_au.reference.torch_iresnet import iresnet

    ref = iresnet(arch, widths=TINY_WIDTHS, num_features=16)
    net = _shapes_only(arch, widths=TINY_WIDTHS, embedding_size=16)
    assert _count(net) == sum(p.numel() for p in ref.parameters())
    assert _count(net) == expected_parameter_count(DEPTHS[arch], TINY_WIDTHS, 16)


def test_shapes_full_width():
    """The real widths (one block per stage to stay cheap): (N, 512, 7, 7) map and (N, 512) embedding."""
    net = create_model("iresnet18", layers=TINY_LAYERS)
    net.set_train(False)
    x = ms.Tensor(np.random.RandomState(0).uniform(-1, 1, (1, 3, 112, 112)).astype(np.float32))
    assert net.forward_features(x).shape == (1, 512, 7, 7)
    assert net(x).shape == (1, 512)


@pytest.mark.parametrize("arch", ["iresnet34", "iresnet50"])
def test_shapes_tiny_width_every_block(arch):
    net = create_iresnet(arch, widths=TINY_WIDTHS, embedding_size=16)
    net.set_train(False)
    x = ms.Tensor(np.zeros((1, 3, 112, 112), np.float32))
    assert net.forward_features(x).shape == (1, TINY_WIDTHS[-1], 7, 7)
    assert net(x).shape == (1, 16)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["iresnet100", "iresnet200"])
def test_shapes_deep(arch):
    net = create_iresnet(arch, widths=TINY_WIDTHS, embedding_size=16)
    net.set_train(False)
    out = net(ms.Tensor(np.zeros((1, 3, 112, 112), np.float32)))
    assert out.shape == (1, 16)


def test_input_size_changes_map_side():
    net = create_iresnet("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, embedding_size=8, input_size=64)
    net.set_train(False)
    x = ms.Tensor(np.zeros((1, 3, 64, 64), np.float32))
    assert net.forward_features(x).shape == (1, TINY_WIDTHS[-1], 4, 4)
    assert net(x).shape == (1, 8)


# ------------------------------------------------------------------------------------------- PReLU forms
def _prelu_numpy(x, w):
    wb = w.reshape(1, -1, 1, 1)
    return np.where(x > 0, x, wb * x), np.where(x > 0, 1.0, wb), (np.minimum(x, 0.0)).sum(axis=(0, 2, 3))


@pytest.mark.parametrize("form", ["relu", "native", "auto"])
@pytest.mark.parametrize("training", [False, True])
def test_prelu_forms_match_numpy_values_and_gradients(form, training):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    w = rng.uniform(0.0, 0.5, 5).astype(np.float32)
    cell = PReLU(5, form=form)
    cell.w.set_data(ms.Tensor(w))
    cell.set_train(training)
    expected, dx_expected, dw_expected = _prelu_numpy(x, w)
    np.testing.assert_allclose(cell(ms.Tensor(x)).asnumpy(), expected, rtol=1e-6, atol=1e-7)
    grads = ms.grad(cell, grad_position=0, weights=cell.trainable_params())(ms.Tensor(x))
    (dx,), (dw,) = (grads[0],), grads[1]
    np.testing.assert_allclose(dx.asnumpy(), dx_expected, rtol=1e-6, atol=1e-7)  # d(sum)/dx with dout = 1
    np.testing.assert_allclose(dw.asnumpy(), dw_expected, rtol=1e-5, atol=1e-6)
    assert [p.name for p in cell.get_parameters()] == ["w"]


def test_prelu_form_rejects_unknown_and_defaults_to_native():
    with pytest.raises(ValueError, match="PReLU form"):
        PReLU(3, form="fast")
    assert PReLU(3).form == "native"  # the relu form's broadcast multiply costs 1.7-3.4x inference memory


def test_set_prelu_form_switches_every_prelu_and_keeps_the_train_step():
    # train.prelu_form: the relu form gives the native form's training loss and gradients on a whole network
    from mindspore import nn

    def grads_of(form):
        ms.set_seed(0)  # the same convolution weights in both networks (randomise_params sets BN and PReLU)
        net = randomise_params(create_iresnet("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, embedding_size=8))
        assert set_prelu_form(net, form) == 1 + sum(TINY_LAYERS)  # the stem's and one per block
        assert {cell.form for _, cell in net.cells_and_names() if isinstance(cell, PReLU)} == {form}
        net.set_train(True)
        loss_net = nn.WithLossCell(net, nn.MSELoss())
        x, y = ms.Tensor(random_faces(2)), ms.Tensor(np.ones((2, 8), np.float32))
        loss, grads = ms.value_and_grad(loss_net, None, net.trainable_params())(x, y)
        return float(loss.asnumpy()), [g.asnumpy() for g in grads]

    native_loss, native_grads = grads_of("native")
    relu_loss, relu_grads = grads_of("relu")
    assert relu_loss == pytest.approx(native_loss, rel=1e-5)
    for a, b in zip(native_grads, relu_grads):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5 * max(1.0, float(np.abs(a).max())))
    with pytest.raises(ValueError, match="PReLU form"):
        set_prelu_form(create_iresnet("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS), "fast")


# ------------------------------------------------------------------------------------------- BN folding
def test_fuse_for_inference_is_exact_and_recompiles():
    net = randomise_params(create_iresnet("iresnet18", widths=TINY_WIDTHS, layers=[1, 2, 1, 1]))
    net.set_train(False)
    x = ms.Tensor(random_faces())
    before = net(x).asnumpy()  # compiles the unfused graph first: the fused net must not reuse it
    n_bn_before = sum(isinstance(c, ms.nn.BatchNorm2d) for _, c in net.cells_and_names())
    fused = fuse_for_inference(net)
    after = fused(x).asnumpy()
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    # only each block's bn1 is left (it precedes a zero-padded conv); names stay unique full paths
    blocks = 5
    n_bn_after = sum(isinstance(c, ms.nn.BatchNorm2d) for _, c in fused.cells_and_names())
    assert n_bn_after == blocks and n_bn_before > n_bn_after
    assert not any(isinstance(c, ms.nn.BatchNorm1d) for _, c in fused.cells_and_names())
    names = [p.name for p in fused.get_parameters()]
    assert len(names) == len(set(names)) and "layer1.0.conv1.bias" in names
    assert fuse_for_inference(fused) is fused  # idempotent


def test_fuse_for_inference_inside_aunet():
    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config

    cfg = ModelConfig(name="aunet_iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, head_dim=16, fusion_heads=4)
    net = randomise_params(create_model_from_config(cfg))
    net.set_train(False)
    x = ms.Tensor(random_faces(seed=2))
    before = net(x).asnumpy()
    after = fuse_for_inference(net)(x).asnumpy()
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
