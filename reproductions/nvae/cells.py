"""NVAE's residual cells (paper Sec. 3.1, Fig. 3).

Both cells are residual: ``out = skip(x) + 0.1 * branch(x)``. The small factor keeps
a deep stack close to the identity at initialisation. Both end in
squeeze-and-excitation (SE), a per-channel gate computed from the global average.

* Encoder (bottom-up) cell: ``BN - Swish - conv3x3 - BN - Swish - conv3x3 - SE``.
* Generative (top-down) cell: ``BN - conv1x1 (expand E times) - BN - Swish -
  depthwise conv5x5 - BN - Swish - conv1x1 - BN - SE``. The depthwise 5x5 gives a
  large receptive field cheaply; the paper found the extra BN/expansion mattered
  for the generative side only, where it is cheap because the model is sampled there.

Either cell can change resolution: the encoder cell halves it (stride-2 first
conv), the generative cell doubles it (nearest upsampling first); the skip path then
becomes a 1x1 conv so shapes match.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

RESIDUAL_SCALE = 0.1


class Swish(nn.Module):
    """``x * sigmoid(x)``, the activation NVAE uses everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


class SqueezeExcite(nn.Module):
    """Gate each channel by a sigmoid of an MLP over the channel means."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> same
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


def _skip(c_in: int, c_out: int, stride: int) -> nn.Module:
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return nn.Conv2d(c_in, c_out, 1, stride=stride)


class EncoderCell(nn.Module):
    """Bottom-up residual cell; ``downsample=True`` halves H, W (and usually doubles C)."""

    def __init__(self, c_in: int, c_out: int | None = None, downsample: bool = False):
        super().__init__()
        c_out = c_out or c_in
        stride = 2 if downsample else 1
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in), Swish(), nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
            nn.BatchNorm2d(c_out), Swish(), nn.Conv2d(c_out, c_out, 3, padding=1),
            SqueezeExcite(c_out),
        )
        self.skip = _skip(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Cin, H, W) -> (B, Cout, H/s, W/s)
        return self.skip(x) + RESIDUAL_SCALE * self.branch(x)


class GenerativeCell(nn.Module):
    """Top-down residual cell with an inverted-bottleneck depthwise 5x5; ``upsample=True`` doubles H, W."""

    def __init__(self, c_in: int, c_out: int | None = None, expand: int = 3, upsample: bool = False):
        super().__init__()
        c_out = c_out or c_in
        hidden = c_in * expand
        self.upsample = upsample
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.Conv2d(c_in, hidden, 1), nn.BatchNorm2d(hidden), Swish(),
            nn.Conv2d(hidden, hidden, 5, padding=2, groups=hidden), nn.BatchNorm2d(hidden), Swish(),
            nn.Conv2d(hidden, c_out, 1), nn.BatchNorm2d(c_out),
            SqueezeExcite(c_out),
        )
        self.skip = _skip(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Cin, H, W) -> (B, Cout, H*u, W*u)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.skip(x) + RESIDUAL_SCALE * self.branch(x)
