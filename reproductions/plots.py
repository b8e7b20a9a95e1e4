"""PNG curves from ``metrics.jsonl``: one panel per numeric metric, x = step.

Generic on purpose: any key an experiment logs gets a panel. Rows that carry string
fields (``arm="dropout"``, ``split="dev"``) or a ``seed`` are drawn as separate
labelled lines, so a four-arm, five-seed experiment plots without extra code.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

SKIP = {"step", "time_s", "epoch"}  # counters, not measurements
MAX_PANELS = 12
MAX_LINES = 24


def read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except ValueError:  # a line cut by a kill: skip it, keep the rest
                    continue
    return rows


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def series(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{metric: {line label: [(step, value)]}} from metrics.jsonl rows."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        label = ", ".join(f"{k}={v}" for k, v in row.items()
                          if k not in SKIP and (isinstance(v, str) or k == "seed"))
        step = row.get("step", 0)
        if not _is_number(step):
            continue
        for key, value in row.items():
            if key in SKIP or key == "seed" or not _is_number(value):
                continue
            out[key][label].append((float(step), float(value)))
    return {k: _shared_axis(dict(v)) for k, v in out.items()}


def _shared_axis(lines: dict[str, list[tuple[float, float]]]) -> dict[str, list[tuple[float, float]]]:
    """One line per seed on a shared step axis: an experiment that numbers its steps across runs
    (run 2 starts where run 1 ended) has each line moved back so that all lines start together."""
    if len(lines) < 2:
        return lines
    first = min(points[0][0] for points in lines.values() if points)
    return {label: [(x - (points[0][0] - first), y) for x, y in points] for label, points in lines.items()}


def _save(fig, png_path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path


def plot_metrics(metrics_path: Path, png_path: Path, title: str = "") -> Path | None:
    """Draw the curves; None when there is nothing numeric to draw."""
    data = series(read_metrics(metrics_path))
    if not data:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt

    keys = list(data)[:MAX_PANELS]
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        lines = list(data[key].items())[:MAX_LINES]
        for label, points in lines:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o" if len(points) < 20 else None, markersize=3, linewidth=1.2,
                    label=label or None)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if any(label for label, _ in lines) and len(lines) <= 10:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, png_path)


def forest_plot(rows: list[dict[str, Any]], png_path: Path, title: str = "") -> Path | None:
    """Difference claims as a forest plot: estimate and adjusted interval per claim, the paper's
    figure (a diamond, when it gives one) and the zero line. `rows`: {label, estimate, ci, paper, unit,
    verdict}. None when there is no difference claim to draw."""
    rows = [r for r in rows if r.get("estimate") is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colour = {"reproduced": "#1b7837", "contradicted": "#b2182b"}
    fig, ax = plt.subplots(figsize=(7.2, 0.7 + 0.55 * len(rows)))
    labelled = False
    for i, row in enumerate(reversed(rows)):
        c = colour.get(row.get("verdict"), "#555555")
        if row.get("ci"):
            ax.plot(row["ci"], [i, i], color=c, linewidth=2)
        ax.plot([row["estimate"]], [i], "o", color=c, markersize=6)
        if row.get("paper") is not None:
            ax.plot([row["paper"]], [i], "D", color="none", markeredgecolor="#2166ac", markersize=7,
                    label=None if labelled else "paper")
            labelled = True
    ax.axvline(0, color="#888888", linewidth=1, linestyle="--")
    ax.set_yticks(range(len(rows)), [r["label"] for r in reversed(rows)], fontsize=8)
    units = {r.get("unit") for r in rows} - {None, ""}
    ax.set_xlabel("difference" + (f" ({units.pop()})" if len(units) == 1 else ""), fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    if any(r.get("paper") is not None for r in rows):
        ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, png_path)
