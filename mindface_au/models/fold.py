"""Inference form of a network: BatchNorm folded and every shape batch-agnostic, for `.ckpt` inference and export.

`prepare_for_inference(net)` = `fold_batchnorm` + `BatchDynamicDense`; the result equals the eval-mode network up
to float rounding.

BatchNorm folding (eval-mode statistics):

The IResNet backbone is folded by `mindface_au.models.iresnet.fuse_for_inference`; this module adds the heads:
- LRP: each LANet's BatchNorm follows a 1x1 convolution without padding, so it folds into that convolution.
- AU node features: the BatchNorm1d over n*D channels follows the Dense layer and folds into it.
- Graph: the BatchNorm2d over the n node channels of (B, n, D, 1) becomes a per-node scale and shift.
Besides speed, folding is what keeps the batch axis of an exported ONNX graph dynamic: MindSpore exports an
eval-mode BatchNorm1d as a Reshape with the export batch baked in. For the same reason `nn.Dense` on a 3-D
input (graph and transformer layers) reads its input shape and reshapes back to it, batch included, so
`BatchDynamicDense` reshapes back with -1 as the batch instead.
"""

import mindspore as ms
import numpy as np
from mindspore import nn, ops

__all__ = ["prepare_for_inference", "fold_batchnorm", "ChannelAffine", "BatchDynamicDense"]


class ChannelAffine(nn.Cell):
    """y = x * scale + shift per channel (axis 1) of an NCHW tensor: an eval-mode BatchNorm2d, folded."""

    def __init__(self, scale: np.ndarray, shift: np.ndarray) -> None:
        super().__init__()
        shape = (1, -1, 1, 1)
        self.scale = ms.Parameter(ms.Tensor(np.asarray(scale, np.float32).reshape(shape)), name="scale")
        self.shift = ms.Parameter(ms.Tensor(np.asarray(shift, np.float32).reshape(shape)), name="shift")

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return x * self.scale.astype(x.dtype) + self.shift.astype(x.dtype)


class BatchDynamicDense(nn.Dense):
    """nn.Dense whose N-D output reshape keeps the batch axis as -1 (same operations, same numbers)."""

    def construct(self, x):
        x_shape = self.shape_op(x)
        if len(x_shape) != 2:
            x = self.reshape(x, (-1, x_shape[-1]))
        x = self.matmul(x, self.weight)
        if self.has_bias:
            x = self.bias_add(x, self.bias)
        if self.activation_flag:
            x = self.activation(x)
        if len(x_shape) != 2:
            x = self.reshape(x, (-1,) + x_shape[1:-1] + (ops.shape(x)[-1],))
        return x


def _scale_shift(bn: nn.Cell):
    """Eval-mode BatchNorm as y = x * scale + shift (float64 for the folding arithmetic)."""
    gamma = bn.gamma.asnumpy().astype(np.float64)
    scale = gamma / np.sqrt(bn.moving_variance.asnumpy().astype(np.float64) + bn.eps)
    shift = bn.beta.asnumpy().astype(np.float64) - bn.moving_mean.asnumpy().astype(np.float64) * scale
    return scale, shift


def _fold_into(layer: nn.Cell, bn: nn.Cell) -> None:
    """Fold `bn` (after `layer`, a Dense or a 1x1 unpadded Conv2d) into the layer's weight and bias, in place."""
    scale, shift = _scale_shift(bn)
    weight = layer.weight.asnumpy().astype(np.float64)
    bias = layer.bias.asnumpy().astype(np.float64) if layer.bias is not None else np.zeros(weight.shape[0])
    weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    layer.weight.set_data(ms.Tensor(weight.astype(np.float32)))
    new_bias = (bias * scale + shift).astype(np.float32)
    if layer.bias is None:
        layer.bias = ms.Parameter(ms.Tensor(new_bias), name="bias")
        layer.has_bias = True
    else:
        layer.bias.set_data(ms.Tensor(new_bias))


def fold_batchnorm(net: nn.Cell) -> nn.Cell:
    """Fold every BatchNorm of an AUNet or a bare IResNet that can be folded (in place; returns `net`, eval mode).

    Parameter names change, so save training checkpoints from an unfolded network.
    """
    from mindface_au.models.graph import AUNodeFeatures, AURelationGraph
    from mindface_au.models.iresnet import fuse_for_inference
    from mindface_au.models.lrp import LANet

    net.set_train(False)
    for _, cell in [("", net)] + list(net.cells_and_names()):
        if getattr(cell, "_heads_folded", False):
            continue
        if isinstance(cell, LANet) and isinstance(cell.bn, nn.BatchNorm2d):
            _fold_into(cell.conv1, cell.bn)
            cell.bn = nn.Identity()
        elif isinstance(cell, AUNodeFeatures) and isinstance(cell.bn, nn.BatchNorm1d):
            _fold_into(cell.fc, cell.bn)
            cell.bn = nn.Identity()
        elif isinstance(cell, AURelationGraph) and isinstance(cell.bn, nn.BatchNorm2d):
            cell.bn = ChannelAffine(*_scale_shift(cell.bn))
        else:
            continue
        object.__setattr__(cell, "_heads_folded", True)
    # the backbone last: it also renames parameters to their full paths and makes the next call recompile
    return fuse_for_inference(net)


def prepare_for_inference(net: nn.Cell) -> nn.Cell:
    """`fold_batchnorm` and every nn.Dense as a `BatchDynamicDense` (in place; returns `net` in eval mode)."""
    fold_batchnorm(net)
    for _, cell in net.cells_and_names():
        if type(cell) is nn.Dense:
            cell.__class__ = BatchDynamicDense  # same attributes and parameters, only construct differs
    return net
