"""MNIST for WEISSI: the training images, a fixed held-out part that chooses the lambdas, the sealed test set.

The 60k MNIST training images are split once by a fixed permutation (``holdout_seed``) into
``holdout_images`` held-out images, which only choose the lambdas, and the rest, of which the
first ``train_images`` (0 = all) train every model. The 10k test images are sealed
(`reproductions.splits`) until the final evaluation. Only the smoke preset may fall back to
synthetic images when MNIST is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reproductions.api import RunContext
from reproductions.data import DatasetMissing, load_mnist, resolve_data_dir


@dataclass
class Split:
    x: torch.Tensor  # (N, 1, 28, 28) in [0, 1]
    y: torch.Tensor  # (N,) int64

    def head(self, n: int) -> "Split":
        """The first `n` images (all of them when n is 0)."""
        return Split(self.x[:n or None], self.y[:n or None])

    def to(self, device: Any) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Data:
    train: Split  # trains every model
    holdout: Split  # chooses the lambdas, nothing else
    test: Any  # Sealed[Split]: scores the final models, readable only after ctx.begin_final_evaluation()
    source: str  # "mnist" | "synthetic": which files were read
    n_test: int = 0


def _to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    return Split(x, torch.from_numpy(labels.astype(np.int64)))


def synthetic_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten fixed random blob prototypes plus pixel noise (``seed`` draws the samples): learnable, not MNIST."""
    g = torch.Generator().manual_seed(0)  # the same ten classes for train and test
    blur = F.avg_pool2d(torch.rand(10, 1, 28, 28, generator=g), 5, stride=1, padding=2)
    protos = (blur > blur.flatten(1).median(1).values.view(10, 1, 1, 1)).float()  # (10, 1, 28, 28) binary blobs
    g.manual_seed(1000 + seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (protos[y] + 0.5 * torch.randn(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return x, y


def holdout_split(n: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) of ``range(n)`` by a fixed permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[holdout:]), np.sort(perm[:holdout])


def load_data(cfg: Any, ctx: RunContext) -> Data:
    """`cfg` needs train_images, test_images, holdout_images, holdout_seed, allow_synthetic."""
    try:
        train, test = load_mnist(resolve_data_dir(ctx.data_dir))
    except DatasetMissing as e:
        if not cfg.allow_synthetic:
            raise
        ctx.note("data", f"synthetic 10-class images (MNIST missing: {e})")
        n_hold = min(cfg.holdout_images, 500)
        xtr, ytr = synthetic_digits((cfg.train_images or 2000) + n_hold, ctx.seed)
        xte, yte = synthetic_digits(cfg.test_images or 500, ctx.seed + 1)
        return Data(Split(xtr[n_hold:], ytr[n_hold:]), Split(xtr[:n_hold], ytr[:n_hold]),
                    ctx.seal(Split(xte, yte), "synthetic test images"), "synthetic", len(yte))
    tr_idx, ho_idx = holdout_split(len(train.images), cfg.holdout_images, cfg.holdout_seed)
    if cfg.train_images:
        tr_idx = tr_idx[: cfg.train_images]
    te = slice(0, cfg.test_images or None)
    data = Data(_to_split(train.images[tr_idx], train.labels[tr_idx]),
                _to_split(train.images[ho_idx], train.labels[ho_idx]),
                ctx.seal(_to_split(test.images[te], test.labels[te]), "MNIST test"), "mnist",
                len(test.labels[te]))
    ctx.note("data", f"train: {train.description} minus a fixed held-out {len(ho_idx)} (numpy default_rng("
                     f"{cfg.holdout_seed}) permutation), used {len(data.train.y)}; held-out {len(ho_idx)} choose "
                     f"the lambdas only; test: {test.description} (used {data.n_test})")
    return data
