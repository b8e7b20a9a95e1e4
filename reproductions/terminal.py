"""Text for the terminal: the progress bar during a run, the summary and error line after it."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from reproductions import record, report
from reproductions.registry import get
from reproductions.run_request import RunResult


@contextlib.contextmanager
def rich_progress(total: int, desc: str = "") -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr with count, elapsed time and ETA."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(desc or "run", total=total)
        yield lambda n=1: bar.advance(task, n)


def summary_lines(result: RunResult) -> list[str]:
    """What a CLI prints after a run: status, headline metrics, the paper beside ours."""
    rec = result.record
    if rec.get("node_rank"):  # a follower node: the record and the metrics are on node 0
        return [f"{rec['name']} {rec['preset']}: node {rec['node_rank']} {result.status} in "
                f"{rec.get('duration_s') or 0:.1f}s; node 0 wrote the run record"]
    lines = [f"{rec['name']} {rec['preset']}: {result.status} in {rec.get('duration_s') or 0:.1f}s -> {result.run_dir}"]
    rows = rec.get("claims") or []
    labels = card_labels(rec.get("name"))
    if rec.get("exploratory"):
        lines.append(f"  exploratory: {rec['exploratory']}; its claims feed no verdict")
    for row in rows:
        p_holm = (((rec.get("analysis") or {}).get("per_claim") or {}).get(row["id"]) or {}).get("p_holm")
        lines.append("  " + report.claim_sentence(row, labels.get(row["id"]) or report.claim_label(row, labels),
                                                   p_holm))
    if not rows and (rec.get("analysis") or {}).get("status") not in (None, "computed"):
        lines.append(f"  {rec['analysis']['status']}")
    for key, value in record.headline(result.metrics, limit=6).items():
        std = record.lookup(rec.get("metrics_std") or {}, key)
        if std is None:  # an experiment that loops its seeds reports {"mean", "std"} itself
            std = record.lookup(result.metrics, key + ".std")
        lines.append(f"  {report.label_of(key, labels)} = {report.num(value)}"
                     + (f" ± {report.num(std, 2)}" if std is not None else ""))
    for key, value in (rec.get("notes") or {}).items():
        lines.append(f"  note {key}: {value}")
    if result.status == "interrupted":
        lines.append(f"  resume with: --resume-from {result.run_dir}")
    return lines


def card_labels(name: str | None) -> dict[str, str]:
    """The card's reader names of claims, arms and metrics (empty when the card is gone)."""
    try:
        card = get(str(name)).card
    except Exception:
        return {}
    return {**card.labels, **{c.key: c.label for c in card.claims if c.label}}


def error_line(result: RunResult) -> str | None:
    if result.status == "failed":
        return result.error or "failed"
    if result.status == "interrupted":
        return f"interrupted; run folder {result.run_dir} (status: interrupted)"
    return None
