"""`digest ingest` and `digest demo`."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.cli.common import print_json, state, stderr, stdout

if TYPE_CHECKING:
    from catalog.ingest_stats import IngestStats


def _summary(stats: IngestStats) -> str:
    lines = [f"merged source {m['other']['handle']!r} into {m['keep']['handle']!r}: {m['automatic']}"
             for m in stats.merges]
    lines.append(f"{stats.files} file(s), {stats.sources} source(s): {stats.posts_new} new, "
                 f"{stats.posts_updated} updated, {stats.posts_unchanged} unchanged posts; "
                 f"{stats.tags} tags, {stats.arxiv_ids} arXiv ids"
                 + (f"; {stats.copies} copies of posts in other sources" if stats.copies else ""))
    return "\n".join(lines)


def _print_formats(as_json: bool) -> None:
    from scrapers.formats import describe

    rows = describe()
    if as_json:
        print_json([{"name": n, "description": d} for n, d in rows])
        return
    width = max(len(n) for n, _ in rows)
    for name, desc in rows:
        stdout.print(f"{name:<{width}}  {desc}", markup=False, highlight=False)


def _ingest_urls(ctx: typer.Context, urls: list[str], max_pages: int, since: str | None, full: bool) -> IngestStats:
    from catalog.ingest_url import ingest_url
    from catalog.search import parse_date

    engine = state(ctx).engine()
    from catalog.ingest_stats import IngestStats

    total = IngestStats()
    for url in urls:
        total.merge(ingest_url(engine, url, max_pages=max_pages, since=parse_date(since), full=full))
    return total


def run_ingest(ctx: typer.Context, paths: list[str], fmt: str | None, quiet: bool) -> IngestStats:
    from catalog.ingest import ingest_paths

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
        paths: Optional[List[str]] = typer.Argument(
            None, help="Files or folders to read (folders are read recursively), or https://t.me/s/<channel> URLs."),
        fmt: Optional[str] = typer.Option(None, "--format", help="Force a reader instead of detecting the format."),
        list_formats: bool = typer.Option(False, "--formats", help="List the input formats (detection order) and exit."),
        max_pages: int = typer.Option(10, "--max-pages", min=1, help="URLs: fetch at most this many pages (about 20 posts each)."),
        since: Optional[str] = typer.Option(None, "--since", help="URLs: stop at posts older than this date (YYYY-MM-DD)."),
        full: bool = typer.Option(False, "--full", help="URLs: do not stop at the newest post already stored."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Read posts from files or folders into the catalog.

        Each file is one transaction: a bad file is reported in one line and leaves
        the catalog as it was; files before it stay ingested. Re-running on the same
        input changes nothing; edited posts are updated in place.

        The format is detected from each file's content (`--formats` lists them;
        `--format NAME` forces one). A `https://t.me/s/<channel>` URL is fetched
        politely (one request a second, retries with backoff), newest page first,
        up to `--max-pages`, stopping at `--since` and at the newest post already
        stored (unless `--full`); the whole fetch is one transaction.
        """
        from catalog.errors import UsageError
        from scrapers.fetch import is_url

        if list_formats:
            _print_formats(as_json)
            return
        if not paths:
            raise UsageError("give files, folders or https://t.me/s/<channel> URLs to ingest (or --formats)")
        urls = [p for p in paths if is_url(p)]
        files = [p for p in paths if not is_url(p)]
        if urls and fmt and fmt != "tme-preview":
            raise UsageError(f"--format {fmt} does not apply to URLs (they are read as tme-preview pages)")
        from catalog.ingest_stats import IngestStats

        stats = run_ingest(ctx, files, fmt, quiet=as_json) if files else IngestStats()
        if urls:
            stats.merge(_ingest_urls(ctx, urls, max_pages, since, full))
        if as_json:
            print_json(stats.as_dict())
        else:
            stdout.print(_summary(stats), markup=False, highlight=False)

    @app.command()
    def demo(
        ctx: typer.Context,
        no_site: bool = typer.Option(False, "--no-site", help="Skip building the static site."),
        offline: bool = typer.Option(False, "--offline", help="Do not contact arXiv (without a network the sync"
                                     " notices on its own and goes on)."),
    ) -> None:
        """Ingest the bundled sample corpus, sync arXiv (offline-safe), build the site, show a search."""
        from catalog.demo import run_demo

        st = state(ctx)
        _print_demo(run_demo(st.engine(), build_site=not no_site, offline=offline), st.db_path)


def _print_demo(report, db_path) -> None:
    stats, arxiv = report.ingest, report.arxiv
    stdout.print(f"[bold]ingested[/bold] {stats.posts} posts from {stats.sources} sources into {db_path} "
                 f"({stats.posts_new} new, {stats.posts_updated} updated, {stats.posts_unchanged} unchanged)")
    stdout.print(f"[bold]reproductions[/bold] {report.reproductions} registered, "
                 f"{report.runs_imported} recorded runs imported")
    stdout.print(f"[bold]arXiv[/bold] {arxiv.fetched} papers fetched, {len(arxiv.pending)} pending"
                 + (f" ({arxiv.warning})" if arxiv.warning else ""))
    if report.snapshot_papers:
        stdout.print(f"[bold]arXiv snapshot[/bold] {report.snapshot_papers} papers filled from the bundled snapshot")
    for query, hits in report.searches:
        stdout.print(f"search {query!r}: " + "; ".join(f"#{h.id} {h.title[:50]}" for h in hits))
    if report.site:
        site = report.site
        stdout.print(f"[bold]site[/bold] {site.generated.pages} pages built into {site.site_dir}"
                     f" (open {site.site_dir / 'index.html'}, or run `digest site serve`)")
