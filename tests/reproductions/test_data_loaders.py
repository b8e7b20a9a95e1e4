"""The dataset loaders of reproductions/data.py on the real files in ../shared/data.

The expected figures are the ones ../shared/data/README.md records for these files
(split sizes, class counts, pixel statistics, vocabulary), checked there independently
of our loaders; first examples are read straight from the files.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from support.helpers import shared_path
from reproductions.data import (DatasetMissing, load_binarized_mnist, load_mnist, load_ptb, load_sst2,
                                resolve_data_dir)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def data_root() -> Path:
    return shared_path("data")


@pytest.fixture(scope="module")
def mnist(data_root):
    return load_mnist(data_root)


def _raw_idx(path: Path, header: int) -> np.ndarray:
    """The README's own recipe: skip the IDX header, take the bytes."""
    return np.frombuffer(gzip.open(path).read(), np.uint8, offset=header)


# ---------------------------------------------------------------- MNIST

def test_mnist_is_the_standard_60k_10k_split(mnist):
    train, test = mnist
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert np.bincount(train.labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test.labels, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert train.description == "MNIST train (60k)" and test.description == "MNIST test (10k)"


def test_mnist_pixels_match_the_files_and_the_usual_statistics(mnist, data_root):
    train, test = mnist
    raw = _raw_idx(data_root / "mnist" / "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    assert np.array_equal(train.images, raw)
    assert np.array_equal(test.labels, _raw_idx(data_root / "mnist" / "t10k-labels-idx1-ubyte.gz", 8))
    x = train.images / 255.0
    assert round(float(x.mean()), 4) == 0.1307 and round(float(x.std()), 4) == 0.3081
    assert round(float((test.images / 255.0).mean()), 4) == 0.1325


def test_mnist_first_examples(mnist):
    train, test = mnist
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first five training digits
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    first = train.images[0]
    assert first.max() == 255 and first[0].sum() == 0 and first[:, 0].sum() == 0  # ink inside a blank border


def test_mnist_without_the_train_files_splits_the_test_set(data_root, tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "mnist").mkdir(exist_ok=True)
        shutil.copy(data_root / "mnist" / name, tmp_path / "mnist" / name)
    train, test = load_mnist(tmp_path, test_holdout=2000)
    assert len(train.images) == 8000 and len(test.images) == 2000
    assert "t10k split by fixed permutation" in train.description
    together = np.concatenate([train.labels, test.labels])
    assert np.bincount(together, minlength=10).tolist() == MNIST_TEST_COUNTS  # a partition, nothing lost
    again, _ = load_mnist(tmp_path, test_holdout=2000)
    assert np.array_equal(again.images, train.images)  # the split is fixed


def test_mnist_missing_or_broken_files_say_what_to_do(tmp_path):
    with pytest.raises(DatasetMissing, match="t10k-images-idx3-ubyte.gz"):
        load_mnist(tmp_path)
    (tmp_path / "mnist").mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(tmp_path / "mnist" / name, "wb") as f:
            f.write(b"\x00\x00\x0d\x01" + b"\x00" * 16)  # magic of a float IDX, not bytes
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------- binarized MNIST

def test_binarized_mnist_splits_values_and_means(data_root):
    splits = load_binarized_mnist(data_root)
    assert {k: v.images.shape for k, v in splits.items()} == {
        "train": (50000, 28, 28), "valid": (10000, 28, 28), "test": (10000, 28, 28)}
    for name, mean in (("train", 0.1306), ("valid", 0.1311), ("test", 0.1325)):
        images = splits[name].images
        assert images.dtype == np.uint8 and set(np.unique(images).tolist()) == {0, 1}
        assert round(float(images.mean()), 4) == mean
        assert splits[name].labels is None  # the file has no labels; nothing may invent them
        assert "fixed binarization" in splits[name].description


def test_binarized_mnist_test_set_is_the_mnist_test_set_in_class_order(data_root, mnist):
    """The file holds MNIST's test digits sorted by class, original order kept within a class
    (README): image i must be a binarization of the i-th grey test image in that order."""
    _, grey = mnist
    order = np.argsort(grey.labels, kind="stable")
    source = grey.images[order].reshape(-1, 784) / 255.0
    binary = load_binarized_mnist(data_root)["test"].images.reshape(-1, 784).astype(float)

    def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a - a.mean(1, keepdims=True)
        b = b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    paired = correlation(binary, source)
    assert paired.mean() > 0.85 and np.percentile(paired, 1) > 0.6
    transposed = binary.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784)
    assert correlation(transposed, source).mean() < 0.6  # a wrong reshape would not pass the check above
    assert correlation(np.roll(binary, 1, axis=0), source).mean() < 0.6  # nor an off-by-one pairing


# ---------------------------------------------------------------- SST-2

def test_sst2_sizes_labels_and_first_rows(data_root):
    data = load_sst2(data_root)
    train, dev = data["train"], data["dev"]
    assert len(train) == 67349 and len(dev) == 872
    assert sum(label == 0 for _, label in train) == 29780 and sum(label == 1 for _, label in train) == 37569
    assert sum(label == 0 for _, label in dev) == 428 and sum(label == 1 for _, label in dev) == 444
    assert train[0] == ("hide new secretions from the parental units", 0)
    assert dev[0] == ("it 's a charming and often affecting journey .", 1)
    assert all(s == s.strip() and s for s, _ in train)  # GLUE's space before the tab is gone


def test_sst2_wrong_header_is_an_error(tmp_path):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train.tsv").write_text("text\tlabel\nfine .\t1\n", encoding="utf-8")
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\nfine .\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected header"):
        load_sst2(tmp_path)


# ---------------------------------------------------------------- PTB

def test_ptb_sentences_tokens_and_vocabulary(data_root):
    data = load_ptb(data_root)
    assert {k: len(v) for k, v in data.items()} == {"train": 42068, "valid": 3370, "test": 3761}
    vocab = {w for sentence in data["train"] for w in sentence}
    assert len(vocab) == 9999 and "<unk>" in vocab and "N" in vocab  # + <eos> = the standard 10k
    assert {w for split in data.values() for s in split for w in s} == vocab  # valid/test add no word
    assert sum(len(s) for s in data["train"]) == 887521
    assert data["train"][1][:4] == ["pierre", "<unk>", "N", "years"]
    assert data["valid"][0] == "consumers may want to move their telephones a little closer to the tv set".split()
    assert data["test"][0] == ["no", "it", "was", "n't", "black", "monday"]
    assert "<eos>" not in vocab  # callers add it per sentence


def test_missing_dataset_names_files_and_folder(tmp_path):
    with pytest.raises(DatasetMissing) as info:
        load_ptb(tmp_path)
    message = str(info.value)
    assert "ptb.train.txt" in message and str(tmp_path / "ptb") in message and "--data-dir" in message


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGEST_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    assert resolve_data_dir(tmp_path / "x") == tmp_path / "x"
