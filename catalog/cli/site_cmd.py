"""`digest site build` and `digest site serve`: the static mkdocs-material site."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from catalog.cli.common import print_json, state, stdout
from catalog.errors import DigestError


def register(app: typer.Typer) -> None:
    site = typer.Typer(help="The static site (mkdocs-material) generated from the catalog.", no_args_is_help=True)
    app.add_typer(site, name="site")

    @site.command("build")
    def build(
        ctx: typer.Context,
        out: Optional[Path] = typer.Option(
            None, "--out", help="Build folder: Markdown goes to OUT/docs, HTML to OUT/site. [default: build]"),
        strict: bool = typer.Option(False, "--strict", help="Fail on any mkdocs warning (broken links included)."),
        incremental: bool = typer.Option(
            True, "--incremental/--full",
            help="Write only the files whose bytes changed since the last build in OUT and index only the "
                 "search shards that changed (the default), or empty OUT/site first (--full)."),
        shard_posts: Optional[int] = typer.Option(
            None, "--search-shard-posts", min=1,
            help="Posts per search shard, cut by date; the Search page asks the newest shard first. "
                 "[default: 5000]"),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Generate one page per post, paper, tag, source and reproduction, build the HTML, index it for search.

        mkdocs-material builds the nav pages and the reproductions; every other page is
        rendered by our templates into the theme's page (the same HTML, at a fraction of the
        time). Run it again after ingesting: unchanged pages are not rewritten."""
        from catalog.sitegen.build import build_site

        result = build_site(state(ctx).engine(must_exist=True), out, strict=strict, full=not incremental,
                            shard_posts=shard_posts)
        if as_json:
            print_json(result.as_dict())
            return
        stdout.print(f"[bold]site[/bold] {result.site_dir}: {result.generated.pages} pages, "
                     f"{result.site_written} files written, {result.site_removed} removed "
                     f"(generated in {result.generate_s:.1f} s, mkdocs {result.mkdocs_s:.1f} s, "
                     f"stamped {result.stamp_s:.1f} s, search index {result.search_s:.1f} s)")
        for message in result.warnings[:10]:
            stdout.print(f"warning: {message}", markup=False)

    @site.command("serve")
    def serve(
        ctx: typer.Context,
        out: Optional[Path] = typer.Option(None, "--out", help="Build folder for the generated Markdown. [default: build]"),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
        open_browser: bool = typer.Option(False, "--open", help="Open the site in a browser."),
    ) -> None:
        """Serve the site locally with live rebuild (templates, overrides and the catalog are watched)."""
        from catalog.sitegen.build import serve_site

        st = state(ctx)
        try:
            serve_site(st.engine(must_exist=True), st.db_path, out, host=host, port=port, open_browser=open_browser)
        except OSError as exc:
            raise DigestError(f"cannot serve on {host}:{port}: {exc}") from exc
