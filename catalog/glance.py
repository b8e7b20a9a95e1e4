"""The "reproductions at a glance" table of README.md, written from the committed run records.

Each reproduction's newest completed, pre-registered run of one preset under ``results/`` gives
one row per claim: the claim, the paper's figure, ours with its interval (run.json's ``claims``,
as the site shows them) and the verdict. The
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

from reproductions.report import claim_label, claim_sentence, paper_text

START, END = "<!-- glance:start -->", "<!-- glance:end -->"
HEADER = ("| reproduction | claim | paper | ours (interval) | verdict |\n"
          "|---|---|---|---|---|")


def _exploratory(record: dict[str, Any]) -> bool:
    if "exploratory" in record:
        return bool(record["exploratory"])
    return any(t in ("--set", "--seed", "--seeds") for t in record.get("command") or [])


def latest_run(results: Path, name: str, preset: str) -> tuple[Path, dict[str, Any]] | None:
    """The newest completed run of `name` with `preset` under `results` that may feed a verdict: the
    preset's pre-registered seeds and config (no ``--set``/``--seed(s)``), when there is one; a side
    experiment never replaces the preset's run."""
    found = []
    for run_dir in sorted((results / name).glob("*/"), reverse=True):  # run folders sort by time
        try:
            record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("status") == "completed" and record.get("preset") == preset:
            found.append((run_dir, record))
    plain = [run for run in found if not _exploratory(run[1])]
    return (plain or found or [None])[0]


def _labels(card: Any) -> dict[str, str]:
    return {**card.labels, **{c.key: c.label for c in card.claims if c.label}}


def claim_rows(name: str, card: Any, record: dict[str, Any], where: str) -> list[str]:
    """One table row per claim of the run: claim, the paper's figure, ours with its interval, the verdict."""
    labels = _labels(card)
    per_claim = (record.get("analysis") or {}).get("per_claim") or {}
    rows = []
    for i, claim in enumerate(record.get("claims") or []):
        head = f"`{name}` ({card.paper_id}), `{where}`" if i == 0 else ""
        label = labels.get(claim["id"]) or claim_label(claim, labels)
        sentence = claim_sentence(claim, "", (per_claim.get(claim["id"]) or {}).get("p_holm"))
        ours, _, tail = sentence[2:].partition(" — ")
        paper = paper_text(claim)
        where_paper = (claim.get("paper") or {}).get("where") or ""
        if where_paper:
            paper += f" ({where_paper.split(' (')[0]})"
        verdict = f"**{claim.get('verdict') or '—'}**"
        if "; Holm-adjusted p = " in tail:  # the step-down test rejects where the joint interval still touches 0
            verdict += " (Holm-adjusted p = " + tail.split("; Holm-adjusted p = ")[1].split(",")[0] + ")"
        rows.append(f"| {head} | {label} | {paper} | {ours} | {verdict} |")
    if not rows:
        status = (record.get("analysis") or {}).get("status") or "no claims judged"
        rows.append(f"| `{name}` ({card.paper_id}), `{where}` | — | — | {status} | — |")
    return rows


def glance_rows(results: Path, preset: str = "cpu") -> list[str]:
    from reproductions.registry import discover

    rows = []
    for name, entry in sorted(discover().items()):
        found = latest_run(results, name, preset)
        if found is None:
            rows.append(f"| `{name}` ({entry.card.paper_id}) | — | — | no `{preset}` run committed | — |")
            continue
        run_dir, record = found
        rows.extend(claim_rows(name, entry.card, record, f"{results.name}/{name}/{run_dir.name}"))
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
