"""Publishing the site (issue 31): --site-url (sitemap, canonical links, link cards, absolute
feed links), hostile text inert in the new tags, atomic builds that survive being killed.
`digest site deploy` and the example workflow: test_deploy.py; a subpath site in Chromium:
test_publish_browser.py.

The built-site checks run on both engines (one build per engine, `published`); the kill test
drives the installed `digest` script in real subprocesses on a SQLite catalog (what it tests
is the filesystem, which the engine does not touch; test_demo checks both engines build the
same files).
"""

from __future__ import annotations

import html.parser
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest

from catalog.db import open_db
from catalog.demo import sample_corpus
from catalog.errors import DigestError
from catalog.ingest import ingest_paths, ingest_records
from catalog.sitegen.build import build_site
from catalog.sitegen.meta import normalise_site_url
from catalog.sitegen.sitemap import MAX_URLS, sitemap_files
from scrapers.records import PostRecord, SourceRecord
from test_site import build_sample_site, make_catalog

REPO = Path(__file__).resolve().parents[2]
DIGEST = str(Path(sys.executable).with_name("digest"))
SITE = "https://example.org/digest/"
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
HOSTILE_TITLE = 'Quote " and </title><script>alert(8)</script>\nsecond line'
HOSTILE_TEXT = 'Says "hi" </title><meta http-equiv="refresh" content="0;url=https://evil.example/">\n\n' + "long " * 3000


# ------------------------------------------------------------------ helpers

class Head(html.parser.HTMLParser):
    """The tags of a page as a browser's tokenizer sees them: every start tag with its
    (unescaped) attributes, and the text of <title>."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.titles: list[str] = []
        self._in_title = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_title = tag == "title"
        if self._in_title:
            self.titles.append("")

    def handle_endtag(self, tag):
        self._in_title = False if tag == "title" else self._in_title

    def handle_data(self, data):
        if self._in_title:
            self.titles[-1] += data

    def all(self, tag: str, **match: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in match.items())]

    def meta(self, key: str) -> list[str]:
        return [a["content"] for a in self.all("meta") if a.get("property") == key or a.get("name") == key]


def pages(site: Path) -> dict[str, Path]:
    """Every HTML page of a built site by its URL path (found by walking the folder, not from the builder)."""
    out = {}
    for folder, dirs, files in os.walk(site):
        rel = Path(folder).relative_to(site).as_posix()
        dirs[:] = [d for d in dirs if not (rel == "." and d == "pagefind")]
        for name in files:
            if name.endswith(".html") and not (rel == "." and name == "404.html"):
                path = ("" if rel == "." else rel + "/") + name
                out[path[:-len("index.html")] if name == "index.html" else path] = Path(folder, name)
    return out


def tree(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            rel = Path(root, name).relative_to(folder).as_posix()
            if not rel.startswith(skip):
                out[rel] = Path(root, name).read_bytes()
    return out


def digest(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DIGEST, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=600)


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def hostile_post() -> PostRecord:
    return PostRecord(source=SourceRecord(kind="telegram", handle="meta_channel", title='Chan "nel" </title>'),
                      external_id="1", published_at=datetime(2021, 5, 6, tzinfo=timezone.utc), title=HOSTILE_TITLE,
                      text=HOSTILE_TEXT, hashtags=('q"uote',), language="en")


@pytest.fixture(scope="module")
def published(module_db_target, tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    engine = make_catalog(open_db(module_db_target), folder)
    ingest_records(engine, [hostile_post()])
    result = build_site(engine, folder / "out", strict=True, site_url="https://Example.org/digest")
    yield {"result": result, "site": result.site_dir, "pages": pages(result.site_dir)}
    engine.dispose()


# ------------------------------------------------------------------ the site URL

@pytest.mark.parametrize("given, expected", [
    ("https://example.org/digest/", "https://example.org/digest/"),
    ("https://Example.ORG/digest", "https://example.org/digest/"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
    ("  https://example.org/a b/  ", None),  # a space inside
    ("", ""), (None, ""),
])
def test_site_url_is_normalised(given, expected):
    if expected is None:
        with pytest.raises(DigestError, match="--site-url"):
            normalise_site_url(given)
    else:
        assert normalise_site_url(given) == expected


@pytest.mark.parametrize("bad", ["example.org/digest", "/digest/", "ftp://example.org/", "javascript:alert(1)",
                                 "https://example.org/?q=1", "https://example.org/#top", 'https://ex"ample.org/',
                                 "https://user:pw@example.org/", "https://"])
def test_a_bad_site_url_is_one_clear_error(bad):
    with pytest.raises(DigestError, match="not a site address"):
        normalise_site_url(bad)


def test_site_build_rejects_a_bad_site_url_before_building(sample_engine, catalog_cli, tmp_path):
    result = catalog_cli("site", "build", "--out", str(tmp_path / "out"), "--site-url", "ftp://example.org/")
    assert result.exit_code == 1 and "not a site address" in result.output
    assert not (tmp_path / "out" / "site").exists()


# ------------------------------------------------------------------ sitemap, canonical links, cards

def test_the_sitemap_lists_every_page_by_its_public_address(published):
    root = ET.fromstring((published["site"] / "sitemap.xml").read_bytes())
    assert root.tag == f"{SM}urlset"
    listed = [loc.text for loc in root.iter(f"{SM}loc")]
    assert sorted(listed) == sorted(SITE + path for path in published["pages"])
    assert len(listed) == published["result"].sitemap_urls > 90
    assert not (published["site"] / "sitemap.xml.gz").exists()  # mkdocs' own (only its pages) is not published


def test_a_sitemap_above_50000_urls_is_an_index_of_sitemaps():
    paths = [f"posts/p{i:06d}/" for i in range(MAX_URLS + 1)]
    files = sitemap_files(SITE, paths)
    index = ET.fromstring(files["sitemap.xml"])
    assert index.tag == f"{SM}sitemapindex"
    parts = [loc.text for loc in index.iter(f"{SM}loc")]
    assert parts == [SITE + "sitemaps/sitemap-1.xml", SITE + "sitemaps/sitemap-2.xml"]
    urls = [[loc.text for loc in ET.fromstring(files[p[len(SITE):]]).iter(f"{SM}loc")] for p in parts]
    assert [len(u) for u in urls] == [50_000, 1]
    assert urls[0] + urls[1] == [SITE + p for p in paths]
    assert len(ET.fromstring(sitemap_files(SITE, paths[:MAX_URLS])["sitemap.xml"])) == MAX_URLS  # one file up to 50,000


def test_every_page_names_its_canonical_address_once(published):
    for path, file in published["pages"].items():
        head = Head(file.read_text(encoding="utf-8"))
        assert [a["href"] for a in head.all("link", rel="canonical")] == [SITE + path], path


def card(page: Path) -> dict[str, list[str]]:
    head = Head(page.read_text(encoding="utf-8"))
    keys = ("og:title", "og:description", "og:url", "og:type", "twitter:card", "twitter:title", "twitter:description")
    return {k: head.meta(k) for k in keys}


def test_post_paper_tag_source_and_reproduction_pages_have_link_cards(published):
    by_title = {}
    for path, file in published["pages"].items():
        found = card(file)
        if found["og:title"]:
            assert found["og:url"] == [SITE + path] and found["twitter:card"] == ["summary"], path
            assert found["twitter:title"] == found["og:title"], path
            by_title[found["og:title"][0]] = (path, found)
    # expected values: what make_catalog and the sample corpus put in the catalog
    path, paper = by_title["Scheduled DropHead: A Regularization Method for Transformer Models"]
    assert path.startswith("papers/")
    assert paper["og:description"] == ["We introduce DropHead, a structured dropout method for multi-head attention."]
    path, repro = by_title["Tiny reproduction"]
    assert path == "reproductions/tinyrepro/" and repro["og:description"] == ["Drops whole attention heads."]
    path, source = by_title["Hostile <b>channel</b>"]
    assert path.startswith("sources/") and source["og:description"][0].startswith("1 posts from Hostile <b>channel</b>")
    path, tag = by_title["#{{ jinja }}"]
    assert path.startswith("tags/") and tag["og:description"] == ["1 posts tagged #{{ jinja }} in the paper-digest catalog."]
    path, post = by_title["复现笔记"]
    assert path.startswith("posts/") and post["og:description"] == ["我们复现了多头自注意力的实现。隐变量模型的训练很稳定。"]
    sections = {p.split("/")[0] for p, _ in by_title.values()}
    assert {"posts", "papers", "tags", "sources", "reproductions"} <= sections


def test_hostile_text_stays_inert_in_the_meta_tags(published):
    page = next(f for f in published["pages"].values()
                if card(f)["og:title"][:1] == [" ".join(HOSTILE_TITLE.split())])
    text = page.read_text(encoding="utf-8")
    head = Head(text)
    assert len(head.titles) == 1 and head.all("meta", **{"http-equiv": "refresh"}) == []
    assert "<script>alert(8)" not in text and "evil.example" not in [a.get("content", "") for a in head.all("meta")]
    description = head.meta("og:description")[0]
    assert description.startswith('Says "hi" </title><meta http-equiv="refresh" content="0;url=https://evil.example/"> long long')
    assert len(description) <= 200 and description.endswith("long…") and "\n" not in description
    assert head.meta("twitter:description") == [description]
    # the source and the tag of the hostile post: quotes in their names stay inside the attribute
    assert any(card(f)["og:title"] == ['Chan "nel" </title>'] for f in published["pages"].values())
    assert any(card(f)["og:title"] == ['#q"uote'] for f in published["pages"].values())


def test_every_feed_links_absolute_addresses(published):
    feeds = sorted((published["site"] / "feeds").rglob("*.xml"))
    assert len(feeds) > 10
    entries = 0
    for path in feeds:
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert parsed.feed.link.startswith(SITE), path
        for entry in parsed.entries:
            entries += 1
            assert entry.link.startswith(SITE + "posts/"), (path, entry.link)
            assert (published["site"] / entry.link[len(SITE):] / "index.html").is_file()
    assert entries > 50
    rss = feedparser.parse((published["site"] / "feeds" / "all.rss.xml").read_bytes())
    assert rss.version == "rss20" and rss.entries and all(e.link.startswith(SITE) for e in rss.entries)


def test_without_a_site_url_links_stay_relative(tmp_path_factory, lasting_target):
    built = build_sample_site(tmp_path_factory, lasting_target)  # the sample site test_site.py builds
    site = built["site"]
    for path, file in pages(site).items():
        head = Head(file.read_text(encoding="utf-8"))
        assert head.all("link", rel="canonical") == [] and head.meta("og:url") == [], path
    assert built["result"].sitemap_urls == 0
    atom = feedparser.parse((site / "feeds" / "all.atom.xml").read_bytes())
    assert atom.entries and all(e.link.startswith("../posts/") for e in atom.entries)
    post = next(f for p, f in pages(site).items() if p.startswith("posts/") and "archive" not in p and p != "posts/")
    assert card(post)["og:title"]  # the card is there, without an address


# ------------------------------------------------------------------ atomic builds

def new_posts(n: int, start: int = 0) -> list[PostRecord]:
    source = SourceRecord(kind="telegram", handle="kill_channel", title="Kill test")
    return [PostRecord(source=source, external_id=str(i), published_at=datetime(2022, 1, 1 + i % 28, tzinfo=timezone.utc),
                       title=f"Kill test post {i}", text=f"Post number {i} of the kill test #killtest", hashtags=("killtest",),
                       language="en") for i in range(start, start + n)]


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> bool:
    """SIGKILL the build (its whole process group: Pagefind and forked workers too) once `ready()`;
    False when it ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.wait()
    return False


@pytest.mark.slow
def test_a_build_killed_at_any_point_leaves_a_complete_site(tmp_path):
    db, out = tmp_path / "kill.db", tmp_path / "out"
    engine = open_db(db)
    ingest_paths(engine, sample_corpus())
    env = {"DIGEST_SITE_URL": SITE}
    first = digest("--db", str(db), "site", "build", "--out", str(out), env=env)
    assert first.returncode == 0, first.stderr
    link, gens = out / "site", out / ".site.generations"
    old_target, old_files = os.readlink(link), tree(link)
    ingest_records(engine, new_posts(30))
    engine.dispose()
    new_page = "posts/index.html"

    before: set[str] = set()  # the generations there when a build starts: the new one is none of them

    def new_generation() -> list[Path]:
        return [g for g in gens.glob("g*") if g.is_dir() and g.name not in before]

    def generation_started():
        return bool(new_generation())

    def new_pages_written():
        return any("Kill test post" in (g / new_page).read_text(encoding="utf-8", errors="replace")
                   for g in new_generation() if (g / new_page).exists())

    def search_reindexing():  # the sitemap is written after the pages; then a shard is removed or rewritten
        for g in new_generation():
            if (g / "sitemap.xml").exists() and (g / "sitemap.xml").stat().st_nlink == 1:
                entries = [s / "pagefind-entry.json" for s in (g / "pagefind").glob("shard-*")]
                if any(not e.exists() or e.stat().st_nlink == 1 for e in entries):
                    return True
        return False

    def digests_written():
        return any(gens.joinpath(g.name + ".json").exists() for g in new_generation())

    start = time.monotonic()
    points = [("after 1 s", lambda: time.monotonic() - start > 1.0), ("new generation", generation_started),
              ("pages stamped", new_pages_written), ("search index", search_reindexing),
              ("digests saved, about to flip", digests_written)]
    killed, flipped, pids = [], [], []
    for name, ready in points:
        start, before = time.monotonic(), {p.name for p in gens.iterdir()}
        proc = subprocess.Popen([DIGEST, "--db", str(db), "site", "build", "--out", str(out)],
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        pids.append(proc.pid)
        if kill_when(proc, ready):
            killed.append(name)
        if os.readlink(link) == old_target:
            assert tree(link) == old_files, f"killed at {name}: the served site changed"
        else:
            flipped.append(name)  # killed after the flip: the new site, complete (checked below)
            assert "Kill test post" in (link / new_page).read_text(encoding="utf-8")
    print("kill points:", killed, "after the flip:", flipped)
    assert len(killed) >= 4, killed  # the kills landed in the build
    assert not {"after 1 s", "new generation", "pages stamped"} & set(flipped), flipped
    done = digest("--db", str(db), "site", "build", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "Kill test post 29" in (link / new_page).read_text(encoding="utf-8")
    from catalog.sitegen.search import STAGE_PREFIX, stage_root

    left = [p for pid in pids for p in stage_root(out / "site").glob(f"{STAGE_PREFIX}{pid}-*")]
    assert left == []  # the search copies staged by the killed builds are gone
    live = Path(os.readlink(link)).name
    inputs = {p.name for p in gens.iterdir() if p.name.endswith(".inputs.json")}  # what their pages were rendered from
    kept = sorted(p.name for p in gens.iterdir() if p.name not in inputs)  # the live generation and the standby, both complete
    assert all(name.removesuffix(".inputs.json") in kept for name in inputs), (inputs, kept)
    assert len(kept) == 4 and live in kept and live + ".json" in kept and all(
        k.endswith(".json") or k + ".json" in kept for k in kept), kept
    # the finished site is the one a build from scratch makes
    fresh = build_site(open_db(db), tmp_path / "fresh", site_url=SITE, run_roots=[])
    assert tree(link, skip=("pagefind/",)) == tree(fresh.site_dir, skip=("pagefind/",))


def test_an_old_site_folder_becomes_the_first_generation(engine, tmp_path):
    """A site built before generations (a real folder and site-digests.json) is served until the new one is ready."""
    ingest_paths(engine, sample_corpus())
    out = tmp_path / "out"
    (out / "site" / "posts").mkdir(parents=True)
    (out / "site" / "index.html").write_text("<html>old site</html>")
    (out / "site-digests.json").write_text('{"index.html": "0"}')
    result = build_site(engine, out, run_roots=[])
    assert (out / "site").is_symlink() and "old site" not in (out / "site" / "index.html").read_text()
    assert not (out / "site-digests.json").exists() and result.site_written > 50
    # the old folder is the standby now, beside the new site, each with its digests (the new one
    # with what its pages were rendered from, too)
    assert sorted(p.name for p in (out / ".site.generations").iterdir()) == [
        "g000001", "g000001.json", "g000002", "g000002.inputs.json", "g000002.json"]
    assert os.readlink(out / "site").endswith("g000002")
