"""PyTorch IResNet, the same network as insightface arcface_torch `backbones/iresnet.py`.

Used only to check conversions (`mindface-au convert --verify`), by the parity tests and by the benchmark.
Module names, layer order, BatchNorm eps and the initialisation match the insightface file, so its state_dict has
the Glint360K checkpoint's keys. Two additions, both defaulting to the original: `widths` (stage widths, for tiny
test networks) and `input_size` (the fc input is widths[-1] * (input_size / 16) ** 2).
"""

from typing import Optional, Sequence

import torch
from torch import nn

from mindface_au.config import IRESNET_LAYERS as TORCH_IRESNET_LAYERS

__all__ = [
    "IBasicBlock",
    "IResNet",
    "TORCH_IRESNET_LAYERS",
    "iresnet",
    "randomize_",
    "calibrate_",
    "save_random_checkpoint",
]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class IBasicBlock(nn.Module):
    """bn1 -> conv1 -> bn2 -> prelu -> conv2(stride) -> bn3, plus identity or downsample."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return out


class IResNet(nn.Module):
    """insightface IResNet: conv1/bn1/prelu, four IBasicBlock stages, bn2 -> flatten -> dropout -> fc -> features."""

    def __init__(
        self,
        layers: Sequence[int],
        dropout: float = 0.0,
        num_features: int = 512,
        widths: Sequence[int] = (64, 128, 256, 512),
        input_size: int = 112,
    ) -> None:
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes, eps=1e-05)
        self.prelu = nn.PReLU(self.inplanes)
        self.layer1 = self._make_layer(widths[0], layers[0], stride=2)
        self.layer2 = self._make_layer(widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(widths[3], layers[3], stride=2)
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(widths[3] * (input_size // 16) ** 2, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.forward_features(x))
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


def iresnet(
    arch: str = "iresnet100",
    widths: Sequence[int] = (64, 128, 256, 512),
    layers: Sequence[int] = (),
    num_features: int = 512,
    input_size: int = 112,
    dropout: float = 0.0,
) -> IResNet:
    """Build the PyTorch IResNet `arch`; `layers` overrides the depth's block counts (tiny test networks)."""
    if arch not in TORCH_IRESNET_LAYERS:
        raise ValueError(f"unknown IResNet {arch!r}; expected one of {', '.join(TORCH_IRESNET_LAYERS)}")
    return IResNet(
        tuple(layers) or TORCH_IRESNET_LAYERS[arch],
        dropout=dropout,
        num_features=num_features,
        widths=tuple(widths),
        input_size=input_size,
    )


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial weight, bias and running statistics and every PReLU a random slope.

    A freshly initialised network has BN = identity and PReLU = 0.25, which would hide a mapping mistake
    (gamma/beta swapped, moving stats ignored) in a conversion test.
    """
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = module.num_features
            if module.weight.requires_grad:
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.copy_(0.2 * torch.randn(n, generator=gen))
            module.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            module.num_batches_tracked.fill_(7)
        elif isinstance(module, nn.PReLU):
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 0.5)
    return model


@torch.no_grad()
def calibrate_(model: nn.Module, batch_size: int = 4, seed: int = 0) -> nn.Module:
    """Rescale conv weights by fan-in and set BatchNorm running statistics from one random batch.

    insightface's N(0, 0.1) conv init makes an untrained IResNet100 overflow to inf after a few dozen blocks;
    a trained network does not. Fan-in scaling plus BN statistics measured on data (as training would leave
    them) gives a random network with finite, trained-like activations, so conversion checks compare numbers.
    """
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / fan_in**0.5)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]  # noqa: SLF001
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: the batch's own statistics
    model.train()
    side = model.fc.in_features // model.bn2.num_features
    side = int(round(side**0.5)) * 16
    model(torch.rand(batch_size, 3, side, side, generator=gen) * 2 - 1)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


def save_random_checkpoint(path: str, arch: str = "iresnet100", seed: int = 0, **kwargs) -> nn.Module:
    """Write a randomly initialised, Glint360K-shaped IResNet state_dict with torch.save (benchmarks, tests).

    Weights are random (BN affine and PReLU slopes too); BN statistics come from one random batch (`calibrate_`).
    """
    torch.manual_seed(seed)
    model = calibrate_(randomize_(iresnet(arch, **kwargs), seed), seed=seed)
    torch.save(model.state_dict(), path)
    return model
