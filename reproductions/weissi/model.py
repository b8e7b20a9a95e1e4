"""Small ReLU classifiers for 28x28 images: an MLP and a CNN.

Both are built only from Linear/Conv layers, ReLU and max-pooling — all positively
homogeneous — so moving a factor ``c`` from one layer's weights (and bias) to the next
layer's weights as ``1/c`` leaves the function unchanged. That is the symmetry the WEISSI
penalty respects and L2 does not. ``norm="batch"`` inserts BatchNorm after each hidden
layer: then each preceding weight matrix is scale-free on its own (BN divides its scale
out), which is the other setting the paper's argument covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    arch: str = "mlp"  # mlp | cnn
    d_hidden: int = 256  # mlp: width of each hidden layer; cnn: width of the dense layer
    n_layer: int = 2  # mlp: number of hidden layers
    channels: int = 32  # cnn: channels of the first conv (the second has twice as many)
    norm: str = "none"  # none | batch
    n_classes: int = 10


class MLP(nn.Module):
    """x (B, 1, 28, 28) -> flatten (B, 784) -> [Linear -> (BN) -> ReLU] x n_layer -> Linear -> (B, 10)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for _ in range(cfg.n_layer):
            layers.append(nn.Linear(width, cfg.d_hidden))
            if cfg.norm == "batch":
                layers.append(nn.BatchNorm1d(cfg.d_hidden))
            layers.append(nn.ReLU())
            width = cfg.d_hidden
        layers.append(nn.Linear(width, cfg.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, n_classes) logits


class CNN(nn.Module):
    """x (B,1,28,28) -> conv5 c -> pool -> (B,c,14,14) -> conv5 2c -> pool -> (B,2c,7,7) -> fc d_hidden -> fc 10."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels

        def norm(ch: int) -> nn.Module:
            return nn.BatchNorm2d(ch) if cfg.norm == "batch" else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(1, c, 5, padding=2), norm(c), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 5, padding=2), norm(2 * c), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, cfg.d_hidden),
            nn.BatchNorm1d(cfg.d_hidden) if cfg.norm == "batch" else nn.Identity(),
            nn.ReLU(),
            nn.Linear(cfg.d_hidden, cfg.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, n_classes) logits


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "mlp":
        return MLP(cfg)
    if cfg.arch == "cnn":
        return CNN(cfg)
    raise ValueError(f"unknown arch {cfg.arch!r} (choose mlp or cnn)")


@torch.no_grad()
def shift_scale_(model: nn.Module, layer: int, c: float) -> None:
    """Multiply weight layer ``layer`` (and its bias) by ``c`` and layer ``layer+1``'s weight by ``1/c``.

    Layers are counted over Linear/Conv modules in definition order. For a ReLU network
    without normalisation between them this leaves every output unchanged (c > 0).
    """
    mods = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not 0 <= layer < len(mods) - 1:
        raise IndexError(f"layer {layer} has no successor (model has {len(mods)} weight layers)")
    if c <= 0:
        raise ValueError("the shift factor must be positive (ReLU is only positively homogeneous)")
    mods[layer].weight.mul_(c)
    if mods[layer].bias is not None:
        mods[layer].bias.mul_(c)
    mods[layer + 1].weight.div_(c)
