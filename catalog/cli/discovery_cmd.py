"""`digest related` and `digest feed`: finding more of what you are reading."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from catalog.cli.common import print_json, state, stderr, stdout


def _rebuild_with_progress(engine, *, force: bool, quiet: bool = False) -> None:
    """Bring the stored related lists up to date (incrementally when only a few items are new;
    all of them when `force`), with a progress bar on stderr when it takes a while."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from catalog.related import is_fresh, rebuild_related, update_related

    if not force and is_fresh(engine):
        return
    bar = Progress(TextColumn("related"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=stderr, transient=True, disable=quiet)
    with bar:
        task = bar.add_task("related", total=None)
        stats = (rebuild_related if force else update_related)(
            engine, on_start=lambda n: bar.update(task, total=n), progress=lambda n: bar.advance(task, n))
    if quiet:
        return
    if stats["mode"] == "full":
        stderr.print(f"related: {stats['posts']} posts and {stats['papers']} papers compared, "
                     f"{stats['pairs']} neighbours stored", highlight=False)
    else:
        stderr.print(f"related: {stats['fresh']} new or grown items compared with all {stats['items']}, "
                     f"{stats['lists_changed']} items' lists updated", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def related(
        ctx: typer.Context,
        ident: str = typer.Argument(..., metavar="ID", help="A post id (from `digest search`) or an arXiv id."),
        papers_only: bool = typer.Option(False, "--papers", help="Only related papers."),
        posts_only: bool = typer.Option(False, "--posts", help="Only related posts."),
        limit: int = typer.Option(5, "--limit", min=1, max=10, help="At most this many of each kind."),
        rebuild: bool = typer.Option(False, "--rebuild", help="Recompute every item's neighbours first "
                                     "(a full rebuild, even when only a few items are new)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    ) -> None:
        """Posts and papers most similar to a post or a paper.

        Similarity is TF-IDF cosine over words and character n-grams (so Russian word forms
        and Chinese match), computed for the whole catalog once and stored; it is recomputed
        here only when the catalog changed. Examples: `digest related 12`,
        `digest related 2004.13342 --papers --json`.
        """
        from catalog.errors import UsageError
        from catalog.related import KINDS
        from catalog.related_lookup import related as find_related
        from catalog.related_lookup import resolve_item

        if papers_only and posts_only:
            raise UsageError("--papers and --posts exclude each other (give neither for both)")
        kinds = ("paper",) if papers_only else ("post",) if posts_only else KINDS
        engine = state(ctx).engine(must_exist=True)
        resolve_item(engine, ident)  # an unknown id fails before the lists are (re)computed
        _rebuild_with_progress(engine, force=rebuild, quiet=as_json)
        rows = find_related(engine, ident, kinds=kinds, limit=limit)
        if as_json:
            print_json(rows)
            return
        if not rows:
            stdout.print(f"nothing related to {escape(ident)} yet (the catalog may be too small)")
            return
        table = Table()
        table.add_column("kind")
        table.add_column("score", justify="right")
        table.add_column("id", no_wrap=True)
        table.add_column("title", overflow="fold", ratio=1)
        table.add_column("where")
        for r in rows:
            if r["kind"] == "post":
                table.add_row("post", f"{r['score']:.3f}", f"#{r['id']}", escape(r["title"] or ""),
                              escape(f"{r['source']} {(r['published_at'] or '')[:10]}"))
            else:
                table.add_row("paper", f"{r['score']:.3f}", r["arxiv_id"], escape(r["title"] or "(no metadata)"),
                              r["primary_category"] or "")
        stdout.print(table)

    @app.command()
    def feed(
        ctx: typer.Context,
        source: Optional[str] = typer.Option(None, "--source", help="The feed of one source (handle or title)."),
        tag: Optional[str] = typer.Option(None, "--tag", help="The feed of one tag."),
        paper: Optional[str] = typer.Option(None, "--paper", help="New posts discussing one paper (arXiv id)."),
        rss: bool = typer.Option(False, "--rss", help="RSS 2.0 instead of Atom."),
        limit: int = typer.Option(50, "--limit", min=1, help="At most this many entries."),
        site_url: str = typer.Option("", "--site-url", envvar="DIGEST_SITE_URL",
                                     help="Where the site is published, for absolute links (else relative)."),
    ) -> None:
        """Print an Atom (or RSS) feed of the latest posts: site-wide, or of a source, tag or paper.

        The site build writes every feed under `feeds/`; this prints one, e.g. for a
        script: `digest feed --tag nlp > nlp.xml`.
        """
        from catalog.errors import UsageError
        from catalog.feeds import atom_xml, catalog_feeds, find_feed, rss_xml
        from catalog.papers import parse_paper_id
        from catalog.sitegen.catalogview import Catalog

        if sum(bool(x) for x in (source, tag, paper)) > 1:
            raise UsageError("give at most one of --source, --tag, --paper")
        cat = Catalog(state(ctx).engine(must_exist=True), {})
        chosen = find_feed(catalog_feeds(cat, limit=limit), source=source, tag=tag,
                           paper=parse_paper_id(paper) if paper else None)
        data = (rss_xml if rss else atom_xml)(chosen, base_url=site_url)
        sys.stdout.buffer.write(data + b"\n")
        sys.stdout.flush()
