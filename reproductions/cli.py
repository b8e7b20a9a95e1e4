"""``python -m reproductions``: the runner's own command line (torch alone, no catalog).

    python -m reproductions list [--json]
    python -m reproductions analyse RUN_DIR... [--json]
    python -m reproductions campaign [--preset gpu] [--out results] [--only NAME...] [--force]
        [--budget-min 12] [--data-dir DIR] [--device ...] [--no-progress] [--json]
    python -m reproductions run NAME [--preset smoke|cpu|gpu] [--device auto|cpu|cuda|mps]
        [--seed N] [--seeds N] [--set key=value]... [--data-dir DIR] [--out DIR]
        [--resume | --resume-from RUN_DIR] [--nproc N] [--no-progress]
        [--nnodes N --node-rank K --rdzv-endpoint HOST:PORT] [--print-launch]

Exit codes: 0 completed, 1 failed (one line on stderr: the error, or for a missing
dataset which files to put where), 2 usage error (unknown name, bad --set), 130
interrupted. ``digest run`` (the catalog CLI) calls the same library and also records
the run in the catalog.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reproductions.devices import DEVICE_CHOICES
from reproductions.errors import RunnerError
from reproductions.options import (add_argparse_options, add_campaign_argparse_options, campaign_from_options,
                                   request_from_options)

PROG = "python -m reproductions"


def card_summary(entry: Any) -> dict[str, Any]:
    card = entry.card
    return {"name": card.name, "paper_id": card.paper_id, "title": card.title, "authors": card.authors,
            "presets": list(card.presets), "measures": card.measures, "datasets": list(card.datasets),
            "claims": [{"id": c.key, "kind": c.kind, "statement": c.statement, "metric": c.metric,
                        "arms": list(c.arms), "value": c.value, "unit": c.unit, "source": c.source}
                       for c in card.claims]}


def list_lines(entries: dict[str, Any]) -> list[str]:
    if not entries:
        return ["no reproductions found"]
    lines = []
    for entry in entries.values():
        c = entry.card
        lines.append(f"{c.name}  arXiv:{c.paper_id}  {c.title}")
        lines.append(f"    presets: {', '.join(c.presets)}; measures: {' '.join(c.measures.split())}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Run paper reproductions and record the runs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="list the reproductions")
    p_list.add_argument("--json", action="store_true", help="one JSON array for scripts")

    p_run = sub.add_parser("run", help="run one reproduction")
    add_run_options(p_run)

    p_campaign = sub.add_parser(
        "campaign", help="run every reproduction's preset back to back, then print one table",
        description="Print the planned time per reproduction (Card.budget_s), refuse a plan over --budget-min "
                    "or with unknown times unless --force, run each preset into OUT/NAME/<time>/, and end with "
                    "one table (headline metric, paper, ours, wall time, device). Run the same command again "
                    "after an interruption: finished reproductions are skipped, the interrupted one resumes "
                    "(state in OUT/campaign.json).")
    add_campaign_argparse_options(p_campaign)
    p_campaign.add_argument("--json", action="store_true", help="print the table as a JSON array")

    p_analyse = sub.add_parser(
        "analyse", help="recompute the claims and verdicts of finished runs from their stored per-seed values",
        description="Rewrite each RUN_DIR/run.json's claims (paired statistics over seeds, Holm across a card's "
                    "difference claims) without training; prints one sentence per claim.")
    p_analyse.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p_analyse.add_argument("--json", action="store_true", help="print the claims as JSON")

    p_worker = sub.add_parser("_worker", help=argparse.SUPPRESS)  # one torchrun process
    p_worker.add_argument("run_dir", type=Path)
    p_worker.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p_worker.add_argument("--resume", action="store_true")
    p_worker.add_argument("--no-progress", action="store_true")
    p_worker.add_argument("--finish", action="store_true")  # rank 0 writes run.json (a --print-launch line)
    return parser


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="reproduction name (see `list`)")
    add_argparse_options(p)


def campaign_main(args: argparse.Namespace) -> int:
    from reproductions.campaign import run_campaign, table_lines

    result = run_campaign(**campaign_from_options(vars(args)))
    print(json.dumps(result.rows, indent=2, ensure_ascii=False) if args.json else "\n".join(table_lines(result.rows)))
    if result.status == "interrupted":
        return _error(f"interrupted; run the same command again to resume ({result.state_path})", 130)
    if result.status == "failed":
        failed = [r["reproduction"] for r in result.rows if r["status"] == "failed"]
        return _error(f"failed: {', '.join(failed)} (see their run.json); run again to retry them", 1)
    return 0


def analyse_lines(run_dir: Path, rec: dict[str, Any]) -> list[str]:
    from reproductions.report import claim_label, claim_sentence
    from reproductions.terminal import card_labels

    labels = card_labels(rec.get("name"))
    per_claim = (rec.get("analysis") or {}).get("per_claim") or {}
    lines = [f"{run_dir}: {len(rec.get('claims') or [])} claim(s)"
             + (f"; exploratory: {rec['exploratory']}" if rec.get("exploratory") else "")]
    for row in rec.get("claims") or []:
        label = labels.get(row["id"]) or claim_label(row, labels)
        lines.append("  " + claim_sentence(row, label, (per_claim.get(row["id"]) or {}).get("p_holm")))
    return lines


def analyse_main(args: argparse.Namespace) -> int:
    from reproductions.claims import analyse_dir

    out = []
    for run_dir in args.run_dirs:
        rec = analyse_dir(run_dir)
        if (rec.get("analysis") or {}).get("status") != "computed":
            return _error(f"{run_dir}: {rec['analysis']['status']} (install scipy)", 1)
        out.append({"run_dir": str(run_dir), "claims": rec["claims"]} if args.json else "\n".join(analyse_lines(run_dir, rec)))
    print(json.dumps(out, indent=2, ensure_ascii=False) if args.json else "\n".join(out))
    return 0


def _error(message: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            from reproductions.registry import discover

            entries = discover()
            if args.json:
                print(json.dumps([card_summary(e) for e in entries.values()], indent=2, ensure_ascii=False))
            else:
                print("\n".join(list_lines(entries)))
            return 0
        if args.command == "campaign":
            return campaign_main(args)
        if args.command == "analyse":
            return analyse_main(args)
        if args.command == "_worker":
            from reproductions.torchrun import worker_main

            return worker_main(args.run_dir, args.device, args.resume, not args.no_progress, args.finish)
        from reproductions.runner import run
        from reproductions.terminal import error_line, summary_lines
        from reproductions.torchrun import prepare_launch

        request = request_from_options(args.name, vars(args))
        if args.print_launch:
            print(prepare_launch(request))
            return 0
        result = run(request)
        print("\n".join(summary_lines(result)))
        line = error_line(result)
        return _error(line, result.exit_code) if line else 0
    except RunnerError as exc:
        return _error(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _error("interrupted", 130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
