"""Building and serving the site: generate the Markdown, run mkdocs on it, stamp the rest.

``build_site(engine, out)`` writes ``out/docs`` (generated Markdown: the nav pages, the
reproductions, one shell page per folder of generated pages), ``out/mkdocs`` (what
mkdocs built of it) and ``out/site`` (the HTML site: mkdocs' files, plus every post,
paper, tag and source page stamped into its folder's shell, see stamp.py, plus the
search index). mkdocs runs in-process through its API with the top-level ``mkdocs.yml``
(its copy in the package when installed, see paths.py); docs_dir, site_dir, strict and the
hooks are overridden.

Every build is incremental: a stamped page or feed is rendered only when its inputs changed
(pageinputs.py), mkdocs runs only when what it builds changed, a file of the site is written
only when its bytes changed, files no longer produced are removed, and only search shards with
changed pages are indexed again (shards.py). ``full=True`` starts from an empty site.

Every build is atomic too: ``out/site`` is a symlink to a complete generation of the site;
a build brings the standby generation beside it up to date (the site before the last flip:
only what changed since is written, so it costs little more) and flips the link in one
rename when everything, search index included, is written (swap.py). A build killed at any
moment leaves the previous site served and complete.

With a `site_url` (the site's public address) mkdocs gets it as ``site_url``, the feeds'
links are absolute, every page names its canonical URL, and the builder writes a sitemap
of every page (sitemap.py); without one every link stays relative, as the site works from
any folder and from file://.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from catalog.errors import DigestError
from catalog.sitegen.discovery import write_feeds
from catalog.sitegen.generate import GenerateStats, generate_docs
from catalog.sitegen.meta import normalise_site_url
from catalog.sitegen.pageinputs import Inputs, build_digest, page_digest
from catalog.sitegen.paths import CONFIG_FILE, HOOKS, SITE_SRC
from catalog.sitegen.search import BUNDLE, MANIFEST, SHARD_POSTS, copy_digest, index_site, search_copy
from catalog.sitegen.sitemap import write_sitemap
from catalog.sitegen.writer import DocsWriter
from catalog.sitegen.stamp import SHELL_NAME
from catalog.sitegen.swap import Generations

MKDOCS_INPUTS = "mkdocs-inputs.json"  # beside the mkdocs folder: what it was last built from, and its warnings
DIGESTS = "site-digests.json"  # where builds before swap.py kept the site's file digests (moved on first use)
MKDOCS_SITEMAPS = ("sitemap.xml", "sitemap.xml.gz")  # mkdocs' own lists only the pages it built
DEFAULT_OUT = Path("build")


@dataclass
class BuildResult:
    docs_dir: Path
    site_dir: Path
    generated: GenerateStats
    generate_s: float
    mkdocs_s: float
    search_s: float = 0.0
    stamp_s: float = 0.0
    site_written: int = 0  # files of the site written (changed or new) by this build
    site_removed: int = 0
    warnings: list[str] = field(default_factory=list)
    site_url: str = ""
    sitemap_urls: int = 0  # pages the sitemap lists (0 without a site URL)

    def as_dict(self) -> dict[str, Any]:
        return {"docs_dir": str(self.docs_dir), "site_dir": str(self.site_dir), "pages": self.generated.pages,
                "written": self.generated.written, "removed": self.generated.removed,
                "counts": self.generated.counts, "rendered": self.generated.rendered, "generate_s": round(self.generate_s, 3),
                "mkdocs_s": round(self.mkdocs_s, 3), "stamp_s": round(self.stamp_s, 3),
                "search_s": round(self.search_s, 3), "site_written": self.site_written,
                "site_removed": self.site_removed, "warnings": self.warnings, "site_url": self.site_url,
                "sitemap_urls": self.sitemap_urls}


def out_dirs(out: Path | None) -> tuple[Path, Path]:
    out = Path(out or DEFAULT_OUT).resolve()
    site_src = SITE_SRC.resolve()
    if out == site_src or site_src in out.parents or out in site_src.parents:
        raise DigestError(f"--out {out} would overwrite the site sources; choose a build folder such as build/")
    return out / "docs", out / "site"


class _Collect(logging.Handler):
    """Keeps mkdocs' warnings so the CLI can report them (and strict can fail on them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def mkdocs_config(docs_dir: Path, site_dir: Path, *, strict: bool = False, config_file: Path = CONFIG_FILE,
                  **overrides: Any):
    # The hooks are named by absolute path: mkdocs.yml names them relative to a checkout's root,
    # which an installed wheel does not have.
    overrides.setdefault("hooks", list(HOOKS))
    from mkdocs.config import load_config

    if not config_file.exists():
        raise DigestError(f"no mkdocs configuration at {config_file}: the package was installed without its "
                          "site content (site/ and mkdocs.yml)")
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    cwd = os.getcwd()
    os.chdir(config_file.parent)  # the theme's custom_dir and extra files are relative to mkdocs.yml
    try:
        return load_config(config_file=str(config_file), docs_dir=str(docs_dir), site_dir=str(site_dir),
                           strict=strict, **overrides)
    finally:
        os.chdir(cwd)


def run_mkdocs(docs_dir: Path, site_dir: Path, *, strict: bool = False, site_url: str = "") -> list[str]:
    """`mkdocs build` over `docs_dir` into `site_dir` (emptied first); returns the warnings,
    raises DigestError when it fails."""
    from mkdocs.commands.build import build
    from mkdocs.exceptions import Abort, MkDocsException

    os.environ["NO_MKDOCS_2_WARNING"] = "1"
    config = mkdocs_config(docs_dir, site_dir, strict=strict, site_url=site_url or None)
    collect = _Collect()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(collect)
    try:
        build(config)
    except (Abort, MkDocsException) as exc:
        detail = "; ".join(collect.messages[:5])
        raise DigestError(f"mkdocs build failed: {exc}" + (f" ({detail})" if detail else "")) from exc
    finally:
        logger.removeHandler(collect)
    return collect.messages


def _mkdocs_if_needed(docs_dir: Path, built_dir: Path, stats: GenerateStats, key: str, *, strict: bool,
                      site_url: str) -> list[str]:
    """Run mkdocs unless its last complete run was over the same docs (the generator wrote and
    removed nothing since) with the same templates, theme, configuration and options (`key`):
    a rebuild after no change, or after a change only stamped pages show, skips it."""
    record = docs_dir.parent / MKDOCS_INPUTS
    try:
        last = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = None
    if (isinstance(last, dict) and last.get("key") == key and stats.written == 0 and stats.removed == 0
            and built_dir.is_dir() and isinstance(last.get("warnings"), list)):
        return last["warnings"]
    record.unlink(missing_ok=True)  # a run killed half-way leaves no record: the next build runs mkdocs again
    warnings = run_mkdocs(docs_dir, built_dir, strict=strict, site_url=site_url)
    record.write_text(json.dumps({"key": key, "warnings": warnings}), encoding="utf-8")
    return warnings


def file_digests(root: Path) -> dict[str, str]:
    """The SHA-256 of every file under `root` (the digests a DocsWriter keeps), read from the files."""
    out = {}
    for folder, _dirs, files in os.walk(root):
        rel_dir = Path(folder).relative_to(root).as_posix()
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            out[rel] = hashlib.sha256(Path(folder, name).read_bytes()).hexdigest()
    return out


def publish(built: Path, site: DocsWriter, search_hashes: dict[str, bytes | None], skip: tuple[str, ...] = ()) -> None:
    """Copy what mkdocs built into the site (each file only when its bytes changed), but the
    shells and the top-level files `skip`; `search_hashes` receives the SHA-256 of each HTML
    page's search copy."""
    for folder, dirs, files in os.walk(built):
        dirs[:] = [d for d in dirs if d != SHELL_NAME]
        rel_dir = Path(folder).relative_to(built).as_posix()
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel in skip:
                continue
            data = Path(folder, name).read_bytes()
            site.data(rel, data)
            if name.endswith(".html"):
                search_hashes[rel] = copy_digest(search_copy(data))


def build_site(engine: Engine, out: Path | None = None, *, strict: bool = False,
               run_roots: list[Path] | None = None, full: bool = False, stamp: bool = True,
               shard_posts: int | None = None, site_url: str | None = None) -> BuildResult:
    """Generate the pages of the whole catalog, build the HTML site, index it for search (Pagefind).

    `out` (default ``build/``) receives ``docs/``, ``mkdocs/`` and ``site/``. `strict`
    fails the build on any mkdocs warning, broken links included. Only files whose bytes
    changed are written; `full` empties ``site/`` first. `stamp=False` has mkdocs render
    every page (the plain path, for comparison; much slower). The search index is cut by
    date into shards of `shard_posts` posts (default SHARD_POSTS); only shards whose pages
    changed are indexed again (catalog/sitegen/search.py). `site_url`: the site's public
    address (absolute http(s) URL; DigestError otherwise), see the module's docstring.
    ``out/site`` is switched to the new site only once all of it is written.
    """
    site_url = normalise_site_url(site_url)
    docs_dir, site_dir = out_dirs(out)
    built_dir = docs_dir.parent / "mkdocs"
    generations = Generations(site_dir)
    with generations.locked():
        t0 = time.perf_counter()
        stats = generate_docs(engine, docs_dir, run_roots=run_roots, stamp=stamp, site_url=site_url)
        t1 = time.perf_counter()
        build_key = build_digest(site_url=site_url)
        warnings = _mkdocs_if_needed(docs_dir, built_dir, stats, page_digest((build_key, strict)),
                                     strict=strict, site_url=site_url)
        t2 = time.perf_counter()
        new, previous = generations.begin(fresh=full, legacy_digests=docs_dir.parent / DIGESTS)
        if previous is None:  # a killed build had started on it: what it holds is known only by reading it
            previous = file_digests(new)
            generations.exact = True
            (new / BUNDLE / MANIFEST).unlink(missing_ok=True)  # and its search bundles are indexed afresh
        site = DocsWriter(new, previous)
        search_hashes: dict[str, bytes | None] = {}
        publish(built_dir, site, search_hashes, skip=MKDOCS_SITEMAPS if site_url else ())
        keys = Inputs(build_key)
        inputs = {}
        if stats.plan is not None:
            stats.rendered = stats.plan.stamp(built_dir, site, search_hashes, previous=generations.inputs,
                                              inputs=keys)
            inputs = stats.plan.inputs
        write_feeds(site, stats.feeds, site_url, _feed_check(keys, site, site_url, generations.inputs, inputs))
        sitemap_urls = write_sitemap(site.text, site_url, list(site.digests)) if site_url else 0
        # the standby's files are its digests' (a served generation, hard-linked, may hold more)
        removed = site.remove_stale(keep=(BUNDLE,), known=previous if generations.exact else None)
        t3 = time.perf_counter()
        search_s = index_site(new, stats.post_pages, shard_posts=shard_posts or SHARD_POSTS,
                              page_hashes=search_hashes, post_keys=stats.post_keys, papers=stats.paper_pages,
                              pages=list(site.digests))
        generations.commit(new, _compact(site.digests), _compact(inputs))
    return BuildResult(docs_dir, site_dir, stats, t1 - t0, t2 - t1, search_s, t3 - t2, site.written, removed,
                       warnings, site_url, sitemap_urls)


def _feed_check(keys: Inputs, site: DocsWriter, site_url: str, previous: dict, inputs: dict):
    """`unchanged(feed)` for write_feeds: records the feed's inputs digest in `inputs`; True (and
    the files kept) when the generation being updated wrote it from the same inputs."""
    def unchanged(feed) -> bool:
        key = keys.feed_key(feed, site_url)
        for path in feed.paths:
            inputs[path] = [key, None]
        old = previous.get(feed.path)
        return isinstance(old, list) and old[:1] == [key] and all([site.keep(path) for path in feed.paths])
    return unchanged


def _compact(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def serve_site(engine: Engine, db_path: Path | str, out: Path | None = None, *, host: str = "127.0.0.1",
               port: int = 8000, open_browser: bool = False) -> None:
    """Serve the site with live reload; the catalog is re-read when the database file changes.

    mkdocs serve watches the generated docs, the templates and the overrides; a hook
    re-generates the Markdown before each rebuild (files are only rewritten when their
    content changed, so a rebuild never triggers itself).
    """
    from mkdocs.commands.serve import serve

    from catalog.db import is_url

    docs_dir, _ = out_dirs(out)
    generate_docs(engine, docs_dir, feeds_in_docs=True)
    os.environ["NO_MKDOCS_2_WARNING"] = "1"
    # A server catalog (a URL) is passed as it is; a file is made absolute and watched for changes.
    server_db = is_url(db_path)
    os.environ["DIGEST_SITE_DB"] = str(db_path) if server_db else str(Path(db_path).resolve())
    os.environ["DIGEST_SITE_DOCS"] = str(docs_dir)
    # `hooks=` replaces the list in mkdocs.yml, so it names those hooks again
    hooks = [*HOOKS, str(Path(__file__).with_name("serve_hook.py"))]
    watch = [str(SITE_SRC), str(CONFIG_FILE)] + ([] if server_db else [str(Path(db_path).resolve())])
    cwd = os.getcwd()
    os.chdir(CONFIG_FILE.parent)
    try:
        # no site_dir: mkdocs serve builds into a temporary folder of its own (and refuses one given)
        serve(config_file=str(CONFIG_FILE), docs_dir=str(docs_dir),
              dev_addr=f"{host}:{port}", open_in_browser=open_browser, livereload=True,
              watch=watch, hooks=hooks)
    finally:
        os.chdir(cwd)
