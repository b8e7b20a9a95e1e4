"""`digest demo`: the main job on the bundled sample corpus, end to end and offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from catalog.cli.common import state, stdout
from catalog.arxiv import sync as sync_arxiv
from catalog.db import session
from catalog.runs import import_runs, sync_reproductions
from catalog.ingest import ingest_paths
from catalog.paper_snapshot import load_snapshot as load_paper_snapshot
from catalog.search import search
from catalog.sitegen import build_site as build_static_site


def sample_corpus() -> list[Path]:
    """The bundled sample exports (written for this project; see catalog/sample/README.md)."""
    folder = resources.files("catalog") / "sample"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json"))


def committed_results() -> Path | None:
    """The run records kept in the checkout (``results/``), when running from one."""
    folder = Path(__file__).resolve().parent.parent / "results"
    return folder if folder.is_dir() else None


def run_demo(ctx: typer.Context, *, build_site: bool = True, offline: bool = False) -> None:
    st = state(ctx)
    engine = st.engine()
    stats = ingest_paths(engine, sample_corpus())
    stdout.print(f"[bold]ingested[/bold] {stats.posts} posts from {stats.sources} sources into {st.db_path} "
                 f"({stats.posts_new} new, {stats.posts_updated} updated, {stats.posts_unchanged} unchanged)")
    with session(engine) as s:
        repros = sync_reproductions(s)
        results = committed_results()
        runs = import_runs(s, results, sync=False) if results else []
    stdout.print(f"[bold]reproductions[/bold] {len(repros)} registered, {len(runs)} recorded runs imported")
    report = sync_arxiv(engine, offline=offline)
    stdout.print(f"[bold]arXiv[/bold] {report.fetched} papers fetched, {len(report.pending)} pending"
                 + (f" ({report.warning})" if report.warning else ""))
    if report.pending:  # offline: the bundled snapshot gives the sample's papers their titles
        stdout.print(f"[bold]arXiv snapshot[/bold] {load_paper_snapshot(engine)} papers filled from the bundled snapshot")
    for query in ("drophead", "головы внимания", "注意力"):
        hits = search(engine, query, limit=3)
        stdout.print(f"search {query!r}: " + "; ".join(f"#{h.id} {h.title[:50]}" for h in hits))
    if build_site:
        result = build_static_site(engine, Path("build"))
        stdout.print(f"[bold]site[/bold] {result.generated.pages} pages built into {result.site_dir}"
                     f" (open {result.site_dir / 'index.html'}, or run `digest site serve`)")
