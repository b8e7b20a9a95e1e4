"""The run record: ``run.json`` beside ``metrics.jsonl``, the checkpoint and the plots.

run.json is the one file the catalog imports. It is rewritten atomically at the start
(status ``running``), after each seed, and at the end (``completed`` | ``failed`` |
``interrupted``), so a killed run still leaves a readable record and ``--resume``
finds it.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

RUN_FILE = "run.json"
FINISHED = "completed"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def folder_stamp(t: datetime) -> str:
    """``20240501T120304Z``: sortable, no characters a filesystem dislikes."""
    return t.strftime("%Y%m%dT%H%M%SZ")


def versions() -> dict[str, Any]:
    import numpy
    import torch

    cuda = torch.version.cuda
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cuda": cuda,
        "cudnn": torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(),
    }


def git_commit(cwd: Path | None = None) -> dict[str, Any] | None:
    """The checkout's commit and whether it has local changes, or None outside git."""
    root = cwd or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write then rename, so a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _clean(value: Any) -> Any:
    """JSON-safe copy: tensors and numpy scalars become numbers, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return str(value)


# ---------------------------------------------------------------- metrics over seeds

def aggregate_seeds(per_seed: dict[int, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(mean, std) of every numeric metric over seeds; non-numeric values kept from the first seed.

    Nested dicts are aggregated key by key, so ``{"arm": {"accuracy": x}}`` works too.
    """
    seeds = list(per_seed.values())
    if not seeds:
        return {}, {}
    if len(seeds) == 1:
        return dict(seeds[0]), {}

    def walk(values: list[Any]) -> tuple[Any, Any]:
        if all(isinstance(v, dict) for v in values):
            means, stds = {}, {}
            for key in values[0]:
                m, s = walk([v.get(key) for v in values])
                means[key] = m
                if s is not None:
                    stds[key] = s
            return means, (stds or None)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return statistics.fmean(values), statistics.stdev(values)
        return values[0], None

    means, stds = walk(seeds)
    return means, stds or {}


# ---------------------------------------------------------------- the paper beside ours

def lookup(metrics: dict[str, Any], key: str) -> float | None:
    """A metric by dotted path (``"scheduled.accuracy"``); a ``{"mean": ...}`` dict gives its mean.

    A key not found at the top is looked for under ``arms`` too, so a card may name an arm's
    metric either way (``"dropout.accuracy"`` or ``"arms.dropout.accuracy"``). The one lookup
    for the runner, the claims, the terminal and the site."""
    found = _walk(metrics, key)
    if found is None and isinstance(metrics.get("arms"), dict):
        found = _walk(metrics["arms"], key)
    return found


def _walk(metrics: dict[str, Any], key: str) -> float | None:
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict) and "mean" in value:
        value = value["mean"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def compare_claims(claims: Any, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each claim of the card with our number for the same metric key (None when not measured)."""
    rows = []
    for claim in claims:
        ours = lookup(metrics, claim.metric)
        rows.append({
            "metric": claim.metric, "paper": claim.value, "ours": ours, "unit": claim.unit,
            "source": claim.source, "note": claim.note, "higher_is_better": claim.higher_is_better,
            "difference": None if ours is None else ours - claim.value,
        })
    return rows


def leaves(metrics: dict[str, Any], prefix: str = "", depth: int = 3) -> Iterator[tuple[str, float]]:
    """(dotted key, number) for every numeric leaf; a ``{"mean": ...}`` dict is one leaf (its mean)."""
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "mean" in value:
            value = value["mean"]
        if isinstance(value, dict) and depth > 1:
            yield from leaves(value, path + ".", depth - 1)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path, float(value)


def headline(metrics: dict[str, Any], limit: int = 4, prefer: Iterable[str] = ()) -> dict[str, float]:
    """A few numbers that summarise a run: the `prefer` keys (the paper's claims) first, then the
    numeric leaves in the order the experiment returned them."""
    out: dict[str, float] = {}
    for key in prefer:
        value = lookup(metrics, key)
        if value is not None:
            out[key] = value
    for key, value in leaves(metrics):
        if len(out) >= limit:
            break
        out.setdefault(key, value)
    return out


# ---------------------------------------------------------------- finding runs

def run_dirs(root: Path, name: str | None = None) -> list[Path]:
    """Run folders (those holding run.json) under `root`, oldest first by folder name."""
    base = root / name if name else root
    if not base.is_dir():
        return []
    return sorted((p.parent for p in base.rglob(RUN_FILE)), key=lambda p: (p.name, str(p)))


def latest_unfinished(root: Path, name: str) -> Path | None:
    """The newest run of `name` under `root` whose status is not ``completed``."""
    for run_dir in reversed(run_dirs(root, name)):
        try:
            status = read_json(run_dir / RUN_FILE).get("status")
        except (OSError, ValueError):
            continue
        if status != FINISHED:
            return run_dir
    return None

