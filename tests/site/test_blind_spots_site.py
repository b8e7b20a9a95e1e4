"""Site behaviours a mutation probe (issue 35) showed no test would notice when broken.

One small hand-made catalog (five posts, three sources, two papers, two tags) is built
into a site once per engine; every expected value below is counted from that catalog
as written here, never taken from the code under test.
"""

from __future__ import annotations

import gzip
import json
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pytest

from catalog.db import open_db
from catalog.ingest import ingest_records
from catalog.sitegen.build import build_site
from scrapers.records import PostRecord, SourceRecord

OLD_PAPER, NEW_PAPER = "2101.00001", "2306.00002"
# (source, message id, date, title, papers, tags); the newest post is 2023-07-01
POSTS = [
    ("alpha_ch", "1", datetime(2021, 3, 1), "Sparse attention one", (OLD_PAPER,), ("sparse",)),
    ("beta_ch", "1", datetime(2021, 3, 5), "Sparse attention two", (OLD_PAPER,), ()),
    ("gamma_ch", "1", datetime(2021, 4, 10), "Sparse attention three", (OLD_PAPER,), ("sparse",)),
    ("alpha_ch", "2", datetime(2023, 6, 20), "Diffusion four", (NEW_PAPER,), ("diffusion",)),
    ("beta_ch", "2", datetime(2023, 7, 1), "Diffusion five", (), ("diffusion",)),
]
NEWEST_FIRST = ["Diffusion five", "Diffusion four", "Sparse attention three", "Sparse attention two",
                "Sparse attention one"]
SHARD_POSTS = 2


def make_catalog(engine) -> None:
    ingest_records(engine, [
        PostRecord(source=SourceRecord(kind="telegram", handle=handle, title=handle.split("_")[0].title()),
                   external_id=ext, published_at=when.replace(tzinfo=timezone.utc), title=title,
                   text=f"{title}: notes on the paper{' ' + papers[0] if papers else ''}, with a worked example.",
                   arxiv_ids=papers, hashtags=tags, language="en")
        for handle, ext, when, title, papers, tags in POSTS])


@pytest.fixture(scope="module")
def small_site(module_db_target, tmp_path_factory):
    engine = open_db(module_db_target)
    make_catalog(engine)
    out = tmp_path_factory.mktemp("blind-spots-site") / "out"
    result = build_site(engine, out, strict=True, run_roots=[], shard_posts=SHARD_POSTS)
    yield dict(engine=engine, result=result, site=result.site_dir)
    engine.dispose()


# ---------------------------------------------------------------- feeds: relative links

def _feed_links(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    if root.tag == "rss":
        return [el.text for el in root.iter("link")]
    return [el.get("href") for el in root.iter("{http://www.w3.org/2005/Atom}link")
            if el.get("rel") in ("self", "alternate")]


def _resolves(site: Path, feed: Path, href: str) -> bool:
    target = (feed.parent / href).resolve()
    return site.resolve() in (target, *target.parents) and (
        (target / "index.html").is_file() if href.endswith("/") or href in ("", "./") else target.is_file())


def test_every_relative_link_of_every_feed_resolves(small_site):
    """1 site-wide feed (Atom and RSS), 3 sources, 2 tags, 2 papers: each link climbs to a page that exists."""
    site = small_site["site"]
    feeds = sorted(p.relative_to(site).as_posix() for p in (site / "feeds").rglob("*.xml"))
    assert len(feeds) == 1 + 1 + 3 + 2 + 2, feeds
    assert {PurePosixPath(f).parent.as_posix() for f in feeds} == {"feeds", "feeds/sources", "feeds/tags",
                                                                   "feeds/papers"}
    checked = 0
    for rel in feeds:
        links = _feed_links(site / rel)
        assert links, rel
        for href in links:
            assert not href.startswith(("/", "http")), (rel, href)
            assert _resolves(site, site / rel, href), (rel, href)
            checked += 1
    # per feed: self + alternate (Atom) or the channel link (RSS), and one link per entry
    entries = {"all": 5, "sources": 5, "tags": 4, "papers": 4}
    assert checked == 2 * 8 + entries["all"] + entries["sources"] + entries["tags"] + entries["papers"] \
        + 1 + entries["all"]


# ---------------------------------------------------------------- "Most discussed": all time and recent

def test_most_discussed_lists_all_time_and_the_last_30_days(small_site):
    """All time: the old paper (3 sources) then the new one (1); the 30 days before the newest post
    (2023-07-01) hold only the new paper."""
    page = (small_site["site"] / "papers" / "discussed" / "index.html").read_text(encoding="utf-8")
    recent = page[page.index('id="recent"'):page.index('id="all-time"')]
    all_time = page[page.index('id="all-time"'):]
    assert f"arXiv:{NEW_PAPER}" in recent and f"arXiv:{OLD_PAPER}" not in recent
    assert 0 < all_time.index(f"arXiv:{OLD_PAPER}") < all_time.index(f"arXiv:{NEW_PAPER}")


# ---------------------------------------------------------------- search shards: cut newest first

def _shard_titles(site: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in sorted((site / "pagefind").glob("shard-*/fragment/*.pf_fragment")):
        record = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8")[len("pagefind_dcd"):])
        out.setdefault(path.parent.parent.name, []).append(record["meta"].get("title", ""))
    return out


def test_search_shards_hold_the_oldest_posts_in_the_first_shard(small_site):
    """Five posts, two a shard, cut from the oldest: shard 0 has posts one and two, shard 1 three
    and four, shard 2 the newest post (papers and the other searchable pages have shards of their own)."""
    shards = _shard_titles(small_site["site"])

    def posts_in(shard: str) -> set[str]:
        return {t for t in NEWEST_FIRST for title in shards.get(shard, []) if title.startswith(t)}

    assert posts_in("shard-0000") == {"Sparse attention one", "Sparse attention two"}
    assert posts_in("shard-0001") == {"Sparse attention three", "Diffusion four"}
    assert posts_in("shard-0002") == {"Diffusion five"}


# ---------------------------------------------------------------- incremental build: files missing on disk

def _files(folder: Path) -> set[str]:
    """The site's files, Pagefind's bundle as its shard folders (Pagefind names its index files by
    hashes that differ from one run of it to the next, even over the same pages)."""
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    bundles = ("pagefind/shard-", "pagefind/papers-", "pagefind/pages/")
    return {f for f in files if not f.startswith(bundles)} | {"/".join(f.split("/")[:2]) for f in files}


def test_a_deleted_site_folder_is_rebuilt_whole(small_site, tmp_path):
    """Delete the built site (keeping the build's digests beside it) and build again: every file
    comes back, none is skipped as "unchanged since the last build"."""
    engine = small_site["engine"]
    first = build_site(engine, tmp_path / "out", run_roots=[], shard_posts=SHARD_POSTS)
    site = first.site_dir
    before = _files(site)
    assert any(f.startswith("posts/diffusion-five") for f in before) and "index.html" in before
    shutil.rmtree(site.resolve())  # the served generation (the site folder is a link to it, see swap.py)
    again = build_site(engine, tmp_path / "out", run_roots=[], shard_posts=SHARD_POSTS)
    assert _files(site) == before
    assert again.site_written == first.site_written
    # and a single deleted page comes back on its own
    page = next(p for p in (site / "posts").glob("*/index.html"))
    page.unlink()
    third = build_site(engine, tmp_path / "out", run_roots=[], shard_posts=SHARD_POSTS)
    assert page.is_file() and third.site_written == 1


# ---------------------------------------------------------------- the incremental writer itself

def test_docs_writer_writes_only_what_changed_or_is_missing(tmp_path):
    from catalog.errors import DigestError
    from catalog.sitegen.writer import MARKER, DocsWriter, load_digests, save_digests

    site = tmp_path / "site"
    first = DocsWriter(site, {})
    first.text("posts/a/index.html", "A")
    first.text("posts/b/index.html", "B")
    first.data("feeds/all.atom.xml", b"<feed/>")
    assert first.written == 3 and first.has("posts/a/index.html") and not first.has("posts/c/index.html")
    save_digests(tmp_path / "digests.json", first.digests)
    digests = load_digests(tmp_path / "digests.json")
    assert set(digests) == {"posts/a/index.html", "posts/b/index.html", "feeds/all.atom.xml"}

    (site / "posts" / "b" / "index.html").unlink()  # deleted by hand since the last build
    again = DocsWriter(site, digests)
    again.text("posts/a/index.html", "A")  # unchanged: skipped
    again.text("posts/b/index.html", "B")  # unchanged but missing on disk: written
    again.text("posts/c/index.html", "C")  # new
    assert again.written == 2 and (site / "posts/b/index.html").read_text() == "B"
    (site / MARKER).write_text("")
    (site / "pagefind").mkdir()
    (site / "pagefind" / "kept.js").write_text("")
    assert again.remove_stale(keep=("pagefind",)) == 1  # feeds/all.atom.xml, not written this time
    assert not (site / "feeds").exists()  # its folder, left empty, is gone too
    assert (site / MARKER).exists() and (site / "pagefind" / "kept.js").exists()

    plain = DocsWriter(site)  # no digests: compares with the bytes on disk
    plain.text("posts/a/index.html", "A")
    plain.text("posts/c/index.html", "C, edited")
    assert plain.written == 1
    for bad in ("/etc/passwd", "../x", "a/../b", "a//b", "a\\b", "./a", ""):
        with pytest.raises(DigestError, match="refusing to write outside"):
            plain.text(bad, "x")
    for content in ("{not json", "[1, 2]"):
        (tmp_path / "digests.json").write_text(content)
        assert load_digests(tmp_path / "digests.json") == {}
    assert load_digests(tmp_path / "missing.json") == {}


def test_docs_writer_copies_a_file_again_only_when_it_changed(tmp_path):
    import os

    from catalog.sitegen.writer import DocsWriter

    source = tmp_path / "plot.png"
    source.write_bytes(b"png-1")
    writer = DocsWriter(tmp_path / "docs")
    writer.copy("runs/plot.png", source)
    target = tmp_path / "docs" / "runs" / "plot.png"
    assert writer.written == 1 and target.read_bytes() == b"png-1"
    writer.copy("runs/plot.png", source)  # same size, not newer: kept
    assert writer.written == 1
    source.write_bytes(b"png-22")  # another size
    writer.copy("runs/plot.png", source)
    assert writer.written == 2 and target.read_bytes() == b"png-22"
    source.write_bytes(b"png-33")  # same size, newer than the copy
    stamp = target.stat().st_mtime
    os.utime(source, (stamp + 10, stamp + 10))
    writer.copy("runs/plot.png", source)
    assert writer.written == 3 and target.read_bytes() == b"png-33"


def test_stale_files_are_all_counted_and_digests_saved_in_one_stable_form(tmp_path):
    """Three files left from an earlier build: three removed. The digests file is the same bytes for the
    same digests whatever order they were recorded in (sorted keys, no spaces)."""
    from catalog.sitegen.writer import DocsWriter, load_digests, save_digests

    site = tmp_path / "site"
    for rel in ("old/a.html", "old/b.html", "c.xml", "kept.html"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    writer = DocsWriter(site)
    writer.text("kept.html", "kept.html")
    assert writer.written == 0 and writer.remove_stale() == 3
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*")) == ["kept.html"]
    save_digests(tmp_path / "d1.json", {"posts/b/index.html": "bb", "index.html": "aa"})
    save_digests(tmp_path / "d2.json", {"index.html": "aa", "posts/b/index.html": "bb"})
    assert (tmp_path / "d1.json").read_bytes() == (tmp_path / "d2.json").read_bytes() == \
        b'{"index.html":"aa","posts/b/index.html":"bb"}'
    assert load_digests(tmp_path / "d1.json") == {"index.html": "aa", "posts/b/index.html": "bb"}


def test_a_copy_as_new_as_its_source_is_kept(tmp_path):
    """Same size and the same modification time as the source: not copied again."""
    import os

    from catalog.sitegen.writer import DocsWriter

    source = tmp_path / "plot.png"
    source.write_bytes(b"png-1")
    writer = DocsWriter(tmp_path / "docs")
    writer.copy("runs/plot.png", source)
    target = tmp_path / "docs" / "runs" / "plot.png"
    stamp = source.stat().st_mtime
    os.utime(target, (stamp, stamp))
    writer.copy("runs/plot.png", source)
    assert writer.written == 1
