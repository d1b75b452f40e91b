"""PyTorch twin of `mindface_au.models.aunet.AUNet`, for the MindSpore-vs-PyTorch benchmark and parity tests.

Same layers, same maths and the same attribute names as the MindSpore network (backbone, lrp, node_features,
graph, au_head, backbone_head, token_proj, fusion), so `load_mindspore_params` can copy a MindSpore AUNet's
weights into it and the two give the same logits. The backbone is the insightface IResNet of
`mindface_au.reference.torch_iresnet`. Importing this module imports torch.
"""

import math
from typing import Dict, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention the reference code follows
from torch import nn

from mindface_au.reference.torch_iresnet import IResNet, iresnet

__all__ = ["TorchAUNet", "build_torch_model", "torch_au_loss", "load_mindspore_params"]


class LANet(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn = nn.BatchNorm2d(hidden, eps=1e-5)
        self.conv2 = nn.Conv2d(hidden, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.bn(self.conv1(x))))


class LocalRegionPerception(nn.Module):
    def __init__(self, channels: int, num: int = 4, reduction: int = 16) -> None:
        super().__init__()
        self.lanets = nn.ModuleList([LANet(channels, reduction) for _ in range(num)])

    def forward(self, x: torch.Tensor):
        stacked = torch.cat([lanet(x) for lanet in self.lanets], dim=1)
        attention = torch.sigmoid(stacked.amax(dim=1, keepdim=True))
        return x * attention, attention


class AUNodeFeatures(nn.Module):
    def __init__(self, in_channels: int, num_nodes: int = 12, dim: int = 512) -> None:
        super().__init__()
        self.num_nodes, self.dim = num_nodes, dim
        self.fc = nn.Linear(in_channels, num_nodes * dim)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / dim))
        self.bn = nn.BatchNorm1d(num_nodes * dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.reshape(b, c, h * w).transpose(1, 2).reshape(b * h * w, c)
        per_au = F.relu(self.bn(self.fc(tokens)))
        return per_au.reshape(b, h * w, self.num_nodes, self.dim).mean(dim=1)


class AURelationGraph(nn.Module):
    def __init__(self, dim: int, num_nodes: int = 12, k: int = 4) -> None:
        super().__init__()
        self.k = k
        self.U = nn.Linear(dim, dim)
        self.V = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm1d(num_nodes, eps=1e-5)  # per-node statistics over batch and D

    def adjacency(self, x: torch.Tensor) -> torch.Tensor:
        feats = x.detach()
        sim = feats @ feats.transpose(1, 2)
        threshold = sim.topk(self.k, dim=-1).values[:, :, -1:]
        adj = (sim >= threshold).float()
        inv_sqrt_deg = adj.sum(dim=-1).rsqrt()
        return inv_sqrt_deg.unsqueeze(2) * adj * inv_sqrt_deg.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aggregate = self.adjacency(x) @ self.V(x) + self.U(x)
        return F.relu(x + self.bn(aggregate))


class AUClassifier(nn.Module):
    def __init__(self, dim: int, num_nodes: int = 12) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_nodes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.zeros(num_nodes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).sum(dim=-1) + self.bias


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 8) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.in_proj(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q * self.scale) @ k.transpose(-1, -2), dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int = 8, ffn_dim: int = 2048) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class TransformerFusion(nn.Module):
    def __init__(self, dim: int, num_nodes: int = 12, layers: int = 2, heads: int = 8) -> None:
        super().__init__()
        self.weight_token = nn.Parameter(torch.empty(1, 1, dim))
        nn.init.trunc_normal_(self.weight_token, std=0.02)
        self.encoder = nn.Sequential(*[EncoderLayer(dim, heads, 4 * dim) for _ in range(layers)])
        self.head = nn.Linear(dim, num_nodes)

    def forward(self, backbone_token: torch.Tensor, au_tokens: torch.Tensor) -> torch.Tensor:
        b = au_tokens.shape[0]
        tokens = torch.cat([self.weight_token.expand(b, -1, -1), backbone_token.unsqueeze(1), au_tokens], dim=1)
        return torch.sigmoid(self.head(self.encoder(tokens)[:, 0]))


class TorchAUNet(nn.Module):
    """IResNet + LRP + graph ARL + fusion, as `mindface_au.models.aunet.AUNet` (same switches, same outputs)."""

    def __init__(
        self,
        backbone: IResNet,
        num_classes: int = 12,
        head_dim: int = 512,
        lrp: bool = True,
        lrp_num: int = 4,
        lrp_reduction: int = 16,
        arl: bool = True,
        arl_k: int = 4,
        fusion: str = "transformer",
        fusion_weight: float = 0.5,
        fusion_layers: int = 2,
        fusion_heads: int = 8,
    ) -> None:
        super().__init__()
        channels, embedding = backbone.bn2.num_features, backbone.fc.out_features
        self.num_classes, self.fusion_mode, self.fusion_weight = num_classes, fusion, float(fusion_weight)
        self.use_lrp, self.use_arl = bool(lrp), bool(arl)
        self.use_backbone_branch = (not arl) or fusion != "none"
        self.backbone = backbone
        self.lrp = LocalRegionPerception(channels, lrp_num, lrp_reduction) if self.use_lrp else None
        self.node_features = AUNodeFeatures(channels, num_classes, head_dim) if self.use_arl else None
        self.graph = AURelationGraph(head_dim, num_classes, arl_k) if self.use_arl else None
        self.au_head = AUClassifier(head_dim, num_classes) if self.use_arl else None
        self.backbone_head = nn.Linear(embedding, num_classes) if self.use_backbone_branch else None
        self.token_proj = nn.Linear(embedding, head_dim) if fusion == "transformer" and embedding != head_dim else None
        self.fusion = (
            TransformerFusion(head_dim, num_classes, fusion_layers, fusion_heads) if fusion == "transformer" else None
        )
        if not self.use_backbone_branch:
            for module in (backbone.bn2, backbone.fc, backbone.features):
                for param in module.parameters():
                    param.requires_grad = False

    def _backbone_head(self, feats: torch.Tensor) -> torch.Tensor:
        bb = self.backbone
        return bb.features(bb.fc(bb.dropout(torch.flatten(bb.bn2(feats), 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone.forward_features(x)
        attended = self.lrp(feats)[0] if self.use_lrp else feats
        au_logits = nodes = None
        if self.use_arl:
            nodes = self.graph(self.node_features(attended))
            au_logits = self.au_head(nodes)
        if self.use_backbone_branch:
            token = self._backbone_head(feats if self.use_arl else attended)
            backbone_logits = self.backbone_head(token)
        if self.fusion_mode == "transformer":
            weight = self.fusion(self.token_proj(token) if self.token_proj is not None else token, nodes)
            return weight * au_logits + (1.0 - weight) * backbone_logits
        if self.fusion_mode == "fixed":
            return self.fusion_weight * au_logits + (1.0 - self.fusion_weight) * backbone_logits
        return au_logits if self.use_arl else backbone_logits


def build_torch_model(
    name: str,
    widths: Sequence[int] = (64, 128, 256, 512),
    layers: Sequence[int] = (),
    input_size: int = 112,
    embedding_size: int = 512,
    **kwargs,
) -> nn.Module:
    """PyTorch twin of registered model `name` (iresnetNN or aunet_iresnetNN; AUNet kwargs as in ModelConfig)."""
    arch = name.split("_", 1)[1] if name.startswith("aunet_") else name
    backbone = iresnet(
        arch, widths=tuple(widths), layers=tuple(layers), num_features=embedding_size, input_size=input_size
    )
    if not name.startswith("aunet_"):
        return backbone
    return TorchAUNet(backbone, **kwargs)


def torch_au_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE with logits + multi-label circle loss, as `mindface_au.losses.AULoss` with both terms on."""
    bce = F.binary_cross_entropy_with_logits(logits, labels)
    big = torch.full_like(logits, -1e12)
    neg = torch.where(labels < 0.5, logits, big)
    pos = torch.where(labels > 0.5, -logits, big)
    zero = torch.zeros_like(logits[:, :1])
    circle = torch.logsumexp(torch.cat([zero, neg], 1), 1) + torch.logsumexp(torch.cat([zero, pos], 1), 1)
    return bce + circle.mean()


_MS_TO_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def load_mindspore_params(model: nn.Module, params: Mapping[str, np.ndarray]) -> Dict[str, int]:
    """Copy MindSpore parameter arrays (name -> array) into the twin; every tensor must be matched exactly once.

    Renames gamma/beta/moving_mean/moving_variance (BatchNorm, LayerNorm) and PReLU `w` to PyTorch's names.
    Raises KeyError listing what is missing or unexpected, ValueError on a shape mismatch.
    """
    state = model.state_dict()
    wanted = {k for k in state if not k.endswith("num_batches_tracked")}
    loaded = set()
    for ms_name, value in params.items():
        head, _, leaf = ms_name.rpartition(".")
        leaf = "weight" if leaf == "w" else _MS_TO_TORCH.get(leaf, leaf)
        name = f"{head}.{leaf}" if head else leaf
        if name not in state:
            raise KeyError(f"MindSpore parameter {ms_name} has no PyTorch counterpart {name}")
        if tuple(state[name].shape) != tuple(np.shape(value)):
            raise ValueError(f"{ms_name}: MindSpore shape {np.shape(value)} != PyTorch {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        loaded.add(name)
    missing = sorted(wanted - loaded)
    if missing:
        raise KeyError(f"PyTorch parameters not set from MindSpore: {', '.join(missing[:10])}")
    model.load_state_dict(state)
    return {"loaded": len(loaded)}
