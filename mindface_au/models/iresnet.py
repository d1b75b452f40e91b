"""IResNet (insightface arcface_torch), the Glint360K face-recognition backbone.

Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019.
Attribute names mirror the PyTorch module so a Glint360K state_dict converts by renaming alone
(BatchNorm weight/bias -> gamma/beta, running stats -> moving_mean/moving_variance, PReLU weight -> w).
"""

from typing import Sequence

import mindspore as ms
from mindspore import nn, ops

from mindface_au.models.registry import register_model

__all__ = ["IResNet", "IBasicBlock", "IRESNET_LAYERS", "create_iresnet"]

IRESNET_LAYERS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
BN_EPS = 1e-5
BN_MOMENTUM = 0.9  # MindSpore momentum = 1 - PyTorch momentum (0.1)


def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, pad_mode="pad", padding=1, has_bias=False)


class IBasicBlock(nn.Cell):
    """bn1 -> conv1 -> bn2 -> prelu -> conv2(stride) -> bn3, plus an identity or 1x1-conv shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = _bn2d(in_channels)
        self.conv1 = _conv3x3(in_channels, channels)
        self.bn2 = _bn2d(channels)
        self.prelu = nn.PReLU(channels)
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
        self.prelu = nn.PReLU(widths[0])
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


def _register_depths() -> None:
    """One table of depths, one registered factory per depth (iresnet18 ... iresnet200)."""
    for arch in IRESNET_LAYERS:

        def factory(_arch=arch, **kwargs) -> IResNet:
            return create_iresnet(_arch, **kwargs)

        factory.__name__ = arch
        factory.__doc__ = f"{arch}: IResNet with stages {IRESNET_LAYERS[arch]} (insightface/Glint360K layout)."
        register_model(
            factory,
            default_cfg={
                "input_size": (3, 112, 112),
                "mean": (0.5, 0.5, 0.5),
                "std": (0.5, 0.5, 0.5),
                "checkpoint": f"glint360k_{arch.replace('iresnet', 'r')}.ckpt",
                "sha256": None,
            },
        )


_register_depths()
