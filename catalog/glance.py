"""The "reproductions at a glance" table of README.md, written from the committed run records.

Each reproduction's newest completed run of one preset under ``results/`` gives a row: the
paper's claims beside our numbers (run.json's ``claims``, as the site shows them), the card's
headline metric with its spread over seeds, and the run's seeds, wall time and folder. The
README keeps the table between two markers; ``python -m catalog.glance --write README.md``
rewrites it there, and a test fails when the README and the records disagree, so the numbers
in the README are never typed by hand.

    python -m catalog.glance [--results results] [--preset cpu] [--write README.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from catalog.sitegen.runview import flatten, fmt, is_number, is_stat, lookup

START, END = "<!-- glance:start -->", "<!-- glance:end -->"
HEADER = ("| `digest run …` | paper | the paper reports | we measured | run |\n"
          "|---|---|---|---|---|")


def latest_run(results: Path, name: str, preset: str) -> tuple[Path, dict[str, Any]] | None:
    """The newest completed run of `name` with `preset` under `results`, as the preset stands (no
    ``--set`` overrides) when there is one: a side experiment does not replace the preset's run."""
    found = []
    for run_dir in sorted((results / name).glob("*/"), reverse=True):  # run folders sort by time
        try:
            record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("status") == "completed" and record.get("preset") == preset:
            found.append((run_dir, record))
    plain = [run for run in found if "--set" not in (run[1].get("command") or [])]
    return (plain or found or [None])[0]


def _spread(metrics: dict[str, Any], std: dict[str, Any], name: str) -> tuple[Any, Any]:
    """(mean, std) of a metric: from the runner's seed statistics, or a {mean, std} the experiment wrote."""
    raw = flatten(metrics).get(name)
    if is_stat(raw):
        return raw.get("mean"), raw.get("std")
    return lookup(metrics, name), lookup(std, name)


def _number(value: Any, std: Any = None, unit: str = "") -> str:
    text = fmt(value) + (f" ± {fmt(std)}" if is_number(std) and std else "")
    return f"{text} {unit}".strip()


def _cells(card: Any, record: dict[str, Any]) -> tuple[str, str]:
    """(what the paper reports, what we measured) for one run record."""
    paper, ours = [], []
    for claim in record.get("claims") or []:
        unit = claim.get("unit") or ""
        paper.append(f"{claim['metric']}: {_number(claim.get('paper'), unit=unit)}")
        measured = claim.get("ours")
        ours.append(f"{claim['metric']}: " + (_number(measured, unit=unit) if is_number(measured) else "not measured"))
    metrics, std = record.get("metrics") or {}, record.get("metrics_std") or {}
    claimed = {c.get("metric") for c in record.get("claims") or []}
    if card.headline and card.headline not in claimed:
        value, spread = _spread(metrics, std, card.headline)
        if value is not None:
            ours.append(f"{card.headline}: {_number(value, spread)}")
    return "; ".join(paper) or "—", "; ".join(ours) or "—"


def glance_rows(results: Path, preset: str = "cpu") -> list[str]:
    from reproductions.registry import discover

    rows = []
    for name, entry in sorted(discover().items()):
        found = latest_run(results, name, preset)
        if found is None:
            rows.append(f"| `{name}` | {entry.card.paper_id} | — | no `{preset}` run committed | — |")
            continue
        run_dir, record = found
        paper, ours = _cells(entry.card, record)
        seeds = len(record.get("seeds") or [record.get("seed")])
        minutes = float(record.get("duration_s") or 0.0) / 60
        where = f"{results.name}/{name}/{run_dir.name}"
        rows.append(f"| `{name}` | {entry.card.paper_id} | {paper} | {ours} | "
                    f"{seeds} seed{'s' * (seeds != 1)}, {minutes:.0f} min, `{where}` |")
    return rows


def glance_table(results: Path, preset: str = "cpu") -> str:
    return "\n".join([HEADER, *glance_rows(results, preset)])


def replace_section(text: str, table: str) -> str:
    """`text` with the part between the glance markers replaced by `table`."""
    try:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"the README has no {START} … {END} section") from None
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The reproductions-at-a-glance table from committed run records.")
    ap.add_argument("--results", type=Path, default=Path("results"), help="run records folder (default results)")
    ap.add_argument("--preset", default="cpu", help="which preset's runs (default cpu)")
    ap.add_argument("--write", type=Path, metavar="README", help="rewrite the table in this file's glance section")
    args = ap.parse_args(argv)
    table = glance_table(args.results, args.preset)
    if args.write is None:
        print(table)
        return 0
    try:
        args.write.write_text(replace_section(args.write.read_text(encoding="utf-8"), table), encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
