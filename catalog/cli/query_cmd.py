"""`digest search`, `digest show`, `digest tags` (`digest sources` is in sources_cmd)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from catalog.cli.common import print_json, state, stdout


def register(app: typer.Typer) -> None:
    @app.command()
    def search(
        ctx: typer.Context,
        query: str = typer.Argument(..., help="Words to find, in any language; punctuation is ignored."),
        tag: Optional[str] = typer.Option(None, "--tag", help="Only posts with this tag (e.g. nlp, cs.cl)."),
        source: Optional[str] = typer.Option(None, "--source", help="Only posts from this source (handle or title)."),
        lang: Optional[str] = typer.Option(None, "--lang", help="Only posts in this language: ru, en, zh, …"),
        since: Optional[str] = typer.Option(None, "--since", help="Published on or after this date (YYYY-MM-DD)."),
        until: Optional[str] = typer.Option(None, "--until", help="Published on or before this date (YYYY-MM-DD)."),
        has_reproduction: Optional[bool] = typer.Option(
            None, "--has-reproduction/--no-reproduction", help="Only posts whose paper has (or lacks) a reproduction."),
        limit: int = typer.Option(20, "--limit", "-n", min=1, help="At most this many hits."),
        include_copies: bool = typer.Option(False, "--all", help="Also show forwards and reposts of posts"
                                            " already listed (shown once by default)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array of hits."),
    ) -> None:
        """Full-text search over posts (bm25 ranking, titles weighted).

        Examples: `digest search "drop heads" --tag nlp`, `digest search 注意力`,
        `digest search регуляризация --since 2020-01-01 --json`.
        """
        from catalog.search import Filters, parse_date, search as run_search

        filters = Filters(tag=tag, source=source, lang=lang, since=parse_date(since),
                          until=parse_date(until, end_of_day=True), has_reproduction=has_reproduction,
                          include_copies=include_copies)
        hits = run_search(state(ctx).engine(must_exist=True), query, filters=filters, limit=limit)
        if as_json:
            print_json([h.as_dict() for h in hits])
            return
        if not hits:
            stdout.print(f"no posts match {query!r}")
            return
        table = Table(show_lines=True)
        for col in ("id", "date", "source", "post", "tags / papers"):
            table.add_column(col, overflow="fold")
        for h in hits:
            papers = [f"{a} {h.paper_titles.get(a, '')}".strip() for a in h.arxiv_ids]
            table.add_row(str(h.id), h.published_at.date().isoformat() if h.published_at else "",
                          h.source, _post_cell(h.title, h.snippet),
                          _esc(" ".join("#" + t for t in h.tags) + ("\n" + "\n".join(papers) if papers else "")))
        stdout.print(table)

    @app.command()
    def show(
        ctx: typer.Context,
        post_id: int = typer.Argument(..., metavar="ID", help="Post id (from `digest search`)."),
        as_json: bool = typer.Option(False, "--json", help="Print the post as JSON (includes the raw input)."),
    ) -> None:
        """Show one post: text, date, source, tags, arXiv ids and links."""
        from catalog.queries import get_post

        post = get_post(state(ctx).engine(must_exist=True), post_id)
        if as_json:
            print_json(post)
            return
        stdout.print(f"[bold]#{post['id']}[/bold] {_esc(post['source'])} · {post['published_at'] or 'undated'}"
                     + (f" · edited {post['edited_at']}" if post["edited_at"] else ""))
        if post["url"]:
            stdout.print(post["url"])
        stdout.print()
        stdout.print(_esc(post["text"]))
        stdout.print()
        if post["tags"]:
            stdout.print("tags: " + " ".join("#" + t for t in post["tags"]))
        for p in post["papers"]:
            stdout.print(f"paper: arXiv:{p['arxiv_id']} {_esc(p['title'] or '')}")
        for link in post["links"]:
            stdout.print(f"link ({link['kind']}): {link['url']}")

    @app.command()
    def tags(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List tags with their post counts (hashtags and arXiv categories)."""
        from catalog.queries import list_tags

        rows = list_tags(state(ctx).engine(must_exist=True))
        if as_json:
            print_json(rows)
            return
        table = Table("tag", "posts", "origin")
        for r in rows:
            table.add_row(_esc(r["tag"]), str(r["posts"]), ", ".join(r["origins"]))
        stdout.print(table)


def _post_cell(title: str, snippet: str) -> str:
    if snippet.startswith(title.rstrip("…")):
        return _esc(snippet)
    return f"[bold]{_esc(title)}[/bold]\n{_esc(snippet)}"


def _esc(text: str) -> str:
    """Post text is data: never let it be read as rich markup."""
    from rich.markup import escape

    return escape(text)
