"""Local Region Perception (LRP): a few LANets vote on where the AU-relevant face regions are.

Paper section 3.1. Each LANet (Wang et al., "Region attention networks for pose and occlusion robust facial
expression recognition"; layout as in the public APViT/LANet code) maps the backbone feature map (B, c, h, w)
through a 1x1 conv to c/r channels, BatchNorm + ReLU, then a 1x1 conv to one channel. The n single-channel maps
are stacked, max-reduced over the stack, and squashed by a sigmoid into one attention map (B, 1, h, w) that
multiplies the backbone map element-wise.
"""

from typing import Tuple

import mindspore as ms
from mindspore import nn, ops

__all__ = ["LANet", "LocalRegionPerception"]


class LANet(nn.Cell):
    """1x1 conv c -> c/r, BN, ReLU, 1x1 conv -> 1: one unnormalised attention map (B, 1, h, w)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv1 = nn.Conv2d(channels, hidden, 1, has_bias=False)
        self.bn = nn.BatchNorm2d(hidden, eps=1e-5, momentum=0.9)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(hidden, 1, 1, has_bias=True)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.conv2(self.relu(self.bn(self.conv1(x))))


class LocalRegionPerception(nn.Cell):
    """n LANets -> stack -> max over the stack -> sigmoid -> attention; returns (x * attention, attention).

    Args:
        channels: channels c of the backbone feature map.
        num: number n of LANets.
        reduction: channel compression rate r of each LANet.
    """

    def __init__(self, channels: int, num: int = 4, reduction: int = 16) -> None:
        super().__init__()
        if num < 1 or reduction < 1:
            raise ValueError(f"LocalRegionPerception needs num >= 1 and reduction >= 1, got {num}, {reduction}")
        self.lanets = nn.CellList([LANet(channels, reduction) for _ in range(num)])
        self.concat = ops.Concat(axis=1)
        self.sigmoid = nn.Sigmoid()
        self.reduce_max = ops.ReduceMax(keep_dims=True)

    def construct(self, x: ms.Tensor) -> Tuple[ms.Tensor, ms.Tensor]:
        maps = []
        for lanet in self.lanets:
            maps.append(lanet(x))
        stacked = self.concat(maps)  # (B, n, h, w)
        attention = self.sigmoid(self.reduce_max(stacked, 1))  # (B, 1, h, w)
        return x * attention, attention
