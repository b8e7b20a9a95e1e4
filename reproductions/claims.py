"""Judge a run's claims from its stored per-seed values: the ``claims`` list of run.json.

`analyse_record` needs only the record and the card's `Claim`s, never the models, so
``python -m reproductions analyse RUN_DIR...`` (and ``digest runs analyse``) recompute every
verdict without training. The numbers come from `reproductions.stats`.

Per-seed values are read, in order, from ``metrics[arm][metric].per_seed`` (experiments that
loop over their seeds), ``metrics_by_seed[seed][arm][metric]`` (the runner's per-seed calls) or,
for a one-seed run, the metric itself; either way aligned with ``rec["seeds"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from reproductions import record, stats
from reproductions.api import Claim

EXPLORATORY = "exploratory"
NOT_MEASURED = "not measured"  # the run left out an arm or metric the claim needs
NOT_COMPUTED = "claims not computed — run analyse"


def per_seed_values(rec: dict[str, Any], path: str) -> list[float] | None:
    """The metric at dotted `path` for each seed of the run, or None when it was not measured."""
    node: Any = rec.get("metrics") or {}
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get("per_seed"), list):
        return [float(v) for v in node["per_seed"]]
    by_seed = rec.get("metrics_by_seed") or {}
    seeds = rec.get("seeds") or []
    if by_seed and all(str(s) in by_seed for s in seeds):
        values = [record.lookup(by_seed[str(s)], path) for s in seeds]
        if all(v is not None for v in values):
            return values  # type: ignore[return-value]
    value = record.lookup(rec.get("metrics") or {}, path)
    if value is not None and len(seeds) <= 1:
        return [value]
    return None


def exploratory_reason(rec: dict[str, Any]) -> str | None:
    """Why a run may not feed a verdict: its seeds or config differ from what the preset fixed.

    The stopping rule: seeds are fixed by the preset before the run. A run started with
    ``--seed``/``--seeds``/``--set`` (more seeds for some arms, a shorter recipe) is exploratory.
    The runner stores this as ``rec["exploratory"]``; older records are judged from their command.
    """
    if "exploratory" in rec:
        return rec["exploratory"]
    command = [str(c) for c in rec.get("command") or []]
    changed = []
    for i, token in enumerate(command):
        if token in ("--seed", "--seeds") and i + 1 < len(command):
            changed.append(f"{token} {command[i + 1]}")
        elif token == "--set" and i + 1 < len(command):
            changed.append(f"--set {command[i + 1]}")
    if not changed:
        return None
    return "not the preset's pre-registered run (" + ", ".join(changed) + ")"


def _paper(claim: Claim) -> dict[str, Any]:
    paper = {"value": claim.value, "unit": claim.unit, "where": claim.source}
    if claim.kind == "value":
        paper["tolerance"] = claim.tolerance
    if claim.note:
        paper["note"] = claim.note
    return paper


def _row(claim: Claim, **numbers: Any) -> dict[str, Any]:
    return {"id": claim.key, "statement": claim.statement, "kind": claim.kind, "metric": claim.metric,
            "arms": list(claim.arms), "direction": claim.direction, "paper": _paper(claim), **numbers}


def analyse_record(rec: dict[str, Any], claims: Sequence[Claim], *, alpha: float = stats.ALPHA,
                   ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the ``claims`` list, the ``analysis`` details: p-values, bootstrap intervals) for one record."""
    level = 1 - alpha
    exploratory = exploratory_reason(rec)
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    tests: dict[str, stats.DifferenceTest] = {}
    for claim in claims:
        paths = claim.paths()
        values = [per_seed_values(rec, p) for p in paths]
        if any(v is None for v in values):  # an arm left out (a shorter exploratory run, say)
            rows.append(_row(claim, estimate=None, ci=None, ci_unadjusted=None, level=level, adjustment="none",
                             n_seeds=0, verdict=NOT_MEASURED))
            continue
        if claim.kind == "difference":
            diffs = stats.paired_differences(values[0], values[1], claim.scale)
            tests[claim.key] = stats.test_difference(diffs, level)
            details[claim.key] = {"per_seed_difference": diffs,
                                  "bootstrap_ci": stats.bootstrap_interval(diffs, level)}
            continue
        xs = [claim.scale * v for v in values[0]]
        estimate = stats.mean(xs)
        ci = stats.t_interval(xs, level)
        bound = None if claim.value is None else claim.value
        if claim.kind == "value":
            verdict = stats.value_verdict(estimate, ci, bound, claim.tolerance, claim.direction)
        else:
            verdict = stats.bound_verdict(xs, bound, claim.direction)
        details[claim.key] = {"per_seed": xs}
        rows.append(_row(claim, estimate=estimate, ci=list(ci) if ci else None,
                         ci_unadjusted=list(ci) if ci else None, level=level, adjustment="none",
                         n_seeds=len(xs), verdict=verdict))
    testable = [k for k, t in tests.items() if t.p is not None]
    adjusted = dict(zip(testable, stats.holm([tests[k].p for k in testable])))
    m = len(testable)
    joint = stats.bonferroni_level(level, m)
    for claim in claims:
        if claim.key not in tests:
            continue
        t = tests[claim.key]
        diffs = details[claim.key]["per_seed_difference"]
        ci = stats.t_interval(diffs, joint) if m else None
        details[claim.key].update(p=t.p, p_holm=adjusted.get(claim.key))
        rows.append(_row(claim, estimate=t.estimate, ci=list(ci) if ci else None,
                         ci_unadjusted=list(t.interval) if t.interval else None, level=level,
                         adjustment=(f"Holm over {m} difference claims (verdict); Bonferroni interval, each at "
                                     f"{100 * joint:.4g}%" if m > 1 else "none (one difference claim)")
                         if t.p is not None else "none (one seed: no interval)",
                         n_seeds=t.n, verdict=stats.difference_verdict(t.estimate, adjusted.get(claim.key),
                                                                       claim.direction, alpha)))
    order = {c.key: i for i, c in enumerate(claims)}
    rows.sort(key=lambda r: order[r["id"]])
    if exploratory:
        for row in rows:
            if row["verdict"] != NOT_MEASURED:
                row["verdict"] = EXPLORATORY
    details = {"alpha": alpha, "method": "paired t over seeds; Holm across the card's difference claims; "
                                         "percentile bootstrap over seeds as a check",
               "exploratory": exploratory, "per_claim": details}
    return rows, details


def analyse_into(rec: dict[str, Any], claims: Sequence[Claim]) -> dict[str, Any]:
    """Write ``claims``, ``analysis`` and ``exploratory`` into `rec`; without scipy say so instead."""
    rec["exploratory"] = exploratory_reason(rec)
    try:
        rows, details = analyse_record(rec, claims)
    except ImportError:  # a torch-only machine: the run is kept, the verdicts come later
        rec["claims"], rec["analysis"] = [], {"status": NOT_COMPUTED}
        return rec
    rec["claims"], rec["analysis"] = rows, {"status": "computed", **details}
    return rec


FOREST_FILE = "forest.png"


def forest_rows(rec: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The difference claims of a record as rows for `plots.forest_plot`."""
    from reproductions.report import claim_label

    return [{"label": labels.get(c["id"]) or claim_label(c, labels), "estimate": c["estimate"], "ci": c.get("ci"),
             "paper": (c.get("paper") or {}).get("value"), "unit": (c.get("paper") or {}).get("unit"),
             "verdict": c.get("verdict")} for c in rec.get("claims") or []
            if c.get("kind") == "difference" and c.get("estimate") is not None]


def draw_figures(run_dir: Path, rec: dict[str, Any], card: Any) -> None:
    """forest.png of the difference claims and curves.png from metrics.jsonl (one line per seed on a
    shared step axis); listed in the record's artefacts. A plot never costs the record."""
    from reproductions import plots

    labels = {**card.labels, **{c.key: c.label for c in card.claims if c.label}}
    made = []
    try:
        if plots.forest_plot(forest_rows(rec, labels), Path(run_dir) / FOREST_FILE,
                             title=f"{card.name}: differences, adjusted intervals"):
            made.append(FOREST_FILE)
        if plots.plot_metrics(Path(run_dir) / "metrics.jsonl", Path(run_dir) / "curves.png",
                              title=f"{card.name} ({rec.get('preset')})"):
            made.append("curves.png")
    except Exception as exc:  # matplotlib missing or a bad metrics file
        rec.setdefault("notes", {})["plot_error"] = f"{type(exc).__name__}: {exc}"
    rec["artefacts"] = sorted(set(rec.get("artefacts") or []) | set(made))


def analyse_dir(run_dir: Path, entries: dict[str, Any] | None = None) -> dict[str, Any]:
    """Re-analyse one run folder in place (its run.json) with its reproduction's card; the record."""
    from reproductions.errors import RunnerUsageError
    from reproductions.registry import get

    path = Path(run_dir) / record.RUN_FILE
    if not path.is_file():
        raise RunnerUsageError(f"{run_dir}: no {record.RUN_FILE} there")
    try:
        rec = record.read_json(path)
    except ValueError as exc:
        raise RunnerUsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(rec, dict) or not rec.get("name"):
        raise RunnerUsageError(f"{path}: not a run record (no name)")
    card = get(rec["name"], entries).card
    rec = analyse_into(rec, card.claims)
    draw_figures(Path(run_dir), rec, card)
    record.write_json(path, rec)
    return rec
