"""AUNet and its modules: shapes, numerics against numpy/PyTorch, ablation configs, training step, MindIR export."""

import glob
import os

import mindspore as ms
import numpy as np
import pytest
from helpers import TINY_LAYERS, TINY_WIDTHS, tiny_aunet, tiny_model_config, tiny_overrides
from mindspore import nn

from mindface_au.config import AU_NAMES, CONFIG_DIR, LossConfig, ModelConfig, load_config
from mindface_au.errors import UserError
from mindface_au.losses import create_loss
from mindface_au.models import create_iresnet, create_model_from_config, get_default_cfg, list_models
from mindface_au.models.checkpoint import save_checkpoint_atomic
from mindface_au.models.fusion import EncoderLayer, FixedFusion, TransformerFusion
from mindface_au.models.graph import AUClassifier, AUNodeFeatures, AURelationGraph
from mindface_au.models.lrp import LANet, LocalRegionPerception

CONFIGS = sorted(glob.glob(os.path.join(CONFIG_DIR, "affwild2", "*.yaml")))
EPS = 1e-5


def randomise(cell: nn.Cell, seed: int = 0) -> None:
    """Random values for every parameter incl. BN statistics, so eval-mode numerics are not trivial."""
    rng = np.random.default_rng(seed)
    for param in cell.get_parameters():
        shape = tuple(param.shape)
        if "moving_variance" in param.name:
            value = rng.uniform(0.5, 2.0, shape)
        elif "gamma" in param.name:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * 0.3
        param.set_data(ms.Tensor(value.astype(np.float32)))


def npy(param) -> np.ndarray:
    return param.asnumpy().astype(np.float64)


def np_bn(x, bn, axis):
    """Eval-mode BatchNorm with the channel on `axis`."""
    shape = [1] * x.ndim
    shape[axis] = -1
    mean, var = npy(bn.moving_mean).reshape(shape), npy(bn.moving_variance).reshape(shape)
    return (x - mean) / np.sqrt(var + EPS) * npy(bn.gamma).reshape(shape) + npy(bn.beta).reshape(shape)


def np_adjacency(feats, k):
    sim = feats @ feats.transpose(0, 2, 1)
    kth = np.sort(sim, axis=-1)[:, :, -k][:, :, None]
    adj = (sim >= kth).astype(np.float64)
    deg = adj.sum(-1)
    return adj / np.sqrt(deg[:, :, None] * deg[:, None, :]), adj


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Adjacency(nn.Cell):
    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def construct(self, x):
        return self.graph.adjacency(x)


# ---------------------------------------------------------------- modules


def test_module_output_shapes():
    x = ms.Tensor(rand(2, 32, 3, 3))
    assert LANet(32, 4)(x).shape == (2, 1, 3, 3)
    gated, attention = LocalRegionPerception(32, 3, 4)(x)
    assert gated.shape == (2, 32, 3, 3) and attention.shape == (2, 1, 3, 3)
    assert 0 < attention.asnumpy().min() and attention.asnumpy().max() < 1
    nodes = AUNodeFeatures(32, 12, 16)(x)
    assert nodes.shape == (2, 12, 16)
    updated = AURelationGraph(16, 12, 4)(nodes)
    assert updated.shape == (2, 12, 16) and updated.asnumpy().min() >= 0
    assert AUClassifier(16, 12)(updated).shape == (2, 12)
    token = ms.Tensor(rand(2, 16, seed=1))
    weight = TransformerFusion(16, 12, layers=2, heads=4)(token, updated).asnumpy()
    assert weight.shape == (2, 12) and np.all((weight > 0) & (weight < 1))
    np.testing.assert_array_equal(FixedFusion(0.3, 12)(token, updated).asnumpy(), np.full((2, 12), 0.3, np.float32))


def test_lrp_matches_numpy():
    lrp = LocalRegionPerception(32, num=3, reduction=4)
    randomise(lrp, 1)
    lrp.set_train(False)
    x = rand(2, 32, 3, 3, seed=2)
    gated, attention = (t.asnumpy() for t in lrp(ms.Tensor(x)))
    maps = []
    for lanet in lrp.lanets:
        w1 = npy(lanet.conv1.weight)[:, :, 0, 0]
        hidden = np.maximum(np_bn(np.einsum("oc,bchw->bohw", w1, x), lanet.bn, 1), 0)
        w2 = npy(lanet.conv2.weight)[:, :, 0, 0]
        maps.append(np.einsum("oc,bchw->bohw", w2, hidden) + npy(lanet.conv2.bias).reshape(1, -1, 1, 1))
    expected = 1 / (1 + np.exp(-np.concatenate(maps, 1).max(1, keepdims=True)))
    np.testing.assert_allclose(attention, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gated, x * expected, rtol=1e-4, atol=1e-6)


def test_node_features_match_numpy():
    block = AUNodeFeatures(32, 12, 8)
    randomise(block, 3)
    block.set_train(False)
    x = rand(2, 32, 3, 3, seed=4)
    out = block(ms.Tensor(x)).asnumpy()
    tokens = x.reshape(2, 32, 9).transpose(0, 2, 1).astype(np.float64)  # (B, hw, C)
    hidden = tokens @ npy(block.fc.weight).T + npy(block.fc.bias)
    hidden = np.maximum(np_bn(hidden, block.bn, 2), 0)
    expected = hidden.reshape(2, 9, 12, 8).mean(1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k", [1, 4, 12])
def test_adjacency_matches_numpy_topk(k):
    graph = AURelationGraph(8, 12, k)
    feats = rand(3, 12, 8, seed=k)
    got = Adjacency(graph)(ms.Tensor(feats)).asnumpy()
    expected, adj = np_adjacency(feats.astype(np.float64), k)
    assert np.all(adj.sum(-1) == k)  # no ties in random data: exactly k neighbours per node
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_graph_update_matches_numpy():
    graph = AURelationGraph(8, 12, 4)
    randomise(graph, 5)
    graph.set_train(False)
    x = rand(3, 12, 8, seed=6)
    out = graph(ms.Tensor(x)).asnumpy()
    x64 = x.astype(np.float64)
    adj, _ = np_adjacency(x64, 4)
    v = x64 @ npy(graph.V.weight).T + npy(graph.V.bias)
    u = x64 @ npy(graph.U.weight).T + npy(graph.U.bias)
    expected = np.maximum(x64 + np_bn(adj @ v + u, graph.bn, 1), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_transformer_fusion_matches_pytorch():
    torch = pytest.importorskip("torch")
    fusion = TransformerFusion(16, 12, layers=2, heads=4, ffn_dim=24)
    randomise(fusion, 7)
    fusion.set_train(False)
    token, au_tokens = rand(2, 16, seed=8), rand(2, 12, 16, seed=9)
    got = fusion(ms.Tensor(token), ms.Tensor(au_tokens)).asnumpy()

    def t(param):
        return torch.tensor(param.asnumpy())

    layers = []
    for layer in fusion.encoder:
        assert isinstance(layer, EncoderLayer)
        ref = torch.nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, batch_first=True)
        with torch.no_grad():
            ref.self_attn.in_proj_weight.copy_(t(layer.self_attn.in_proj.weight))
            ref.self_attn.in_proj_bias.copy_(t(layer.self_attn.in_proj.bias))
            ref.self_attn.out_proj.weight.copy_(t(layer.self_attn.out_proj.weight))
            ref.self_attn.out_proj.bias.copy_(t(layer.self_attn.out_proj.bias))
            for name in ("linear1", "linear2"):
                getattr(ref, name).weight.copy_(t(getattr(layer, name).weight))
                getattr(ref, name).bias.copy_(t(getattr(layer, name).bias))
            for name in ("norm1", "norm2"):
                getattr(ref, name).weight.copy_(t(getattr(layer, name).gamma))
                getattr(ref, name).bias.copy_(t(getattr(layer, name).beta))
        layers.append(ref.eval())
    with torch.no_grad():
        seq = torch.cat(
            [t(fusion.weight_token).expand(2, 1, 16), torch.tensor(token)[:, None], torch.tensor(au_tokens)], 1
        )
        for ref in layers:
            seq = ref(seq)
        expected = torch.sigmoid(seq[:, 0] @ t(fusion.head.weight).T + t(fusion.head.bias)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the whole network


@pytest.mark.parametrize(
    "switches",
    [
        dict(lrp=False, arl=False, fusion="none"),
        dict(lrp=True, arl=False, fusion="none"),
        dict(lrp=True, arl=True, fusion="none"),
        dict(lrp=True, arl=True, fusion="fixed", fusion_weight=0.3),
        dict(lrp=True, arl=True, fusion="transformer", head_dim=8),  # head_dim != embedding: token projection
    ],
    ids=["baseline", "lrp-only", "arl", "fixed", "transformer"],
)
def test_return_all_parts_are_consistent(switches):
    cfg = tiny_model_config(**switches)
    net = create_model_from_config(cfg, return_all=True)
    net.set_train(False)
    logits, backbone_logits, au_logits, weight, attention = (t.asnumpy() for t in net(ms.Tensor(rand(2, 3, 32, 32))))
    assert logits.shape == backbone_logits.shape == au_logits.shape == weight.shape == (2, 12)
    assert attention.shape == (2, 1, 2, 2)
    np.testing.assert_allclose(logits, weight * au_logits + (1 - weight) * backbone_logits, rtol=1e-5, atol=1e-6)
    if not cfg.lrp:
        assert np.all(attention == 1)
    if not cfg.arl:
        assert np.all(weight == 0) and np.all(au_logits == 0) and np.any(backbone_logits != 0)
    elif cfg.fusion == "none":
        assert np.all(weight == 1) and np.all(backbone_logits == 0) and np.any(au_logits != 0)
    elif cfg.fusion == "fixed":
        np.testing.assert_allclose(weight, 0.3)
    else:
        assert np.all((weight > 0) & (weight < 1)) and weight.std() > 0
    if net.use_backbone_branch:  # documented routing: LRP gates the backbone branch only when there is no AU branch
        expected = BackboneBranch(net, gated=cfg.lrp and not cfg.arl)(ms.Tensor(rand(2, 3, 32, 32))).asnumpy()
        np.testing.assert_allclose(backbone_logits, expected, rtol=1e-5, atol=1e-6)


class BackboneBranch(nn.Cell):
    """The backbone branch recomputed from AUNet's parts, on the raw or the LRP-gated map."""

    def __init__(self, net, gated):
        super().__init__(auto_prefix=False)
        self.net = net
        self.gated = gated

    def construct(self, x):
        feats = self.net.backbone.forward_features(x)
        if self.gated:
            feats, _ = self.net.lrp(feats)
        return self.net.backbone_head(self.net.backbone.forward_head(feats))


def _switch_groups(model_cfg: ModelConfig) -> dict:
    backbone_branch = (not model_cfg.arl) or model_cfg.fusion != "none"
    return {
        "backbone": True,
        "lrp": model_cfg.lrp,
        "node_features": model_cfg.arl,
        "graph": model_cfg.arl,
        "au_head": model_cfg.arl,
        "backbone_head": backbone_branch,
        "fusion": model_cfg.fusion == "transformer",
        "intensity_head": model_cfg.intensity,
    }


def test_every_table3_row_has_a_config():
    names = [os.path.basename(p) for p in CONFIGS]
    assert len([n for n in names if n.startswith("table3_")]) == 6 and "fixed_fusion.yaml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p)[:-5])
def test_ablation_config_builds_and_trains(path):
    cfg = load_config(path)
    # the paper's hyper-parameters
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.epochs, cfg.train.milestones) == ("sgd", 0.001, 15, [4, 6, 8])
    assert cfg.data.batch_size == 256 and cfg.model.input_size == 112 and cfg.data.image_size == 112
    assert cfg.model.name == "aunet_iresnet100"
    assert bool(cfg.model.backbone_checkpoint) == (not os.path.basename(path).startswith(("table3_1", "table3_2")))
    assert cfg.loss.bce and cfg.loss.circle == (not os.path.basename(path).startswith("table3_1"))

    tiny = load_config(path, tiny_overrides())
    net = create_model_from_config(tiny.model)
    groups = net.param_groups()
    assert {k: bool(v) for k, v in groups.items()} == _switch_groups(tiny.model)
    assert sorted(p.name for g in groups.values() for p in g) == sorted(p.name for p in net.trainable_params())
    assert net.backbone.fc.weight.requires_grad == _switch_groups(tiny.model)["backbone_head"]

    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    step = nn.TrainOneStepCell(nn.WithLossCell(net, create_loss(tiny.loss)), nn.SGD(net.trainable_params(), 0.1))
    step.set_train()
    labels = np.tile(np.array([[1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, -1]], np.float32), (4, 1))
    loss = float(step(ms.Tensor(rand(4, 3, 32, 32, seed=1)), ms.Tensor(labels)).asnumpy())
    assert np.isfinite(loss) and loss > 0
    changed = {p.name for p in net.get_parameters() if not np.array_equal(before[p.name], p.asnumpy())}
    for group, params in groups.items():
        assert params == [] or any(p.name in changed for p in params), f"no parameter of {group} changed"
    if tiny.model.arl:
        assert {"graph.U.weight", "graph.V.weight", "node_features.fc.weight", "au_head.weight"} <= changed
    if tiny.model.fusion == "transformer":
        assert "fusion.weight_token" in changed
    if not _switch_groups(tiny.model)["backbone_head"]:
        assert "backbone.fc.weight" not in changed  # frozen: nothing reads the IResNet embedding


@pytest.mark.parametrize("amp", ["O2", "O3"])
def test_full_network_trains_with_mixed_precision(amp):
    """float16 AMP (as train.amp_level) compiles: adjacency, fusion weights and zeros follow the input dtype."""
    import mindspore.dataset as ds
    from mindspore.train import Model

    net = tiny_aunet()
    before = net.fusion.weight_token.asnumpy().copy()
    data = ds.NumpySlicesDataset(
        {"image": rand(4, 3, 32, 32), "label": np.eye(12, dtype=np.float32)[:4]}, shuffle=False
    ).batch(4)
    optimizer = nn.SGD(net.trainable_params(), 0.1, loss_scale=1024.0)
    scale = ms.FixedLossScaleManager(1024.0, drop_overflow_update=False)
    model = Model(net, create_loss(LossConfig()), optimizer=optimizer, amp_level=amp, loss_scale_manager=scale)
    model.train(1, data, dataset_sink_mode=False)
    after = net.fusion.weight_token.asnumpy()
    assert np.all(np.isfinite(after)) and not np.array_equal(before, after)


# ---------------------------------------------------------------- checkpoints, config errors, registry


def test_backbone_checkpoint_is_loaded(tmp_path):
    backbone = create_iresnet("iresnet18", widths=TINY_WIDTHS, layers=TINY_LAYERS, embedding_size=16, input_size=32)
    randomise(backbone, 12)
    path = str(tmp_path / "glint_tiny.ckpt")
    save_checkpoint_atomic(backbone, path)
    net = tiny_aunet(backbone_checkpoint=path)
    own = dict(net.parameters_and_names())
    for name, param in backbone.parameters_and_names():
        np.testing.assert_array_equal(own["backbone." + name].asnumpy(), param.asnumpy(), err_msg=name)


def test_backbone_checkpoint_errors_name_the_file(tmp_path):
    missing = str(tmp_path / "nope.ckpt")
    with pytest.raises(UserError, match="nope.ckpt: checkpoint not found"):
        tiny_aunet(backbone_checkpoint=missing)
    wrong = create_iresnet("iresnet18", widths=[8, 16, 16, 48], layers=TINY_LAYERS, embedding_size=16, input_size=32)
    path = str(tmp_path / "wrong.ckpt")
    save_checkpoint_atomic(wrong, path)
    with pytest.raises(UserError, match=r"wrong.ckpt: checkpoint does not fit the model \(.*shape mismatch"):
        tiny_aunet(backbone_checkpoint=path)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["model.fusion=transformer", "model.arl=false"], "model.fusion"),
        (["model.fusion=fixed", "model.arl=false"], "model.fusion"),
        (["model.arl_k=13"], "model.arl_k"),
        (["model.arl_k=0"], "model.arl_k"),
        (["model.name=iresnet100"], "model.name"),
        (["model.name=aunet_resnet50"], "model.name"),
        (["model.fusion_heads=5"], "model.fusion_heads"),
        (["model.input_size=40"], "model.input_size"),
        (["model.lrp_num=0"], "model.lrp_num"),
    ],
)
def test_bad_model_config_is_one_line_user_error(overrides, key):
    with pytest.raises(UserError) as info:  # load_config checks the model section; the builder checks it again
        create_model_from_config(load_config(None, tiny_overrides() + overrides).model)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_registry_lists_every_depth():
    assert list_models("aunet_*") == sorted(f"aunet_iresnet{d}" for d in (18, 34, 50, 100, 200))
    default = get_default_cfg("aunet_iresnet100")
    assert default["input_size"] == (3, 112, 112) and tuple(default["au_names"]) == AU_NAMES
    assert default["mean"] == (0.5, 0.5, 0.5) and default["std"] == (0.5, 0.5, 0.5) and default["sha256"] is None
    assert default["checkpoint"].endswith(".ckpt") and default["backbone_checkpoint"] == "glint360k_r100.ckpt"
