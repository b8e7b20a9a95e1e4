"""A site published under a subpath (/digest/, as a GitHub Pages project site is): built with
`--site-url http://127.0.0.1:PORT/digest/`, deployed with `digest site deploy --to www/digest`,
and served from the parent folder www/. Every link, asset, feed and the search work there:
a crawl follows every address the pages name, and headless Chromium renders the theme, walks
the navigation and searches.

Chromium as in test_site_browser.py (Debian's chromium and chromium-driver through selenium);
SQLite only, for the same reason as there.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import feedparser
import pytest

from catalog.db import open_db
from catalog.sitegen.build import build_site
from test_site import make_catalog
from test_site_browser import assert_no_alert, requested_hosts, search

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DIGEST = str(Path(sys.executable).with_name("digest"))


class StatusServer:
    """A static server of `root` on 127.0.0.1 that records the status of every request."""

    def __init__(self, root: Path):
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def log_request(self, code="-", size="-") -> None:
                with server.lock:
                    server.log.append((self.path, int(code) if str(code).isdigit() else 0,
                                       self.headers.get("Referer", "")))

        self.root = root
        self.lock = threading.Lock()
        self.log: list[tuple[str, int, str]] = []  # path, status, referring page
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def failures(self) -> list[tuple[str, int, str]]:
        with self.lock:
            return [entry for entry in self.log if entry[1] >= 400]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def subpath(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subpath")
    www = folder / "www"
    www.mkdir()
    server = StatusServer(www)
    base = server.url + "digest/"
    engine = make_catalog(open_db(folder / "catalog.db"), folder)
    build_site(engine, folder / "out", strict=True, site_url=base)
    deployed = subprocess.run([DIGEST, "site", "deploy", "--out", str(folder / "out"), "--to", str(www / "digest")],
                              capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stderr
    yield server, base
    server.close()
    engine.dispose()


class Refs(html.parser.HTMLParser):
    """Every address a page names: links, stylesheets, scripts, images, the search bundle."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name in ("href", "src") or (name == "data-bundle")):
                self.refs.append(value)


def fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def test_every_address_the_subpath_site_names_resolves_under_the_subpath(subpath):
    server, base = subpath
    origin = base.split("/digest/")[0]
    seen, queue, pages = {base}, [base], 0
    while queue:
        url = queue.pop()
        status, body, kind = fetch(url)
        assert status == 200, f"{url}: HTTP {status}"
        if "text/html" not in kind:
            continue
        pages += 1
        refs = Refs()
        refs.feed(body.decode("utf-8"))
        for ref in refs.refs:
            target = urldefrag(urljoin(url, ref))[0].split("?")[0]
            if not target.startswith(origin):
                assert urlsplit(target).scheme in ("http", "https", "mailto", "javascript") or ref.startswith("data:"), ref
                continue
            assert target.startswith(base), f"{url} names {ref}: outside /digest/"
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert pages > 90 and server.failures() == []
    # the feeds name absolute addresses under the subpath, and they resolve
    for feed in ("feeds/all.atom.xml", "feeds/all.rss.xml"):
        parsed = feedparser.parse(fetch(base + feed)[1])
        assert parsed.entries and not parsed.bozo
        for entry in parsed.entries:
            assert entry.link.startswith(base + "posts/") and fetch(entry.link)[0] == 200


def test_the_subpath_site_renders_navigates_and_searches_in_chromium(driver, subpath):
    from selenium.webdriver.common.by import By

    server, base = subpath
    driver.get(base)
    assert driver.title.startswith("paper-digest")
    # the theme's stylesheet applied: the header has the theme's colour, not the browser default
    colour = driver.execute_script("return getComputedStyle(document.querySelector('.md-header')).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
    assert driver.execute_script("return document.querySelectorAll('link[rel=stylesheet]').length") >= 2
    tab = next(el for el in driver.find_elements(By.CSS_SELECTOR, ".md-tabs__link") if el.text == "Papers")
    tab.click()
    assert driver.current_url == base + "papers/"
    link = driver.find_element(By.CSS_SELECTOR, "article a[href*='papers/2004-13342']")
    link.click()
    assert driver.current_url.startswith(base + "papers/")
    canonical = driver.find_element(By.CSS_SELECTOR, "link[rel=canonical]").get_attribute("href")
    assert canonical == driver.current_url
    og_url = driver.find_element(By.CSS_SELECTOR, "meta[property='og:url']").get_attribute("content")
    assert og_url == driver.current_url
    hits = search(driver, base, "drophead")
    assert hits and all(h["href"].startswith(base) for h in hits), hits
    assert any("/digest/posts/" in h["href"] for h in hits)
    driver.get(hits[0]["href"])
    assert driver.find_element(By.CSS_SELECTOR, "article h1").text
    assert_no_alert(driver)
    assert requested_hosts(driver) == {base.split("/")[2]}
    # mkdocs-material's script asks for sitemap.xml beside every <link rel="alternate"> (it looks for
    # language versions), so the feeds' folders are asked for one; that 404 is the theme's, and none else
    failures = [f for f in server.failures() if not re.fullmatch(r"/digest/feeds/([a-z]+/)?sitemap\.xml", f[0])]
    assert failures == [], failures
    # the not-found page of a subpath site loads its assets from the subpath
    status, body, _ = fetch(base + "404.html")
    assert status == 200 and b'href="/digest/assets/' in body
    assert os.path.islink(server.root / "digest")  # served through the symlink the deploy switches
