"""MNIST for the NVAE experiment: loading (test split sealed), dynamic binarization, and the
batch stream every rank draws identically.

Data (``data="dynamic"``, the paper's setting): the 60k grey training images, each
binarized afresh by a Bernoulli draw every time it is visited; the 10k test images
binarized once with ``test_binarization_seed``. ``data="binarized"`` uses the fixed
(Larochelle & Murray) binarization instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from reproductions.api import ConfigError, RunContext
from reproductions.data import DatasetMissing, load_binarized_mnist, load_mnist, resolve_data_dir
from reproductions.nvae.config import ExperimentConfig


@dataclass
class Data:
    train: torch.Tensor  # (N, 784) uint8: grey levels 0..255 when dynamic, else {0, 1}
    test: Any  # (M, 1, 28, 28) float {0, 1}; load_data returns it sealed until ctx.begin_final_evaluation()
    dynamic: bool  # draw fresh binary pixels from the grey levels at every visit
    description: str
    source: str  # "mnist" | "binarized_mnist" | "synthetic": which files were read


def load_data(cfg: ExperimentConfig, ctx: RunContext) -> Data:
    root = resolve_data_dir(ctx.data_dir)
    n_test = max(cfg.test_images, cfg.iw_images, cfg.ablation_iw_images)
    try:
        if cfg.data == "binarized":
            splits = load_binarized_mnist(root)
            train, test = splits["train"].images, splits["test"].images
            desc = ("binarized MNIST with the fixed (Larochelle & Murray) binarization: train 50k split, "
                    "test 10k split (the paper binarizes dynamically)")
            dynamic, source = False, "binarized_mnist"
        else:
            tr, te = load_mnist(root)
            train = tr.images
            rng = np.random.default_rng(cfg.test_binarization_seed)
            test = (rng.random(te.images.shape) < te.images / 255.0).astype(np.uint8)
            desc = (f"dynamically binarized MNIST: train {tr.description}, grey levels resampled as Bernoulli "
                    f"pixels at every visit; test {te.description}, binarized once with numpy "
                    f"default_rng({cfg.test_binarization_seed})")
            dynamic, source = True, "mnist"
    except DatasetMissing as exc:
        if not cfg.allow_synthetic:
            raise
        train, test = _synthetic_digits(2048, 1), _synthetic_digits(256, 2)
        desc = f"synthetic random binary bars (smoke fallback; MNIST missing: {exc})"
        dynamic, source = False, "synthetic"
    if cfg.train_images:
        train = train[: cfg.train_images]
    train_t = torch.from_numpy(np.array(train, copy=True)).reshape(len(train), 784)
    test_t = torch.from_numpy(np.ascontiguousarray(test[:n_test])).float().reshape(-1, 1, 28, 28)
    return Data(train_t, ctx.seal(test_t, "MNIST test images"), dynamic, desc, source)


def _synthetic_digits(n: int, seed: int) -> np.ndarray:
    """Binary images of one horizontal and one vertical bar at random places (smoke fallback)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    for img, r, c in zip(x, rng.integers(4, 24, n), rng.integers(4, 24, n)):
        img[r - 1:r + 2, 4:24] = 1
        img[4:24, c - 1:c + 2] = 1
    return x


class BatchStream:
    """Global batches drawn identically on every rank; each rank keeps its rows ``rank::world``.

    Epochs are seeded permutations of the training set (the tail that does not fill a
    batch is dropped); dynamic binarization uses uniform noise from the same shared
    generator, so a 2-process run sees exactly the binary images a 1-process run sees.
    """

    def __init__(self, data: Data, global_batch: int, gen: torch.Generator, ctx: RunContext):
        self.data, self.batch, self.gen = data, global_batch, gen
        self.rows = torch.tensor(list(ctx.shard(global_batch)), dtype=torch.long)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def indices(self) -> torch.Tensor:
        """The global batch's training-set indices (B,), advancing the shared stream."""
        if self.pos + self.batch > len(self.perm):
            self.perm = torch.randperm(len(self.data.train), generator=self.gen)
            self.pos = 0
            if len(self.perm) < self.batch:
                raise ConfigError(f"nvae: batch_size {self.batch} exceeds the {len(self.perm)} training images")
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return idx

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(this rank's images (b, 1, 28, 28) float {0,1}, their training-set indices (b,))."""
        idx = self.indices()
        pixels = self.data.train[idx]
        if self.data.dynamic:
            noise = torch.rand(pixels.shape, generator=self.gen)  # drawn for the whole global batch
            x = (noise * 255.0 < pixels.float()).float()  # P(pixel = 1) = grey / 255
        else:
            x = pixels.float()
        return x[self.rows].reshape(-1, 1, 28, 28), idx[self.rows]

    def state(self) -> dict:
        return {"perm": self.perm.clone(), "pos": self.pos}

    def load(self, state: dict) -> None:
        self.perm, self.pos = state["perm"], state["pos"]
