"""`digest ingest` and `digest demo`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.cli.common import print_json, state, stderr, stdout
from catalog.ingest import IngestStats, ingest_paths


def _summary(stats: IngestStats) -> str:
    return (f"{stats.files} file(s), {stats.sources} source(s): {stats.posts_new} new, "
            f"{stats.posts_updated} updated, {stats.posts_unchanged} unchanged posts; "
            f"{stats.tags} tags, {stats.arxiv_ids} arXiv ids")


def run_ingest(ctx: typer.Context, paths: list[str], fmt: str | None, quiet: bool) -> IngestStats:
    engine = state(ctx).engine()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=stderr, transient=True, disable=quiet or not stderr.is_terminal)
    with progress:
        task = progress.add_task("ingest", total=None)
        stats = ingest_paths(
            engine, paths, format=fmt,
            on_file=lambda p: progress.update(task, description=f"ingest {p.name}"),
            on_progress=lambda n: progress.advance(task, n))
    return stats


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        ctx: typer.Context,
        paths: List[str] = typer.Argument(..., help="Files or folders to read (folders are read recursively)."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Force a reader instead of detecting the format."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Read posts from files or folders into the catalog.

        Each file is one transaction: a bad file is reported in one line and leaves
        the catalog as it was; files before it stay ingested. Re-running on the same
        input changes nothing; edited posts are updated in place.
        """
        stats = run_ingest(ctx, paths, fmt, quiet=as_json)
        if as_json:
            print_json(stats.as_dict())
        else:
            stdout.print(_summary(stats))

    @app.command()
    def demo(
        ctx: typer.Context,
        no_site: bool = typer.Option(False, "--no-site", help="Skip building the static site."),
    ) -> None:
        """Ingest the bundled sample corpus, sync arXiv (offline-safe), build the site, show a search."""
        from catalog.demo import run_demo

        run_demo(ctx, build_site=not no_site)
