"""`digest sources` (list), `digest sources merge`, `digest sources alias`."""

from __future__ import annotations

import typer
from rich.table import Table

from catalog.cli.common import print_json, state, stdout

sources_app = typer.Typer(
    name="sources", invoke_without_command=True,
    help="List sources (channels, blogs); merge two sources of one channel; tie an export to its public page.",
)


@sources_app.callback(invoke_without_command=True)
def sources(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List sources with post counts, date ranges and the other keys (aliases) each answers to.

    A channel is one source whatever route its posts came by (JSON export `channel<id>`,
    HTML export `export:<name>`, its t.me/s page): routes certain to be one channel
    merge on ingest; `digest sources merge` and `digest sources alias` do the rest.
    """
    if ctx.invoked_subcommand is not None:
        return
    from catalog.sources import source_rows

    rows = source_rows(state(ctx).engine(must_exist=True))
    if as_json:
        print_json(rows)
        return
    table = Table()
    aliases = any(r["aliases"] for r in rows)
    for col in ("id", "kind", "handle", "title", "posts", "dates") + (("also known as",) if aliases else ()):
        table.add_column(col, overflow="fold")
    for r in rows:
        dates = f"{(r['first'] or '')[:10]} … {(r['last'] or '')[:10]}" if r["first"] else ""
        table.add_row(str(r["id"]), r["kind"], _esc(r["handle"]), _esc(r["title"]), str(r["posts"]), dates,
                      *((_esc(", ".join(r["aliases"])),) if aliases else ()))
    stdout.print(table)


@sources_app.command("merge")
def merge_cmd(
    ctx: typer.Context,
    keep: str = typer.Argument(..., metavar="KEEP", help="The source that stays: id, handle, @username or alias."),
    other: str = typer.Argument(..., metavar="OTHER", help="The source merged into KEEP and removed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what the merge would do; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Merge OTHER into KEEP: move its posts, fold posts with the same message id into one.

    Of two copies of one post the richest record is kept (the higher view count, the
    later edit, every link, tag and paper). OTHER's keys become aliases of KEEP, so
    re-ingesting any of its routes lands in KEEP. One transaction; it can be undone only
    by re-ingesting, so try `--dry-run` first.
    """
    from catalog.sources import merge

    report = merge(state(ctx).engine(must_exist=True), keep, other, dry_run=dry_run)
    if as_json:
        print_json(report.as_dict())
        return
    k, o = report.keep, report.other
    verb = "would merge" if dry_run else "merged"
    stdout.print(f"{verb} source {o['id']} ({_esc(o['handle'])}, {report.posts_before['other']} posts) into "
                 f"{k['id']} ({_esc(k['handle'])}, {report.posts_before['keep']} posts): {report.moved} moved, "
                 f"{report.folded} folded into existing posts ({report.enriched} enriched); "
                 f"{report.posts_after} posts after", highlight=False)


@sources_app.command("alias")
def alias_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="SOURCE", help="Id, handle or alias of the source."),
    username: str = typer.Argument(..., metavar="@USERNAME", help="The channel's public @username or t.me URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tie SOURCE (say, an HTML export) to a channel's public page ahead of time.

    Afterwards `digest ingest https://t.me/s/<username>`, `digest follow` and
    `digest sync` land that page's posts in SOURCE.
    """
    from catalog.sources import alias

    result = alias(state(ctx).engine(must_exist=True), source, username)
    if as_json:
        print_json(result)
        return
    src = result["source"]
    stdout.print(f"{result['alias']} now leads to source {src['id']} ({_esc(src['handle'])})", highlight=False)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text or "")


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
