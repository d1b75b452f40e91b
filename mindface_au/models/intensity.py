"""The AU intensity head: FACS 0-5 intensities of its own AU list, beside the occurrence logits.

Two forms, chosen by the network it sits on (models/aunet.py):

- on the AU graph (ARL on): one linear read-out per intensity AU of that AU's node features after the graph,
  like the occurrence classifier (`graph.AUClassifier`), so both tasks share the per-AU representation;
- without the graph (ARL off): a linear layer on the backbone embedding.

Both end in INTENSITY_MAX * sigmoid(.), so every output lies in [0, 5] whatever the weights.
"""

from typing import Sequence

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import XavierUniform, initializer

from mindface_au.au_sets import INTENSITY_MAX

__all__ = ["NodeIntensityHead", "EmbeddingIntensityHead"]


class NodeIntensityHead(nn.Cell):
    """AU node features (B, n, D) -> (B, k) intensities of the nodes at `node_indices` (k of the n AUs)."""

    def __init__(self, dim: int, node_indices: Sequence[int], num_nodes: int) -> None:
        super().__init__()
        indices = [int(i) for i in node_indices]
        if not indices or min(indices) < 0 or max(indices) >= num_nodes:
            raise ValueError(f"NodeIntensityHead node_indices {indices} must lie in 0..{num_nodes - 1}")
        self.select = indices != list(range(num_nodes))
        self.indices = ms.Tensor(indices, ms.int32)
        k = len(indices)
        self.weight = ms.Parameter(initializer(XavierUniform(), (k, dim), ms.float32), name="weight")
        self.bias = ms.Parameter(initializer("zeros", (k,), ms.float32), name="bias")
        self.sigmoid = nn.Sigmoid()

    def construct(self, nodes: ms.Tensor) -> ms.Tensor:
        if self.select:
            nodes = ops.gather(nodes, self.indices, 1)
        score = (nodes * self.weight.astype(nodes.dtype)).sum(axis=-1) + self.bias.astype(nodes.dtype)
        return INTENSITY_MAX * self.sigmoid(score)


class EmbeddingIntensityHead(nn.Cell):
    """Backbone embedding (B, E) -> (B, k) intensities: one linear layer."""

    def __init__(self, embedding_size: int, num_outputs: int) -> None:
        super().__init__()
        self.fc = nn.Dense(embedding_size, num_outputs)
        self.sigmoid = nn.Sigmoid()

    def construct(self, embedding: ms.Tensor) -> ms.Tensor:
        return INTENSITY_MAX * self.sigmoid(self.fc(embedding))
