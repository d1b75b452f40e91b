"""IResNet (insightface arcface_torch), the Glint360K face-recognition backbone.

Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019.
Attribute names mirror the PyTorch module so a Glint360K state_dict converts by renaming alone
(BatchNorm weight/bias -> gamma/beta, running stats -> moving_mean/moving_variance, PReLU weight -> w).
"""

import time
from typing import Sequence

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindface_au.data.transforms import ARCFACE_MEAN, ARCFACE_STD
from mindface_au.models.registry import register_model
from mindface_au.models.specs import IRESNET_LAYERS

__all__ = [
    "IResNet",
    "IBasicBlock",
    "IRESNET_LAYERS",
    "PReLU",
    "create_iresnet",
    "fuse_for_inference",
    "set_prelu_form",
]

PRELU_FORMS = ("auto", "relu", "native")
PRELU_FORM = "native"  # default form of PReLU cells built from now on (see PReLU)
BN_EPS = 1e-5
BN_MOMENTUM = 0.9  # MindSpore momentum = 1 - PyTorch momentum (0.1)


def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class PReLU(nn.Cell):
    """Channel-wise PReLU with nn.PReLU's parameter (`w`, shape (C,), initialised to 0.25) and output.

    `form` picks how it is computed: "native" (MindSpore's PReLU op, the default), "relu"
    (relu(x) - w * relu(-x)) or "auto" (relu form in inference, native op in training). The native op is the
    default everywhere. On CPU, MindSpore 2.10 keeps about 4x the tensor's size per broadcasting multiply kernel,
    outside its memory pool. The relu form therefore took IResNet100 inference from 983 to 1701 MiB at batch 8
    (3983 vs 1170 MiB at batch 32), with no consistent speed difference. In training it doubled the peak.
    See docs/performance.md.
    """

    def __init__(self, channels: int, form: str = "") -> None:
        super().__init__()
        self.form = form or PRELU_FORM
        if self.form not in PRELU_FORMS:
            raise ValueError(f"PReLU form must be one of {PRELU_FORMS}, got {self.form!r}")
        self.w = ms.Parameter(ms.Tensor(np.full((channels,), 0.25, np.float32)), name="w")
        self.prelu = ops.PReLU()
        self.relu = ops.ReLU()

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        if self.form == "native" or (self.form == "auto" and self.training):
            return self.prelu(x, self.w)
        return self.relu(x) - self.w.reshape((-1, 1, 1)) * self.relu(-x)


def set_prelu_form(net: nn.Cell, form: str) -> int:
    """Compute every PReLU inside `net` in `form` (see PReLU) from its next graph compile on; returns the count.

    Same parameters and outputs, so checkpoints do not depend on it. Training (`train.prelu_form`) uses it: at
    narrow widths MindSpore 2.10's CPU PReLUGrad kernel dominates the step (docs/performance.md, "Narrow networks").
    """
    if form not in PRELU_FORMS:
        raise ValueError(f"PReLU form must be one of {PRELU_FORMS}, got {form!r}")
    cells = [cell for _, cell in net.cells_and_names() if isinstance(cell, PReLU)]
    for cell in cells:
        cell.form = form
    return len(cells)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, pad_mode="pad", padding=1, has_bias=False)


class IBasicBlock(nn.Cell):
    """bn1 -> conv1 -> bn2 -> prelu -> conv2(stride) -> bn3, plus an identity or 1x1-conv shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = _bn2d(in_channels)
        self.conv1 = _conv3x3(in_channels, channels)
        self.bn2 = _bn2d(channels)
        self.prelu = PReLU(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn3 = _bn2d(channels)
        self.has_downsample = stride != 1 or in_channels != channels
        if self.has_downsample:
            self.downsample = nn.SequentialCell(
                nn.Conv2d(in_channels, channels, 1, stride=stride, has_bias=False), _bn2d(channels)
            )
        else:
            self.downsample = nn.Identity()

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        return out + self.downsample(x)


class IResNet(nn.Cell):
    """IResNet: 112x112 RGB face -> (N, 512) embedding; `forward_features` gives the (N, C, 7, 7) map.

    Args:
        layers: blocks in each of the four stages.
        widths: channels of the four stages (64, 128, 256, 512 for the Glint360K models; smaller for tests).
        embedding_size: size of the output embedding.
        input_size: side of the square input; the map side is input_size / 16.
        dropout: dropout probability before the embedding layer.
    """

    def __init__(
        self,
        layers: Sequence[int],
        widths: Sequence[int] = (64, 128, 256, 512),
        embedding_size: int = 512,
        input_size: int = 112,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"IResNet needs 4 stages, got layers={layers} widths={widths}")
        if input_size % 16:
            raise ValueError(f"IResNet input_size must be a multiple of 16, got {input_size}")
        self.num_features = int(widths[-1])
        self.feature_size = input_size // 16
        self.conv1 = _conv3x3(3, widths[0])
        self.bn1 = _bn2d(widths[0])
        self.prelu = PReLU(widths[0])
        in_channels = widths[0]
        stages = []
        for blocks, channels in zip(layers, widths):
            stage = [IBasicBlock(in_channels, channels, stride=2)]
            stage += [IBasicBlock(channels, channels) for _ in range(blocks - 1)]
            stages.append(nn.SequentialCell(stage))
            in_channels = channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = _bn2d(self.num_features)
        self.dropout = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Dense(self.num_features * self.feature_size**2, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.features.gamma.requires_grad = False  # frozen at 1 in insightface
        self.flatten = ops.Flatten()

    def forward_features(self, x: ms.Tensor) -> ms.Tensor:
        """(N, 3, H, W) normalised face -> (N, C, H/16, W/16) feature map (the AU heads' input)."""
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_head(self, features: ms.Tensor) -> ms.Tensor:
        """Feature map -> embedding (bn2, flatten, dropout, fc, BatchNorm1d)."""
        x = self.flatten(self.bn2(features))
        x = self.fc(self.dropout(x))
        return self.features(x)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.forward_head(self.forward_features(x))


def create_iresnet(
    arch: str = "iresnet100",
    widths: Sequence[int] = (64, 128, 256, 512),
    layers: Sequence[int] = (),
    embedding_size: int = 512,
    input_size: int = 112,
    dropout: float = 0.0,
    **_ignored,
) -> IResNet:
    """Build an IResNet by depth name; `layers` overrides the depth's block counts (tests use tiny nets)."""
    if arch not in IRESNET_LAYERS:
        raise ValueError(f"unknown IResNet {arch!r}; expected one of {', '.join(IRESNET_LAYERS)}")
    return IResNet(
        tuple(layers) or IRESNET_LAYERS[arch],
        widths=tuple(widths),
        embedding_size=embedding_size,
        input_size=input_size,
        dropout=dropout,
    )


def _bn_scale_shift(bn: nn.Cell):
    """Eval-mode BatchNorm as y = x * scale + shift (numpy, float64 for the folding arithmetic)."""
    gamma = bn.gamma.asnumpy().astype(np.float64)
    var = bn.moving_variance.asnumpy().astype(np.float64)
    scale = gamma / np.sqrt(var + bn.eps)
    shift = bn.beta.asnumpy().astype(np.float64) - bn.moving_mean.asnumpy().astype(np.float64) * scale
    return scale, shift


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.Cell) -> nn.Conv2d:
    """A conv with bias equal to bn(conv(x)) in eval mode."""
    scale, shift = _bn_scale_shift(bn)
    weight = conv.weight.asnumpy().astype(np.float64) * scale[:, None, None, None]
    bias = shift if conv.bias is None else conv.bias.asnumpy().astype(np.float64) * scale + shift
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        pad_mode=conv.pad_mode,
        padding=conv.padding,
        dilation=conv.dilation,
        group=conv.group,
        has_bias=True,
    )
    fused.weight.set_data(ms.Tensor(weight.astype(np.float32)))
    fused.bias.set_data(ms.Tensor(bias.astype(np.float32)))
    return fused


def _fuse_block(block: IBasicBlock) -> None:
    # bn1 precedes a zero-padded conv, so folding it would change the border pixels: it stays a BatchNorm.
    block.conv1 = _fold_conv_bn(block.conv1, block.bn2)
    block.bn2 = nn.Identity()
    block.conv2 = _fold_conv_bn(block.conv2, block.bn3)
    block.bn3 = nn.Identity()
    if block.has_downsample:
        block.downsample = _fold_conv_bn(block.downsample[0], block.downsample[1])


def _fuse_head(net: IResNet) -> None:
    """Fold bn2 (before flatten) and the `features` BatchNorm1d (after fc) into fc."""
    scale2, shift2 = _bn_scale_shift(net.bn2)
    per_column = net.feature_size**2
    col_scale, col_shift = np.repeat(scale2, per_column), np.repeat(shift2, per_column)
    weight = net.fc.weight.asnumpy().astype(np.float64)
    bias = net.fc.bias.asnumpy().astype(np.float64) + weight @ col_shift
    weight = weight * col_scale[None, :]
    out_scale, out_shift = _bn_scale_shift(net.features)
    net.fc.weight.set_data(ms.Tensor((weight * out_scale[:, None]).astype(np.float32)))
    net.fc.bias.set_data(ms.Tensor((bias * out_scale + out_shift).astype(np.float32)))
    net.bn2 = nn.Identity()
    net.features = nn.Identity()


def fuse_for_inference(net: nn.Cell) -> nn.Cell:
    """Fold BatchNorms into the adjacent convs / fc of every IResNet inside `net` (in place; returns `net`).

    For inference and export only: the result is in eval mode and equals the original eval-mode network up to
    float rounding. Per block, bn2 -> conv1, bn3 -> conv2 and the downsample BN are folded; bn1 stays (it
    precedes a zero-padded conv). Stem bn1 -> conv1; head bn2 and `features` -> fc. Parameter names change
    (convs gain a bias), so save training checkpoints from an unfused network.
    """
    net.set_train(False)
    cells = [net] + [cell for _, cell in net.cells_and_names()]
    backbones = [cell for cell in cells if isinstance(cell, IResNet)]
    for backbone in backbones:
        if getattr(backbone, "fused", False):
            continue
        backbone.conv1 = _fold_conv_bn(backbone.conv1, backbone.bn1)
        backbone.bn1 = nn.Identity()
        for stage in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4):
            for block in stage:
                _fuse_block(block)
        _fuse_head(backbone)
        backbone.fused = True
    for name, param in net.parameters_and_names():  # new cells start with bare names ("weight"); give full paths
        param.name = name
    stamp = time.time_ns()
    for cell in [net] + [cell for _, cell in net.cells_and_names()]:
        # A compiled graph is cached per (cell id, creation time): a new stamp makes the next call recompile the
        # fused structure instead of running the graph compiled before fusion.
        object.__setattr__(cell, "_create_time", stamp)
    net.set_train(False)
    return net


# Input every model here expects: 112x112 RGB aligned faces normalised as (x / 255 - 0.5) / 0.5.
FACE_INPUT_CFG = {"input_size": (3, 112, 112), "mean": ARCFACE_MEAN, "std": ARCFACE_STD}


def glint360k_checkpoint_name(arch: str) -> str:
    """File name of the converted Glint360K checkpoint of an IResNet depth (iresnet100 -> glint360k_r100.ckpt)."""
    return f"glint360k_{arch.replace('iresnet', 'r')}.ckpt"


def _register_depths() -> None:
    """One table of depths, one registered factory per depth (iresnet18 ... iresnet200)."""
    for arch in IRESNET_LAYERS:

        def factory(_arch=arch, **kwargs) -> IResNet:
            return create_iresnet(_arch, **kwargs)

        factory.__name__ = arch
        factory.__doc__ = f"{arch}: IResNet with stages {IRESNET_LAYERS[arch]} (insightface/Glint360K layout)."
        register_model(
            factory,
            default_cfg={**FACE_INPUT_CFG, "checkpoint": glint360k_checkpoint_name(arch), "sha256": None},
        )


_register_depths()
