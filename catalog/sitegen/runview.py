"""A run record (run.json as stored in `Run.metrics`) shaped into tables a reproduction page can show.

Reproductions report their metrics in a few shapes: flat numbers (``{"nll_nats": 129.3}``),
arms of an experiment (``{"none": {...}, "dropout": {...}}`` or the same under ``"arms"``),
and statistics over seeds (``{"mean": .., "std": .., "per_seed": [..]}``). `metrics_view`
turns any of them into one table row per arm (mean ± std in a cell) plus the values that
belong to the run as a whole, and keeps the per-seed values for a table shown on demand.
`claims_view` puts the paper's number beside ours. Nothing here returns a raw dict: a page
must never show a Python dict dump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from reproductions.record import lookup
from reproductions.report import num

MAX_LIST = 8  # a list metric longer than this is shortened in its cell


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any) -> str:
    """A number with 4 significant digits, anything else as short plain text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value) if len(str(abs(value)).rstrip("0")) <= 4 else num(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return num(value, 4, trim=True)
    if isinstance(value, (list, tuple)):
        items = [fmt(v) for v in value[:MAX_LIST]]
        return ", ".join(items) + (f", … ({len(value)} values)" if len(value) > MAX_LIST else "")
    return str(value)


def is_stat(value: Any) -> bool:
    return isinstance(value, dict) and is_number(value.get("mean"))


@dataclass
class Cell:
    text: str
    seeds: list[Any] = field(default_factory=list)


def cell(value: Any, std: Any = None, seeds: Iterable[Any] = ()) -> Cell:
    """Mean with 3 significant digits, its spread with 2 (a reader compares arms, not digits)."""
    if is_stat(value):
        text = num(value["mean"])
        if is_number(value.get("std")):
            text += f" ± {num(value['std'], 2)}"
        elif isinstance(value.get("ci95"), (list, tuple)) and len(value["ci95"]) == 2:
            text += f" (95% CI {num(value['ci95'][0], 2)} to {num(value['ci95'][1], 2)})"
        return Cell(text, list(value.get("per_seed") or []))
    text = num(value) if is_number(value) else fmt(value)
    if is_number(value) and is_number(std):
        text += f" ± {num(std, 2)}"
    return Cell(text, list(seeds))


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts that are not statistics become dotted names: {"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not is_stat(value):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _is_arm(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and not is_stat(value) and any(
        is_number(v) or is_stat(v) for v in value.values())


@dataclass
class MetricsView:
    columns: list[str] = field(default_factory=list)
    arms: list[tuple[str, list[Cell]]] = field(default_factory=list)  # one row per arm
    overall: list[tuple[str, Cell]] = field(default_factory=list)  # values of the run as a whole
    per_seed: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (arm, metric, values)
    seeds: list[Any] = field(default_factory=list)


def record_parts(stored: dict[str, Any]) -> dict[str, Any]:
    """`Run.metrics` as `catalog.runs.import_run` stores it, or a bare metrics dict from older rows."""
    if isinstance(stored.get("metrics"), dict) and ("claims" in stored or "std" in stored or "by_seed" in stored):
        return stored
    return {"metrics": stored, "std": {}, "by_seed": {}, "claims": [], "seeds": None}


def metrics_view(stored: dict[str, Any]) -> MetricsView:
    parts = record_parts(stored or {})
    metrics = dict(parts.get("metrics") or {})
    std = parts.get("std") or {}
    by_seed = parts.get("by_seed") or {}
    view = MetricsView(seeds=list(parts.get("seeds") or metrics.get("seeds") or []))
    metrics.pop("seeds", None)

    arms_src = metrics.pop("arms") if isinstance(metrics.get("arms"), dict) else None
    if arms_src is None:
        arm_names = [k for k, v in metrics.items() if _is_arm(v)]
        if len(arm_names) >= 2 or (arm_names and len(arm_names) == len(metrics)):
            arms_src = {k: metrics.pop(k) for k in arm_names}
    if arms_src:
        arms = {name: flatten(values) if isinstance(values, dict) else {"value": values}
                for name, values in arms_src.items()}
        for values in arms.values():
            view.columns += [k for k in values if k not in view.columns]
        for name, values in arms.items():
            cells = [cell(values.get(col)) if col in values else Cell("") for col in view.columns]
            view.arms.append((str(name), cells))
            view.per_seed += [(str(name), col, [num(s, 4, trim=True) for s in c.seeds]) for col, c in zip(view.columns, cells)
                              if len(c.seeds) > 1]

    seed_runs = [v for v in by_seed.values() if isinstance(v, dict)] if len(by_seed) > 1 else []
    for name, value in flatten(metrics).items():
        seeds = [flatten(run).get(name) for run in seed_runs]
        c = cell(value, std.get(name), seeds if seeds and all(s is not None for s in seeds) else ())
        view.overall.append((name, c))
        if len(c.seeds) > 1:
            view.per_seed.append(("", name, [num(s, 4, trim=True) for s in c.seeds]))
    return view


def claims_view(card_claims: list[dict[str, Any]], stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The paper's claims with our number beside each: the run's own claims first (run.json has
    `paper`, `ours`, `difference`), then any claim of the card the run did not report, looked up
    among the run's metrics."""
    parts = record_parts(stored or {})
    rows: list[dict[str, Any]] = []
    for claim in parts.get("claims") or []:
        if isinstance(claim, dict) and claim.get("metric"):
            rows.append(_claim_row(claim, claim.get("paper"), claim.get("ours"), claim.get("difference")))
    seen = {row["metric"] for row in rows}
    for claim in card_claims:
        if claim.get("metric") and claim["metric"] not in seen:
            ours = lookup(parts.get("metrics") or {}, claim["metric"])
            rows.append(_claim_row(claim, claim.get("value", claim.get("paper")), ours, None))
    return rows


def _claim_row(claim: dict[str, Any], paper: Any, ours: Any, difference: Any) -> dict[str, Any]:
    if difference is None and is_number(paper) and is_number(ours):
        difference = ours - paper
    note = str(claim.get("note") or "")
    return {"metric": str(claim["metric"]), "paper": fmt(paper), "ours": fmt(ours) if ours is not None else "—",
            "difference": (("+" if is_number(difference) and difference > 0 else "") + fmt(difference))
            if is_number(difference) else "—",
            "unit": str(claim.get("unit") or ""), "better": "higher" if claim.get("higher_is_better", True) else "lower",
            "source": str(claim.get("source") or ""), "note": note}


def shown_run_dir(run_dir: str, roots: Iterable[Path]) -> str:
    """The run folder relative to the first root that holds it (the checkout, the working folder),
    else its last two parts (``<reproduction>/<timestamp>``): never the building machine's absolute path."""
    if not run_dir:
        return ""
    path = Path(run_dir)
    if not path.is_absolute():
        return path.as_posix()
    for root in roots:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return "/".join(path.parts[-2:])
