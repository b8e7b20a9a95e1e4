"""Benchmark: time to the first search result and bytes per query, our Pagefind search vs mkdocs' search.

    python bench/site_search.py [--posts 100000] [--papers 20000] [--site DIR] [--baseline-posts 10000]
                                [--baseline-dir DIR] [--index-only]

ours:      the real Search page of `digest site build` on a synthetic catalog of --posts posts
           (or an already built site: --site DIR, e.g. from `bench/site.py --keep DIR`).
           Each query runs on a freshly loaded page with the browser cache off; the clock
           starts when the query is submitted, the bytes are everything the server sends
           after the page itself (Pagefind's script, wasm, index chunks, filters, fragments).
baseline:  mkdocs-material's built-in search, configured as the site had it before
           (lang en/ru/zh), on --baseline-posts pages holding the same synthetic posts; the
           page is opened with ?q= (material runs the query as soon as its index is ready);
           the clock starts at navigation, the bytes are the search index and worker.
           `--baseline-dir DIR` keeps that build in DIR and reuses it on the next run.
--index-only: instead of a full site build of --posts posts (an hour and more on a busy
           2-core machine at 100k), take the Search page, theme assets and a few pages of
           --site, add --posts minimal post pages (title, text and filters marked up as
           our post pages are, without the theme) and index them with Pagefind as
           `digest site build` does. The search page, the index format and its size per
           post are the real ones; only the theme around each post is missing.
           `--keep DIR` keeps those pages in DIR for the next run.
Both in headless Chromium (Debian's chromium + chromedriver) against a local server on
127.0.0.1. Prints a table (ours: to the first result, and until the page is idle: older
shards, filter counts), then ours by file kind (KB/files, and when the last file of each
kind was sent); the last line is ratio=<ours median / baseline median>, first result
times. `--shard-posts N` sets the search shard size of --index-only.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import synthetic_records  # noqa: E402
from catalog.sitegen.search import SHARD_POSTS  # noqa: E402

QUERIES = ("model", "регуляризация", "注意力", "training attention", "kalomi")


class CountingServer:
    """Static files from `root` on 127.0.0.1; adds up response bytes per path."""

    def __init__(self, root: Path):
        bench = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def send_header(self, keyword, value):
                if keyword.lower() == "content-length":
                    with bench.lock:
                        bench.log.append((self.path, int(value), time.perf_counter()))
                super().send_header(keyword, value)

        self.lock = threading.Lock()
        self.log: list[tuple[str, int, float]] = []  # (path, bytes, when its headers went out)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def mark(self) -> int:
        with self.lock:
            return len(self.log)

    def since(self, mark: int, match=lambda path: True) -> int:
        with self.lock:
            return sum(n for path, n, _ in self.log[mark:] if match(path))

    def entries(self, mark: int) -> list[tuple[str, int, float]]:
        with self.lock:
            return list(self.log[mark:])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                              options=options)
    driver.set_page_load_timeout(300)
    driver.set_script_timeout(300)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


# Runs in the page: submit the query, resolve with the milliseconds until the first result shows.
OURS_JS = """
const [query, done] = [arguments[0], arguments[arguments.length - 1]];
const input = document.querySelector('#digest-search input[name=q]');
const list = document.querySelector('.digest-search__results');
const status = document.querySelector('.digest-search__status');
const t0 = performance.now();
const check = () => {
  if (list.children.length) { done({ms: performance.now() - t0, status: status.textContent}); return true; }
  if (status.textContent.startsWith('No results') || status.textContent.startsWith('The search index')) {
    done({ms: performance.now() - t0, status: status.textContent}); return true; }
  return false;
};
new MutationObserver((_, obs) => { if (check()) obs.disconnect(); })
  .observe(document.getElementById('digest-search'), {childList: true, subtree: true, characterData: true});
input.value = query;
input.form.requestSubmit();
"""

# Resolves once the Search page has nothing more in flight (search.js sets data-busy meanwhile).
IDLE_JS = """
const done = arguments[arguments.length - 1];
const poll = () => document.getElementById('digest-search').hasAttribute('data-busy') ? setTimeout(poll, 20) : done(true);
poll();
"""

# Runs in the page opened with ?q=: resolves with the milliseconds since navigation start.
MKDOCS_JS = """
const done = arguments[arguments.length - 1];
const poll = () => {
  const items = document.querySelectorAll('.md-search-result__item');
  const meta = document.querySelector('.md-search-result__meta');
  if (items.length || (meta && /No matching/.test(meta.textContent))) {
    done({ms: performance.now(), status: meta ? meta.textContent : ''}); return; }
  setTimeout(poll, 10);
};
poll();
"""


# What a query downloads, by kind of file (the first pattern that matches a path names it).
KINDS = (("manifest", re.compile(r"shards\.json")), ("js", re.compile(r"\.js$")),
         ("wasm", re.compile(r"\.pagefind$")), ("meta", re.compile(r"pagefind-entry\.json|\.pf_meta$")),
         ("filter", re.compile(r"\.pf_filter$")), ("index", re.compile(r"\.pf_index$")),
         ("fragment", re.compile(r"\.pf_fragment$")), ("other", re.compile("")))


def by_kind(entries: list[tuple[str, int, float]], t0: float) -> dict[str, tuple[int, int, float]]:
    """kind -> (bytes, files, ms after submit when the last one was sent)."""
    out: dict[str, tuple[int, int, float]] = {}
    for path, size, when in entries:
        kind = next(name for name, pattern in KINDS if pattern.search(path.split("?")[0]))
        n, files, last = out.get(kind, (0, 0, 0.0))
        out[kind] = (n + size, files + 1, max(last, (when - t0) * 1e3))
    return out


def measure_ours(driver, server: CountingServer, query: str) -> tuple[float, int, str, dict, float, int]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # the page's cache is off, but Pagefind's web worker fetches through the HTTP cache: empty it
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get(server.url + "search/")
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#digest-search input[name=q]"))
    mark = server.mark()
    t0 = time.perf_counter()
    result = driver.execute_async_script(OURS_JS, query)
    time.sleep(0.2)  # fragments of the first page of results finish arriving
    entries = server.entries(mark)
    # then everything the page goes on to load by itself (older shards, filter counts) until it is idle
    driver.execute_async_script(IDLE_JS)
    idle_ms = (time.perf_counter() - t0) * 1e3
    idle_bytes = server.since(mark)
    return result["ms"], sum(n for _, n, _ in entries), result["status"], by_kind(entries, t0), idle_ms, idle_bytes


def kind_table(rows) -> list[str]:
    """One line per query: KB and files per kind, and when the last file of the kind was sent (ms)."""
    kinds = [name for name, _ in KINDS if any(name in r[7] for r in rows)]
    lines = ["ours by file kind: KB/files@ms (ms: when the last file of the kind was sent, after submit)",
             f"{'query':<20} " + " ".join(f"{k:>16}" for k in kinds)]
    for r in rows:
        cells = [r[7].get(k) for k in kinds]
        lines.append(f"{r[0]:<20} " + " ".join(f"{f'{c[0] / 1e3:.0f}/{c[1]}@{c[2]:.0f}' if c else '-':>16}"
                                               for c in cells))
    return lines


def measure_mkdocs(driver, server: CountingServer, query: str) -> tuple[float, int, str]:
    mark = server.mark()
    driver.get(server.url + "?q=" + quote(query))
    result = driver.execute_async_script(MKDOCS_JS)
    return result["ms"], server.since(mark, lambda p: "search" in p), result["status"]


def build_ours(folder: Path, posts: int, papers: int, tags: int) -> Path:
    from catalog.db import open_db
    from catalog.ingest import ingest_records
    from catalog.sitegen.build import build_site

    engine = open_db(folder / "ours.db")
    ingest_records(engine, synthetic_records(posts, papers, tags))
    return build_site(engine, folder / "ours", run_roots=[]).site_dir


POST_PAGE = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
             "<article><div data-pagefind-body><h1>{title}</h1><div hidden data-pagefind-ignore>"
             "<span data-pagefind-filter=\"type\">post</span><span data-pagefind-filter=\"source\">{source}</span>"
             "<span data-pagefind-filter=\"language\">{language}</span>{tags}</div>"
             "<div class=\"digest-text\"><p>{text}</p></div>{terms}</div></article></body></html>")


def index_only_site(folder: Path, template_site: Path, posts: int, papers: int, tags: int,
                    shard_posts: int) -> Path:
    """The Search page of `template_site` over a Pagefind index of `posts` minimal post pages."""
    import shutil

    from catalog.sitegen.search import index_site

    site = folder / "site"
    for part in ("search", "assets", "index.html"):
        src, dst = template_site / part, site / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    done = site / "posts" / f".{posts}-{papers}-{tags}"  # pages kept from an earlier run (--keep)
    if not done.exists():
        write_minimal_posts(site, posts, papers, tags)
        done.touch()
    # posts are numbered oldest first (bench/site.py dates post i at 7*i hours)
    index_site(site, [f"posts/post-{i}/index.html" for i in reversed(range(posts))], shard_posts=shard_posts)
    return site


def write_minimal_posts(site: Path, posts: int, papers: int, tags: int) -> None:
    import html
    import shutil

    from catalog.sitegen.search import cjk_terms

    shutil.rmtree(site / "posts", ignore_errors=True)
    for i, rec in enumerate(synthetic_records(posts, papers, tags)):
        page = site / "posts" / f"post-{i}" / "index.html"
        page.parent.mkdir(parents=True)
        terms = cjk_terms(f"{rec.title}\n{rec.text}")
        page.write_text(POST_PAGE.format(
            title=html.escape(rec.title), source=html.escape(rec.source.title), language=rec.language,
            tags="".join(f'<span data-pagefind-filter="tag">#{html.escape(t)}</span>' for t in rec.hashtags),
            text=html.escape(rec.text).replace("\n", "<br>"),
            terms=f'<p hidden data-pagefind-weight="0.5">{html.escape(terms)}</p>' if terms else ""),
            encoding="utf-8")


def build_baseline(folder: Path, posts: int) -> Path:
    """mkdocs-material with its own search, as the site had it, over the synthetic posts."""
    docs = folder / "docs"
    (docs / "p").mkdir(parents=True, exist_ok=True)
    (docs / "index.md").write_text("# Home\n\nSynthetic posts.\n", encoding="utf-8")
    for i, rec in enumerate(synthetic_records(posts, max(posts // 5, 1), 500)):
        (docs / "p" / f"post-{i}.md").write_text(f"# {rec.title}\n\n{rec.text}\n", encoding="utf-8")
    cfg = folder / "mkdocs.yml"
    cfg.write_text(
        "site_name: baseline\ntheme:\n  name: material\n  font: false\n"
        "plugins:\n  - search:\n      lang: [en, ru, zh]\n"
        "nav:\n  - Home: index.md\nnot_in_nav: |\n  /p/\n", encoding="utf-8")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(cfg)], cwd=folder, env=env, check=True)
    return folder / "site"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--papers", type=int, default=20_000)
    ap.add_argument("--tags", type=int, default=500)
    ap.add_argument("--site", type=Path, help="An already built site of ours (skips our build).")
    ap.add_argument("--baseline-posts", type=int, default=10_000)
    ap.add_argument("--baseline-dir", type=Path, help="Build the baseline here, or reuse the one built here.")
    ap.add_argument("--queries", nargs="*", default=list(QUERIES))
    ap.add_argument("--index-only", action="store_true",
                    help="Minimal post pages + the real Search page of --site, instead of a full build.")
    ap.add_argument("--shard-posts", type=int, default=SHARD_POSTS, help="--index-only: posts per search shard.")
    ap.add_argument("--keep", type=Path, help="--index-only: keep the post pages here and reuse them next time "
                    "(the Search page, its assets and the index are redone on each run).")
    args = ap.parse_args()
    if args.index_only and not args.site:
        ap.error("--index-only takes the Search page from a built site: give --site DIR")

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        if args.index_only:
            ours_site = index_only_site((args.keep or tmp / "index-only").resolve(), args.site.resolve(),
                                        args.posts, args.papers, args.tags, args.shard_posts)
        elif args.site:
            ours_site = args.site.resolve()
        else:
            ours_site = build_ours(tmp, args.posts, args.papers, args.tags)
        ours_build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        base_dir = args.baseline_dir.resolve() if args.baseline_dir else tmp / "baseline"
        reuse = (base_dir / "site" / "search" / "search_index.json").exists()
        base_site = base_dir / "site" if reuse else build_baseline(base_dir, args.baseline_posts)
        base_build_s = time.perf_counter() - t0
        index_mb = (base_site / "search" / "search_index.json").stat().st_size / 1e6
        ours_posts = sum(1 for p in (ours_site / "posts").iterdir() if p.is_dir() and p.name != "archive")
        bundle_mb = sum(p.stat().st_size for p in (ours_site / "pagefind").rglob("*") if p.is_file()) / 1e6
        shard_count = len(json.loads((ours_site / "pagefind" / "shards.json").read_text())["shards"])

        ours_server, base_server = CountingServer(ours_site), CountingServer(base_site)
        driver = browser()
        rows = []
        try:
            for query in args.queries:
                o_ms, o_bytes, o_status, o_kinds, idle_ms, idle_bytes = measure_ours(driver, ours_server, query)
                b_ms, b_bytes, b_status = measure_mkdocs(driver, base_server, query)
                rows.append((query, o_ms, o_bytes, o_status, b_ms, b_bytes, b_status, o_kinds, idle_ms, idle_bytes))
        finally:
            driver.quit()
            ours_server.close()
            base_server.close()

    load = os.getloadavg()
    print(f"ours: {ours_posts} post pages, {shard_count} search shards, Pagefind bundles {bundle_mb:.1f} MB on disk"
          + (" (prebuilt)" if args.site and not args.index_only else f", built in {ours_build_s:.0f} s")
          + (" [--index-only: minimal post pages, real Search page]" if args.index_only else ""))
    print(f"baseline: {args.baseline_posts} posts, mkdocs search_index.json {index_mb:.1f} MB"
          + (" (prebuilt)" if reuse else f", built in {base_build_s:.0f} s"))
    print(f"cpu cores {os.cpu_count()}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print("ours ms/KB: to the first result (and its page of fragments); idle: until the page stops loading "
          "(older shards, filter counts)")
    print(f"{'query':<20} {'ours ms':>9} {'ours KB':>9} {'idle ms':>9} {'idle KB':>9}  {'mkdocs ms':>10} "
          f"{'mkdocs KB':>10}  ours / mkdocs status")
    for query, o_ms, o_bytes, o_status, b_ms, b_bytes, b_status, _, idle_ms, idle_bytes in rows:
        print(f"{query:<20} {o_ms:>9.0f} {o_bytes / 1e3:>9.0f} {idle_ms:>9.0f} {idle_bytes / 1e3:>9.0f}  "
              f"{b_ms:>10.0f} {b_bytes / 1e3:>10.0f}  {o_status[:40]!r} / {b_status[:24]!r}")
    print("\n".join(kind_table(rows)))
    ours_med = statistics.median(r[1] for r in rows)
    base_med = statistics.median(r[4] for r in rows)
    print(f"ours: median first result {ours_med:.0f} ms, max {max(r[1] for r in rows):.0f} ms, "
          f"max {max(r[2] for r in rows) / 1e3:.0f} KB per query (targets: <= 1000 ms, <= 1000 KB)")
    print(f"mkdocs search: median first result {base_med:.0f} ms, {max(r[5] for r in rows) / 1e3:.0f} KB per query")
    print(f"ratio={ours_med / base_med:.3f}")


if __name__ == "__main__":
    main()
