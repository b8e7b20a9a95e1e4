"""`digest follow`, `digest unfollow`, `digest following`, `digest sync`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from catalog.cli.common import fail, print_json, state, stderr, stdout


def register(app: typer.Typer) -> None:
    @app.command("follow")
    def follow_cmd(
        ctx: typer.Context,
        channels: Optional[List[str]] = typer.Argument(
            None, metavar="CHANNEL...",
            help="@username, t.me/username, https://t.me/s/username, or a page on a mirror."),
        mirror: Optional[List[str]] = typer.Option(
            None, "--mirror", metavar="HOST[:PORT]",
            help="Allow channels on this host from now on (kept in the catalog; repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Follow public Telegram channels: `digest sync` fetches their new posts.

        Only t.me is followed, and hosts named with `--mirror` (a t.me/s mirror you run or
        trust): other hosts, IP addresses, private, loopback and link-local addresses and
        non-http(s) addresses are refused. A redirect off those hosts is not followed.
        """
        from catalog.errors import UsageError
        from catalog.follow import follow

        if not channels and not mirror:
            raise UsageError("give channels to follow (@username or https://t.me/s/username), or --mirror HOST")
        rows = follow(state(ctx).engine(), channels or [], mirrors=mirror or [])
        if not rows and not as_json:
            stdout.print("mirrors allowed: " + ", ".join(mirror or []), highlight=False, markup=False)
            return
        if as_json:
            print_json(rows)
            return
        for r in rows:
            stdout.print(f"{r['channel']}: {'following' if r['added'] else 'already followed'} ({r['url']})",
                         highlight=False)

    @app.command("unfollow")
    def unfollow_cmd(
        ctx: typer.Context,
        channels: List[str] = typer.Argument(..., metavar="CHANNEL...", help="@username or t.me URL."),
    ) -> None:
        """Stop following channels (their posts stay in the catalog)."""
        from catalog.follow import unfollow

        for name in unfollow(state(ctx).engine(must_exist=True), channels):
            stdout.print(f"{name}: no longer followed", highlight=False)

    @app.command("following")
    def following_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List followed channels with their post counts and how the last sync went."""
        from catalog.follow import following

        rows = following(state(ctx).engine())
        if as_json:
            print_json(rows)
            return
        if not rows:
            stdout.print("no channels followed: add some with `digest follow @channel`")
        for r in rows:
            last = f"last sync {r['last_synced_at'][:16]} {r['last_status']}" if r["last_synced_at"] else "never synced"
            where = f" ({r['host']})" if r["host"] != "t.me" else ""
            stdout.print(f"{r['channel']}{where}  {r['posts']} posts  {last}"
                         + (f" ({r['last_error']})" if r["last_error"] else ""), highlight=False, markup=False)

    @app.command("sync")
    def sync_cmd(
        ctx: typer.Context,
        max_pages: int = typer.Option(10, "--max-pages", min=1, help="At most this many pages (~20 posts) a channel."),
        interval: float = typer.Option(1.0, "--interval", min=0.1, help="Seconds between two requests (politeness)."),
        no_arxiv: bool = typer.Option(False, "--no-arxiv", help="Skip the arXiv metadata sync."),
        offline: bool = typer.Option(False, "--offline", help="arXiv: fetch nothing, only report what is pending."),
        site: Optional[Path] = typer.Option(None, "--site", show_default=False,
                                            help="Then rebuild the static site in this build folder (HTML in DIR/site)."),
        site_url: Optional[str] = typer.Option(
            None, "--site-url", envvar="DIGEST_SITE_URL", show_default=False,
            help="With --site: the site's public address (https://example.org/digest/): canonical links, "
                 "sitemap, absolute feed links."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary; errors only (for cron)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Fetch every followed channel's new posts, then sync arXiv, then (with `--site`) rebuild the site.

        Channels are fetched one after another with one polite fetcher, each from its
        newest page back to the newest post already stored, each in its own transaction.
        Prints one line per channel; exits 0 when every channel synced, 1 naming the
        failed ones (the others are stored). Two syncs never run at once on one catalog.
        Cron: `digest --db ~/digest.db sync --quiet --site ~/site --site-url https://example.org/`
        (see docs/publishing.md).
        """
        from catalog.follow import sync

        progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=stderr, transient=False,
                            disable=quiet or as_json or not stderr.is_terminal)
        tasks: dict[str, int] = {}

        def on_channel(name: str, pages: int):
            tasks[name] = progress.add_task(name, total=pages)
            return lambda: progress.advance(tasks[name])

        def on_done(result) -> None:
            if result.channel in tasks:
                progress.update(tasks[result.channel], total=max(result.pages, 1), completed=max(result.pages, 1))

        from catalog.interrupts import Interrupted

        try:
            with progress:
                report = sync(state(ctx).engine(), max_pages=max_pages, interval=interval, arxiv=not no_arxiv,
                              offline=offline, site=site, site_url=site_url, on_channel=on_channel,
                              on_done=on_done)
        except Interrupted as exc:
            fail(exc.line(), exc.exit_code)
        if as_json:
            print_json(report.as_dict())
        elif not quiet:
            for c in report.channels:
                stdout.print(c.line(), highlight=False, markup=False)
            if report.arxiv is not None:
                a = report.arxiv
                stdout.print(f"arXiv: {a['fetched']} papers fetched, {a['pending']} pending"
                             + (f" ({a['warning']})" if a["warning"] else ""), highlight=False, markup=False)
            if report.site:
                stdout.print(f"site: {report.site}", highlight=False, markup=False)
        if report.failed:
            fail(f"sync failed for {len(report.failed)} of {len(report.channels)} channels: "
                 + "; ".join(f"{c.channel} ({c.error})" for c in report.failed))
