"""Dataset loaders for the reproductions.

Real data is read from the data dir (``--data-dir``, env ``DIGEST_DATA``, else a
per-user cache folder, with ``../shared/data`` beside a checkout as a last resort).
A missing dataset raises `DatasetMissing`, whose message says which files to put
where. Only the smoke preset may fall back to synthetic data, and it must say so
(``ctx.note("data", "synthetic")``).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "DIGEST_DATA"


class DatasetMissing(FileNotFoundError):
    """A dataset's files are not in the data dir; the message says what to put where."""


def default_data_dir() -> Path:
    """``$DIGEST_DATA``, else ``../shared/data`` beside the checkout if present, else the user cache."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    beside_checkout = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    if beside_checkout.is_dir():
        return beside_checkout
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "paper-digest" / "data"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def _require(root: Path, dataset: str, files: list[str]) -> list[Path]:
    paths = [root / dataset / f for f in files]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetMissing(
            f"dataset {dataset!r} not found: put {', '.join(files)} in {root / dataset} "
            f"(missing: {', '.join(p.name for p in missing)}); set --data-dir or ${DATA_ENV}"
        )
    return paths


# ---------------------------------------------------------------- MNIST (IDX, gzipped)

def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain): magic, dims, then big-endian uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@dataclass
class ImageSplit:
    images: np.ndarray  # (N, 28, 28) uint8 (grey) or {0,1}
    labels: np.ndarray | None  # (N,) int64, None when unlabelled
    description: str  # what this split really is, for run.json


def load_mnist(root: Path, *, test_holdout: int = 2000, seed: int = 1234) -> tuple[ImageSplit, ImageSplit]:
    """Labelled MNIST as (train, test).

    With ``train-images-idx3-ubyte.gz`` and its labels present (``../shared/data`` has all
    four canonical files) this is the standard 60k/10k split. Without them the 10k test
    set is split by a fixed permutation into ``10000 - test_holdout`` train and
    ``test_holdout`` test images; the description says which one was used, and callers
    record it in run.json.
    """
    d = root / "mnist"
    test_x, test_y = _require(root, "mnist", ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
    xt, yt = _read_idx(test_x), _read_idx(test_y).astype(np.int64)
    train_x, train_y = d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte.gz"
    if train_x.is_file() and train_y.is_file():
        return (ImageSplit(_read_idx(train_x), _read_idx(train_y).astype(np.int64), "MNIST train (60k)"),
                ImageSplit(xt, yt, "MNIST test (10k)"))
    perm = np.random.default_rng(seed).permutation(len(xt))
    tr, te = perm[test_holdout:], perm[:test_holdout]
    why = f"MNIST t10k split by fixed permutation (seed {seed}): {len(tr)} train / {len(te)} test"
    return ImageSplit(xt[tr], yt[tr], why + " [train part]"), ImageSplit(xt[te], yt[te], why + " [test part]")


def load_binarized_mnist(root: Path) -> dict[str, ImageSplit]:
    """Fixed (Larochelle & Murray) binarized MNIST: train 50k / valid 10k / test 10k, values {0,1}."""
    (path,) = _require(root, "binarized_mnist", ["binarized_mnist.npz"])
    with np.load(path) as z:
        return {k: ImageSplit(z[k].reshape(-1, 28, 28).astype(np.uint8), None,
                              f"binarized MNIST (fixed binarization) {k}") for k in ("train", "valid", "test")}


# ---------------------------------------------------------------- SST-2 (GLUE TSV)

def load_sst2(root: Path) -> dict[str, list[tuple[str, int]]]:
    """GLUE SST-2 as {"train": [(sentence, label)], "dev": [...]} (dev is GLUE's labelled test stand-in)."""
    train, dev = _require(root, "sst2", ["train.tsv", "dev.tsv"])
    return {"train": _read_tsv(train), "dev": _read_tsv(dev)}


def _read_tsv(path: Path) -> list[tuple[str, int]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["sentence", "label"]:
            raise ValueError(f"{path}: expected header 'sentence<TAB>label', got {header!r}")
        for line in f:
            sentence, _, label = line.rstrip("\n").rpartition("\t")
            if sentence:
                rows.append((sentence.strip(), int(label)))
    return rows


# ---------------------------------------------------------------- PTB (Mikolov LM split)

def load_ptb(root: Path) -> dict[str, list[list[str]]]:
    """PTB as {"train"|"valid"|"test": [sentence tokens]} (no <eos>: callers add it)."""
    paths = _require(root, "ptb", ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"])
    return {name: [line.split() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
            for name, p in zip(("train", "valid", "test"), paths)}
