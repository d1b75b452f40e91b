"""AU Relationship Learning (ARL): per-AU node features and the facial graph of ME-GraphAU (FGG).

Paper section 3.2, after Luo et al., "Learning Multi-dimensional Edge Feature-based AU Relation Graph for Facial
Action Unit Recognition", IJCAI 2022 (their AFG + FGG blocks; the paper replaces the cosine classifier by a
fully connected layer, see `AUClassifier`).

Shapes: the (attended) backbone map (B, C, h, w) is read as h*w tokens of C channels. `AUNodeFeatures` gives each
AU its own Linear -> BatchNorm -> ReLU over the tokens and averages the tokens: (B, n, D) with n = 12 AUs.
`AURelationGraph` links every node to its k most similar nodes (dot product of detached features, per face),
normalises the 0/1 adjacency symmetrically, D^-1/2 A D^-1/2 with D the row sums, and updates
x' = relu(x + BN_nodes(A @ V(x) + U(x))).
"""

import math

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Normal, XavierUniform, initializer

__all__ = ["AUNodeFeatures", "AURelationGraph", "AUClassifier"]


class AUNodeFeatures(nn.Cell):
    """Feature map (B, C, h, w) -> one feature per AU node (B, n, D).

    The n per-AU Linear(C, D) -> BN(D) -> ReLU blocks run as one Dense(C, n*D) and one BN over n*D channels,
    which is the same computation as n separate blocks (each output channel has its own BN statistics) but a
    single matrix product.
    """

    def __init__(self, in_channels: int, num_nodes: int = 12, dim: int = 512) -> None:
        super().__init__()
        self.num_nodes = num_nodes
        self.dim = dim
        self.fc = nn.Dense(in_channels, num_nodes * dim, weight_init=Normal(math.sqrt(2.0 / dim)))
        self.bn = nn.BatchNorm1d(num_nodes * dim, eps=1e-5, momentum=0.9)
        self.relu = nn.ReLU()

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        _, c, h, w = x.shape  # the batch stays -1 in reshapes: an exported graph keeps a dynamic batch axis
        tokens = x.reshape(-1, c, h * w).transpose(0, 2, 1).reshape(-1, c)
        per_au = self.relu(self.bn(self.fc(tokens)))  # (B*h*w, n*D)
        return per_au.reshape(-1, h * w, self.num_nodes, self.dim).mean(axis=1)


class AURelationGraph(nn.Cell):
    """ME-GraphAU facial graph: top-k dot-product neighbours per node, x' = relu(x + BN(A V(x) + U(x))).

    Args:
        dim: node feature size D.
        num_nodes: number of AU nodes n.
        k: neighbours kept per node, itself included when its self-similarity ranks in the top k (ties keep all).
    """

    def __init__(self, dim: int, num_nodes: int = 12, k: int = 4) -> None:
        super().__init__()
        if not 1 <= k <= num_nodes:
            raise ValueError(f"AURelationGraph needs 1 <= k <= {num_nodes}, got k={k}")
        self.k = k
        self.U = nn.Dense(dim, dim, weight_init=Normal(math.sqrt(2.0 / dim)))
        self.V = nn.Dense(dim, dim, weight_init=Normal(math.sqrt(2.0 / dim)))
        self.bn = nn.BatchNorm2d(num_nodes, eps=1e-5, momentum=0.9)  # per-node statistics over batch and D
        self.relu = nn.ReLU()
        self.bmm = ops.BatchMatMul()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)

    def adjacency(self, x: ms.Tensor) -> ms.Tensor:
        """Normalised adjacency (B, n, n) of node features x (B, n, D); no gradient flows through it."""
        feats = ops.stop_gradient(x)
        sim = self.bmm_t(feats, feats)  # (B, n, n)
        values, _ = ops.topk(sim, self.k)
        threshold = values[:, :, self.k - 1 :]  # k-th largest similarity per row, (B, n, 1)
        adj = (sim >= threshold).astype(x.dtype)  # x.dtype: float16 under AMP
        # every row keeps >= k entries, so the degree is > 0; pow(d, -0.5), not rsqrt: MindSpore's ONNX exporter
        # has no Rsqrt mapping (and 1 / sqrt exports as an unsupported Reciprocal)
        inv_sqrt_deg = ops.pow(adj.sum(axis=-1), -0.5)
        n = adj.shape[1]  # reshape with a -1 batch, not expand_dims (exported as a Reshape of the compiled batch)
        return inv_sqrt_deg.reshape(-1, n, 1) * adj * inv_sqrt_deg.reshape(-1, 1, n)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        aggregate = self.bmm(self.adjacency(x), self.V(x)) + self.U(x)  # (B, n, D)
        _, n, d = aggregate.shape
        normed = self.bn(aggregate.reshape(-1, n, d, 1)).squeeze(3)
        return self.relu(x + normed)


class AUClassifier(nn.Cell):
    """AU node features (B, n, D) -> n logits: one linear read-out per node, logit_i = <w_i, x_i> + b_i."""

    def __init__(self, dim: int, num_nodes: int = 12) -> None:
        super().__init__()
        self.weight = ms.Parameter(initializer(XavierUniform(), (num_nodes, dim), ms.float32), name="weight")
        self.bias = ms.Parameter(initializer("zeros", (num_nodes,), ms.float32), name="bias")

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return (x * self.weight.astype(x.dtype)).sum(axis=-1) + self.bias.astype(x.dtype)
