"""`digest arxiv sync`, `digest arxiv add`, `digest paper`, `digest papers`."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalog.cli.common import print_json, state, stderr, stdout
from catalog.models import PaperStatus

arxiv_app = typer.Typer(
    name="arxiv", no_args_is_help=True,
    help="arXiv metadata: fill papers seen in posts (`sync`), or add papers by id or query (`add`).")

_API_URL_HELP = ("arXiv API endpoint (env DIGEST_ARXIV_API_URL; default https://export.arxiv.org/api/query). "
                 "Point it at a mirror or a local test server.")


@contextmanager
def _progress(enabled: bool) -> Iterator[tuple]:
    """A rich progress bar on stderr; yields (on_start, on_progress) callbacks."""
    if not enabled:
        yield None, None
        return
    bar = Progress(TextColumn("arXiv"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=stderr, transient=True)
    task = None

    def on_start(total: int) -> None:
        nonlocal task
        task = bar.add_task("sync", total=total)

    def on_progress(n: int) -> None:
        if task is not None:
            bar.advance(task, n)

    with bar:
        yield on_start, on_progress


def _warn(message: str) -> None:
    stderr.print(f"digest: warning: {escape(message)}", highlight=False)


def _pending_line(pending: list[str]) -> str:
    shown = ", ".join(pending[:10]) + (f", … ({len(pending) - 10} more)" if len(pending) > 10 else "")
    return f"{len(pending)} paper{'s' if len(pending) != 1 else ''} still without metadata: {shown}"


def _report(report, as_json: bool, what: str) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        stdout.print(f"{what}{' (offline)' if report.offline else ''}: {report.fetched} fetched "
                     f"({report.withdrawn} withdrawn), {report.not_found} not found, {report.errors} rejected, "
                     f"{len(report.pending)} pending; {report.requests} request{'s' if report.requests != 1 else ''}, "
                     f"{report.posts_updated} posts re-tagged")
    if report.offline:
        _warn(report.warning or "offline")
        if report.pending:
            _warn(_pending_line(report.pending) + " (run `digest arxiv sync` when online)")


@arxiv_app.command("sync")
def sync_cmd(
    ctx: typer.Context,
    refresh: bool = typer.Option(False, "--refresh", help="Fetch every paper again, not only those never fetched "
                                 "(also retries withdrawn, not-found and rejected ids)."),
    offline: bool = typer.Option(False, "--offline", help="Do not touch the network: report the pending ids."),
    api_url: Optional[str] = typer.Option(None, "--api-url", help=_API_URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the sync report as JSON."),
) -> None:
    """Fetch arXiv metadata for every paper seen in posts that has none yet.

    Batches of up to 100 ids, at least 3 s apart, one connection, retries with backoff.
    Without network it changes nothing, lists the pending ids and exits 0 with a warning.
    """
    from catalog.arxiv import ClientConfig, sync

    engine = state(ctx).engine(must_exist=True)
    config = None if offline else ClientConfig.from_env(api_url)
    with _progress(not offline) as (on_start, on_progress):
        report = sync(engine, refresh=refresh, offline=offline, config=config,
                      on_start=on_start, on_progress=on_progress)
    _report(report, as_json, "arxiv sync")


@arxiv_app.command("add")
def add_cmd(
    ctx: typer.Context,
    items: List[str] = typer.Argument(..., metavar="QUERY|ID...",
                                      help="arXiv ids (2004.13342, 1807.03819v3, hep-th/9901001, arxiv.org URLs) "
                                           "or search queries ('cat:cs.CL AND ti:dropout')."),
    max_results: int = typer.Option(10, "--max", min=1, help="At most this many papers per search query."),
    api_url: Optional[str] = typer.Option(None, "--api-url", help=_API_URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Add papers to the catalog by id or search query, even if no post mentions them.

    Ids are recorded even without network (a later `digest arxiv sync` fills them);
    papers already fetched are not asked for again.
    """
    from catalog.arxiv import ClientConfig, add

    report = add(state(ctx).engine(), items, max_results=max_results, config=ClientConfig.from_env(api_url))
    _report(report, as_json, "arxiv add")
    if not as_json and report.added:
        stdout.print("papers: " + " ".join(report.added))


def register(app: typer.Typer) -> None:
    app.add_typer(arxiv_app, name="arxiv")

    @app.command()
    def paper(
        ctx: typer.Context,
        arxiv_id: str = typer.Argument(..., metavar="ARXIV_ID", help="2004.13342, arXiv:1807.03819v3, a URL, …"),
        as_json: bool = typer.Option(False, "--json", help="Print the paper as JSON."),
        bibtex: bool = typer.Option(False, "--bibtex", help="Print a BibTeX entry (arXiv style) instead."),
    ) -> None:
        """One paper: arXiv metadata, every post discussing it, its reproduction.

        `--bibtex` prints its citation: `digest paper 2004.13342 --bibtex >> refs.bib`.
        """
        from catalog.papers import get_paper

        engine = state(ctx).engine(must_exist=True)
        p = get_paper(engine, arxiv_id)
        if bibtex:
            _print_bibtex(engine, [p["arxiv_id"]], single=True)
            return
        if as_json:
            print_json(p)
            return
        title = p["title"] or "(no metadata yet: run `digest arxiv sync`)"
        stdout.print(f"[bold]arXiv:{p['arxiv_id']}[/bold]" + (f"v{p['version']}" if p["version"] else "")
                     + f" {escape(title)}")
        if p["authors"]:
            stdout.print(escape(", ".join(p["authors"])))
        facts = [f"status {p['status']}"]
        if p["published"]:
            facts.append(f"published {p['published'][:10]}")
        if p["updated"] and p["updated"] != p["published"]:
            facts.append(f"updated {p['updated'][:10]}")
        if p["categories"]:
            facts.append("categories " + " ".join(p["categories"]))
        stdout.print(" · ".join(facts))
        for key in ("abs_url", "pdf_url", "doi", "journal_ref", "comment"):
            if p[key]:
                stdout.print(f"{key.replace('_', ' ')}: {escape(str(p[key]))}")
        if p["abstract"]:
            stdout.print()
            stdout.print(escape(p["abstract"]))
        stdout.print()
        stdout.print(f"[bold]posts[/bold] ({len(p['posts'])})")
        for post in p["posts"]:
            date = (post["published_at"] or "undated")[:10]
            stdout.print(f"  #{post['id']} {date} {escape(post['source'])} {escape(post['url'] or '')}".rstrip())
        repro = p["reproduction"]
        stdout.print()
        if repro:
            stdout.print(f"[bold]reproduction[/bold] {escape(repro['slug'])}: {escape(repro['title'])} "
                         f"({repro['runs']} run{'s' if repro['runs'] != 1 else ''}; `digest run {repro['slug']}`)")
            last = repro["last_run"]
            if last:
                metrics = ", ".join(f"{k}={v}" for k, v in last["metrics"].items())
                stdout.print(f"  last run: {last['preset']} on {last['device']}, {last['status']}"
                             + (f": {escape(metrics)}" if metrics else ""))
        else:
            stdout.print("reproduction: none")

    @app.command()
    def papers(
        ctx: typer.Context,
        tag: Optional[str] = typer.Option(None, "--tag", help="Only papers with this arXiv category tag (cs.cl)."),
        status: Optional[str] = typer.Option(None, "--status",
                                             help="Only papers in this state: " + ", ".join(PaperStatus) + "."),
        top: bool = typer.Option(False, "--top", help="Most discussed first: ranked by distinct sources, "
                                 "then posts (see --by, --since)."),
        since: Optional[str] = typer.Option(None, "--since", help="With --top: count only posts published on or "
                                            "after this date (YYYY-MM-DD)."),
        by: str = typer.Option("sources", "--by", help="With --top: rank by `sources` (default) or `posts`."),
        limit: int = typer.Option(20, "--limit", min=1, help="With --top: at most this many papers."),
        bibtex: bool = typer.Option(False, "--bibtex", help="Print the selection as a .bib file."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    ) -> None:
        """List the papers in the catalog with their post counts and reproductions.

        `digest papers --top --since 2020-05-01` ranks papers by how many sources and posts
        discuss them; `digest papers --tag cs.cl --bibtex > cl.bib` exports citations.
        """
        from catalog.errors import UsageError
        from catalog.papers import list_papers

        if (since or by != "sources") and not top:
            raise UsageError("--since and --by rank papers: use them with --top")
        engine = state(ctx).engine(must_exist=True)
        if top:
            _print_top(engine, since=since, by=by, limit=limit, tag=tag, status=status, bibtex=bibtex,
                       as_json=as_json)
            return
        rows = list_papers(engine, tag=tag, status=status)
        if _printed_plainly(engine, rows, bibtex=bibtex, as_json=as_json, empty="no papers" + (
                f" tagged {tag}" if tag else "") + (f" with status {status}" if status else "")):
            return
        table = Table()
        table.add_column("arXiv", no_wrap=True)
        table.add_column("date", no_wrap=True)
        table.add_column("category")
        table.add_column("posts", justify="right")
        table.add_column("title", overflow="fold", ratio=1)
        table.add_column("repro")
        for r in rows:
            table.add_row(r["arxiv_id"], (r["published"] or "")[:10], r["primary_category"] or "",
                          str(r["posts"]), escape(r["title"] or f"({r['status']})"), r["reproduction"] or "")
        stdout.print(table)


def _print_bibtex(engine, arxiv_ids: list[str], *, single: bool = False) -> None:
    from catalog.bibtex import bibliography
    from catalog.errors import DigestError

    text, skipped = bibliography(engine, arxiv_ids)
    if single and skipped:
        raise DigestError(f"no metadata for {skipped[0]} yet: run `digest arxiv sync` first")
    if text:
        stdout.out(text, end="", highlight=False)
    if skipped:
        _warn(f"{len(skipped)} paper{'s' if len(skipped) != 1 else ''} without metadata left out "
              f"(run `digest arxiv sync`): {', '.join(skipped[:10])}")


def _printed_plainly(engine, rows: list[dict], *, bibtex: bool, as_json: bool, empty: str) -> bool:
    """Print a paper list as BibTeX, as JSON, or the `empty` line; False when a table is still owed."""
    if bibtex:
        _print_bibtex(engine, [r["arxiv_id"] for r in rows])
    elif as_json:
        print_json(rows)
    elif not rows:
        stdout.print(empty)
    return bibtex or as_json or not rows


def _print_top(engine, *, since: str | None, by: str, limit: int, tag: str | None, status: str | None,
               bibtex: bool, as_json: bool) -> None:
    from catalog.discussed import top_papers
    from catalog.errors import UsageError
    from catalog.search import parse_date

    if tag or status:
        raise UsageError("--top ranks all papers: it does not combine with --tag or --status")
    rows = top_papers(engine, since=parse_date(since), by=by, limit=limit)
    if _printed_plainly(engine, rows, bibtex=bibtex, as_json=as_json,
                        empty="no paper is discussed" + (f" since {since}" if since else "")):
        return
    table = Table()
    for name, justify in (("#", "right"), ("arXiv", "left"), ("sources", "right"), ("posts", "right"),
                          ("last post", "left"), ("title", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "title", overflow="fold",
                         ratio=1 if name == "title" else None)
    for r in rows:
        table.add_row(str(r["rank"]), r["arxiv_id"], str(r["sources"]), str(r["posts"]),
                      (r["last_post"] or "")[:10], escape(r["title"] or f"({r['status']})"))
    stdout.print(table)
