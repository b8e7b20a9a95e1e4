"""`digest site build`, `digest site serve` and `digest site deploy`: the static mkdocs-material site."""

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
        site_url: Optional[str] = typer.Option(
            None, "--site-url", envvar="DIGEST_SITE_URL", show_default=False,
            help="The site's public address, e.g. https://example.org/digest/: canonical links, link cards "
                 "with their URL, a sitemap of every page, absolute links in the feeds. Without it every "
                 "link is relative (the site works from any folder)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Generate one page per post, paper, tag, source and reproduction, build the HTML, index it for search.

        mkdocs-material builds the nav pages and the reproductions; every other page is
        rendered by our templates into the theme's page (the same HTML, at a fraction of the
        time). Run it again after ingesting: unchanged pages are not rewritten. OUT/site is a
        symlink switched to the new site in one step once all of it is written, so a server
        of OUT/site never shows a half-built site."""
        from catalog.sitegen.build import build_site

        result = build_site(state(ctx).engine(must_exist=True), out, strict=strict, full=not incremental,
                            shard_posts=shard_posts, site_url=site_url)
        if as_json:
            print_json(result.as_dict())
            return
        stdout.print(f"site {result.site_dir}: {result.generated.pages} pages, "
                     f"{result.site_written} files written, {result.site_removed} removed "
                     f"(generated in {result.generate_s:.1f} s, mkdocs {result.mkdocs_s:.1f} s, "
                     f"stamped {result.stamp_s:.1f} s, search index {result.search_s:.1f} s)"
                     + (f"; sitemap of {result.sitemap_urls} pages for {result.site_url}" if result.site_url else ""),
                     markup=False, highlight=False)
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

    @site.command("deploy")
    def deploy(
        out: Optional[Path] = typer.Option(
            None, "--out", help="The build folder `digest site build --out` wrote (its OUT/site). [default: build]"),
        gh_pages: bool = typer.Option(
            False, "--gh-pages", help="Commit the site to a branch of the git repository in the current folder "
                                      "(with .nojekyll) and push it (GitHub Pages)."),
        remote: str = typer.Option("origin", "--remote", help="With --gh-pages: the remote to push to."),
        branch: str = typer.Option("gh-pages", "--branch", help="With --gh-pages: the branch to commit to."),
        message: str = typer.Option("Deploy the paper-digest site", "--message", "-m",
                                    help="With --gh-pages: the commit message."),
        to: Optional[Path] = typer.Option(
            None, "--to", help="Mirror the site into this folder a web server serves (it becomes a symlink "
                               "switched in one step; files the build no longer has are gone)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Publish the built site: to a git branch (--gh-pages) or into a served folder (--to DIR)."""
        from catalog.sitegen.build import out_dirs
        from catalog.sitegen.deploy import deploy_gh_pages, mirror_to

        if gh_pages == (to is not None):
            raise DigestError("say where to deploy: --gh-pages (a git branch) or --to DIR (a served folder), one of them")
        _, site_dir = out_dirs(out)
        if gh_pages:
            result = deploy_gh_pages(site_dir, remote=remote, branch=branch, message=message)
        else:
            result = mirror_to(site_dir, to)
        if as_json:
            print_json(result.as_dict())
        elif gh_pages:
            stdout.print(f"deployed {result.files} files to {result.target}", markup=False, highlight=False)
        else:
            stdout.print(f"deployed {result.files} files to {result.target} ({result.copied} copied, "
                         f"{result.removed} removed)", markup=False, highlight=False)
