"""The static site: slugs, escaping, and one real `mkdocs build --strict` of the sample corpus.

The build (sample corpus + a hostile post + a reproduction with a run and a PNG plot)
happens once per test session in `built_site`; test_site_browser.py reuses it.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import struct
import subprocess
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy.orm import Session

from catalog.db import open_db
from catalog.demo import sample_corpus
from catalog.errors import DigestError
from catalog.ingest import ingest_paths, ingest_records
from catalog.models import Paper, Reproduction
from catalog.runs import import_run
from catalog.sitegen.build import build_site
from catalog.sitegen.generate import generate_docs
from catalog.sitegen.escape import md_block, md_inline, md_link, safe_url
from catalog.sitegen.slugs import RESERVED, SlugRegistry, is_safe_slug, make_slug, slugify
from scrapers.records import PostRecord, SourceRecord

HOSTILE_TAG = "<script>alert(1)</script>"
HOSTILE_TEXT = (
    "Hostile sample post <script>alert(1)</script> and <img src=x onerror=alert(2)> here.\n"
    "Template text {{ 7*7 }} and {% raw %} and {# note #}.\n"
    "A link [x](javascript:alert(3)) and an attribute list { onclick=alert(4) }.\n"
    "    indented like code\n"
    "# not a heading\n"
    "Long word: " + "W" * 5000
)
HOSTILE_TITLE = "<script>alert(5)</script> {{ title }}"


def tiny_png(path: Path) -> Path:
    """A valid 2x2 grey PNG, written by hand (no matplotlib import in tests)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80\x80" for _ in range(2))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def make_catalog(engine, folder: Path):
    """Fill `engine` with the sample corpus, one hostile post, arXiv metadata for one paper, and a
    reproduction with runs (their folders under `folder`)."""
    ingest_paths(engine, sample_corpus())
    source = SourceRecord(kind="telegram", handle="hostile_channel", title="Hostile <b>channel</b>",
                          url="javascript:alert(6)")
    ingest_records(engine, [PostRecord(
        source=source, external_id="1", published_at=datetime(2021, 1, 2, 3, 4, tzinfo=timezone.utc),
        text=HOSTILE_TEXT, title=HOSTILE_TITLE, url="javascript:alert(7)",
        hashtags=(HOSTILE_TAG, "{{ jinja }}"), language="en")])
    # Chinese words only in the body, not in the title (search must segment the text itself)
    ingest_records(engine, [PostRecord(
        source=SourceRecord(kind="telegram", handle="zh_body_channel", title="中文测试"), external_id="1",
        published_at=datetime(2021, 2, 3, tzinfo=timezone.utc), title="复现笔记",
        text="我们复现了多头自注意力的实现。隐变量模型的训练很稳定。", language="zh")])
    run_dir = folder / "runs" / "tinyrepro" / "20240101T000000Z"
    run_dir.mkdir(parents=True)
    tiny_png(run_dir / "curves.png")
    older_dir = folder / "runs" / "tinyrepro" / "20230601T000000Z"
    older_dir.mkdir(parents=True)
    with Session(engine) as s, s.begin():
        paper = s.query(Paper).filter_by(arxiv_id="2004.13342").one()
        paper.title = "Scheduled DropHead: A Regularization Method for Transformer Models"
        paper.authors = ["Wangchunshu Zhou", "Tao Ge"]
        paper.abstract = "We introduce DropHead, a structured dropout method for multi-head attention."
        paper.categories = ["cs.CL", "cs.LG"]
        paper.status = "ok"
        repro = Reproduction(slug="tinyrepro", paper=paper, arxiv_id="2004.13342", title="Tiny reproduction",
                             summary="Drops whole attention heads.", measures="SST-2 accuracy",
                             paper_claims=[{"metric": "accuracy", "value": 0.912, "unit": "",
                                            "source": "Table 1", "higher_is_better": True}],
                             presets=["smoke", "cpu", "gpu"])
        s.add(repro)
        s.flush()
        for folder, record in ((run_dir, TINY_RUN), (older_dir, {**TINY_RUN, "started_at": "2023-06-01T00:00:00Z",
                                                                   "metrics": {"arms": {"plain": {"accuracy": 0.5}}},
                                                                   "claims": []})):
            (folder / "run.json").write_text(json.dumps(record), encoding="utf-8")
            import_run(s, folder)
        for committed in REAL_RUNS:  # judged claims as the runner writes them today
            import_run(s, REPO_ROOT / "results" / committed)
    return engine


REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_RUNS = ("weissi/20261202T173340Z", "drophead/20261202T175629Z", "drophead/20261202T181418Z")


# a run.json in the shape the runner writes: arms with statistics over seeds, claims with our number
TINY_RUN = {
    "name": "tinyrepro", "paper_id": "2004.13342", "preset": "smoke", "status": "completed",
    "started_at": "2024-01-01T00:00:00Z", "finished_at": "2024-01-01T00:00:04Z", "duration_s": 3.5,
    "seeds": [0, 1, 2], "device": {"type": "cpu", "name": "cpu"},
    "metrics": {"arms": {"dropout": {"accuracy": {"mean": 0.8731, "std": 0.0042, "per_seed": [0.869, 0.8731, 0.8772]},
                                     "seconds_per_run": 1.25},
                         "drophead": {"accuracy": {"mean": 0.8802, "std": 0.0031, "per_seed": [0.877, 0.8802, 0.8834]},
                                      "seconds_per_run": 1.5}},
                "gain_points": 0.71, "nested": {"inner": {"value": 3}}},
    "claims": [{"metric": "accuracy", "paper": 0.912, "ours": 0.8802, "unit": "accuracy", "source": "Table 1",
                "note": "SST-2", "higher_is_better": True}],
    "config": {"steps": 20, "lr": 0.001, "model": {"d_model": 32, "n_head": 4}},
    "versions": {"torch": "2.13.0", "python": "3.11"}, "git": {"commit": "0123456789abcdef", "dirty": False},
    "artefacts": ["run.json", "metrics.jsonl", "curves.png"],
}

_BUILT: dict[str, dict[str, object]] = {}  # by engine


def build_sample_site(tmp_path_factory, lasting_target, kind: str = "sqlite") -> dict[str, object]:
    """Build once per session and engine; both site test modules share the result."""
    if kind not in _BUILT:
        folder = tmp_path_factory.mktemp(f"site-{kind}")
        engine = make_catalog(open_db(lasting_target(kind)), folder)
        result = build_site(engine, folder / "out", strict=True)
        _BUILT[kind] = dict(folder=folder, engine=engine, result=result, site=result.site_dir, docs=result.docs_dir)
    return _BUILT[kind]


@pytest.fixture
def built(tmp_path_factory, lasting_target, db_kind):
    return build_sample_site(tmp_path_factory, lasting_target, db_kind)


def page_html(site: Path, section: str, pattern: str = "*") -> str:
    matches = sorted(p for p in (site / section).glob(f"{pattern}/index.html") if "archive" not in p.parts)
    assert matches, f"no page {section}/{pattern}"
    return matches[0].read_text(encoding="utf-8")


def article(page: str) -> str:
    """The page's content, with character references resolved (post text is written as references)."""
    return html.unescape(page[page.index('<article'): page.index("</article>")])


# ------------------------------------------------------------------ slugs

@pytest.mark.parametrize("text", ["..", "../../etc/passwd", "/", "a/b", ".hidden", "CON", "nul", "Com1", "index",
                                  "", "   ", "🔥🔥", "注意力", "—", "\x00", "lpt9"])
def test_slugs_are_path_safe(text):
    slug = make_slug(text)
    assert is_safe_slug(slug), slug
    assert "/" not in slug and "." not in slug and slug.lower() not in RESERVED


def test_slugs_transliterate_and_stay_stable():
    assert slugify("Регуляризация трансформеров") == "regulyarizatsiya-transformerov"
    assert make_slug("nlp") == "nlp"  # plain ASCII words stay clean
    assert make_slug("Нейросети") == make_slug("Нейросети")  # stable between runs
    assert make_slug("Нейросети").startswith("neyroseti-")
    assert make_slug("注意力") != make_slug("注意")  # no ASCII at all: the hash tells them apart
    assert make_slug("нлп") != make_slug("nlp")


def test_slug_registry_never_hands_out_the_same_slug_twice():
    reg = SlugRegistry()
    slugs = {reg.get("same title", key=str(i), always_hash=True) for i in range(200)}
    assert len(slugs) == 200
    assert reg.get("same title", key="7", always_hash=True) in slugs  # same key, same slug
    clean = SlugRegistry()
    assert clean.get("nlp") == "nlp" and clean.get("NLP!", key="other") != "nlp"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gets_a_safe_slug(text):
    assert is_safe_slug(make_slug(text))


# ------------------------------------------------------------------ escaping

def test_inline_escaping_leaves_no_syntax():
    out = md_inline(HOSTILE_TEXT)
    bare = re.sub(r"&#\d+;", "", out)  # what is left once the character references are taken out
    for forbidden in ("<", ">", "[", "]", "(", "{", "}", "#", "`", "*", "_", "&", "\n"):
        assert forbidden not in bare
    assert html.unescape(out).startswith("Hostile sample post <script>alert(1)</script>")


def test_block_text_is_one_raw_html_block_with_paragraphs():
    out = md_block("first <b>line</b>\n    second\n\n\nnew paragraph")
    assert out == ('<div class="digest-text">\n<p>first &lt;b&gt;line&lt;/b&gt;<br>\nsecond</p>\n'
                   "<p>new paragraph</p>\n</div>")
    assert "\n\n" not in md_block(HOSTILE_TEXT)  # a blank line would end the raw block early


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<b>", "/relative",
                                 "//evil.example", "vbscript:x", " javascript:alert(1)", "http://"])
def test_unsafe_urls_are_refused(url):
    assert safe_url(url) is None
    assert "](" not in md_link("label", url)


def test_safe_urls_are_encoded_for_markdown():
    url = safe_url("https://example.org/a_(b)?q=<x> y")
    assert url == "https://example.org/a_%28b%29?q=%3Cx%3E%20y"
    assert md_link("arXiv", "https://arxiv.org/abs/2004.13342") == "[arXiv](<https://arxiv.org/abs/2004.13342>)"


# ------------------------------------------------------------------ the built site

def test_build_is_strict_and_has_a_page_of_each_kind(built):
    site, result = built["site"], built["result"]
    assert result.warnings == []  # strict: a broken link would have failed the build
    assert (site / "index.html").exists() and (site / "about" / "index.html").exists()
    for section in ("posts", "papers", "tags", "sources", "reproductions"):
        assert (site / section / "index.html").exists(), section
        assert len(list((site / section).glob("*/index.html"))) >= 1, section
    assert (site / "papers" / "2004-13342" / "index.html").exists()
    assert (site / "tags" / "nlp" / "index.html").exists()
    assert (site / "reproductions" / "tinyrepro" / "index.html").exists()
    assert result.generated.counts["posts"] == 31


def test_post_page_shows_text_date_source_tags_and_papers(built):
    page = page_html(built["site"], "posts", "scheduled-drophead-regulyarizatsiya-transformerov-*")
    body = article(page)
    assert "Scheduled DropHead" in body and "2020-04-23" in body
    assert re.search(r'href="\.\./\.\./sources/[a-z0-9-]+/"', body)  # the source page
    assert 'href="../../papers/2004-13342/"' in body  # the linked paper
    assert 'class="md-tag"' in page and 'href="../../tags/nlp/"' in page  # hashtags as tag chips
    assert 'href="../../reproductions/tinyrepro/"' in body  # the paper's reproduction


def test_paper_page_shows_metadata_posts_and_reproduction(built):
    body = article(page_html(built["site"], "papers", "2004-13342"))
    assert "Scheduled DropHead: A Regularization Method" in body and "Wangchunshu Zhou" in body
    assert "structured dropout method" in body and 'href="https://arxiv.org/abs/2004.13342"' in body
    assert len(re.findall(r'href="\.\./\.\./posts/[a-z0-9-]+/"', body)) >= 3  # ru, en and zh posts discuss it
    assert 'href="../../reproductions/tinyrepro/"' in body


def test_tag_and_source_pages_list_their_posts(built):
    tag = article(page_html(built["site"], "tags", "nlp"))
    assert len(re.findall(r'href="\.\./\.\./posts/[a-z0-9-]+/"', tag)) >= 2
    sources = article((built["site"] / "sources" / "index.html").read_text(encoding="utf-8"))
    assert "Paper Notes (sample)" in sources and "DL-дайджест (пример)" in sources


def test_reproduction_page_compares_runs_with_claims_and_shows_plots(built):
    site = built["site"]
    body = article(page_html(site, "reproductions", "tinyrepro"))
    text = " ".join(re.sub(r"<[^>]+>", "", body).split())
    assert "digest run tinyrepro --preset smoke" in text
    assert "torch 2.13.0" in text and "git 0123456789ab" in text
    plots = re.findall(r'<img alt="curves.png" src="([^"]+)"', body)
    assert plots, "plot not shown"
    assert (site / "reproductions" / "tinyrepro" / plots[0]).read_bytes().startswith(b"\x89PNG")


def _table_rows(body: str, first_header: str) -> list[list[str]]:
    """The rows of the first table whose first header cell is `first_header`, as cell texts."""
    for table in re.findall(r"<table>.*?</table>", body, re.S):
        head = re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)
        if head and re.sub(r"<[^>]+>", "", head[0]).strip() == first_header:
            return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
                    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in row]
    raise AssertionError(f"no table headed {first_header!r}")


def test_reproduction_page_shows_an_unjudged_claim_with_our_number(built):
    body = article(page_html(built["site"], "reproductions", "tinyrepro"))
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", body)).split())
    # a record from before verdicts: our number and the paper's, and how to judge it
    assert "not judged accuracy: ours 0.880 accuracy (paper: 0.912 accuracy; recorded before verdicts" in text


def test_reproduction_page_shows_arms_as_rows_with_mean_and_std(built):
    body = article(page_html(built["site"], "reproductions", "tinyrepro"))
    rows = {r[0]: r[1:] for r in _table_rows(body, "Arm") if r[0] in ("dropout", "drophead")}
    assert rows["dropout"] == ["0.873 ± 0.0042", "1.25"] and rows["drophead"] == ["0.880 ± 0.0031", "1.50"]
    assert "0.869, 0.8731, 0.8772" in body  # per-seed values, in a collapsed block
    assert re.search(r"<details[^>]*>\s*<summary>Per-seed values", body)
    assert "nested, inner, value" in body and "model, d model" in body  # nested values named without dots


def test_reproduction_page_has_no_dict_dump_or_local_path(built):
    page = page_html(built["site"], "reproductions", "tinyrepro")
    body = article(page)
    assert "{&#39;" not in page and "{'" not in html.unescape(body) and '{"' not in html.unescape(body)
    assert str(built["folder"]) not in page and "/tmp/" not in page
    assert "folder tinyrepro/20240101T000000Z" in " ".join(re.sub(r"<[^>]+>", "", body).split())
    # the latest run of the preset in full, under its own heading; the older one collapsed
    assert re.search(r"<h2[^>]*>smoke run \d+ on cpu", body), "the run has no heading"
    older = body.index("Older runs (1)")
    assert re.search(r"<details[^>]*>\s*<summary>Older runs", body)
    assert body.index("smoke run", 0) < older < body.index("plain", older)


_ASSET = re.compile(r"""<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
                    r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//""", re.I)
_CSS_REMOTE = re.compile(r"""@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", re.I)


def test_site_is_fully_offline(built):
    site = built["site"]
    pages = list(site.rglob("*.html"))
    assert len(pages) > 50
    for path in pages:
        found = _ASSET.search(path.read_text(encoding="utf-8"))
        assert not found, f"{path}: remote asset {found.group(0)!r}"
    for path in [*site.rglob("*.css"), *site.rglob("*.js")]:
        if path.suffix == ".css":
            found = _CSS_REMOTE.search(path.read_text(encoding="utf-8"))
            assert not found, f"{path}: remote asset {found.group(0)!r}"
    assert "fonts.googleapis" not in (site / "index.html").read_text(encoding="utf-8")


def test_hostile_post_is_inert_text(built):
    site = built["site"]
    page = page_html(site, "posts", "script-alert-5-script-title-*")
    assert "<script>alert" not in page and "<img src=x" not in page and "<img src=\"x\"" not in page
    assert not re.search(r'href="javascript:(?!void\(0\))', page, re.I)  # the theme's own share button aside
    assert not re.search(r"<[^>]*\b(onerror|onclick)\s*=", page, re.I)  # no event handler became an attribute
    body = re.sub(r"<[^>]+>", "", page[page.index("<article"): page.index("</article>")])
    body = html.unescape(body)
    assert "<script>alert(1)</script>" in body and "<img src=x onerror=alert(2)>" in body
    assert "{{ 7*7 }}" in body and "{% raw %}" in body and "[x](javascript:alert(3))" in body
    assert "# not a heading" in body and "W" * 5000 in body
    assert "<pre" not in page[page.index("<article"): page.index("</article>")]  # the indented line did not become a code block
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert "<" not in title and "&lt;script&gt;" in title
    # the hostile hashtags: escaped in the chips, in their own pages and in the tag index
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for path in site.rglob("*.html"):
        assert "<script>alert" not in path.read_text(encoding="utf-8"), path
    # in the search index the hostile post is text: no image or link was taken from it
    hostile = next(f for f in pagefind_fragments(site) if f["url"].startswith("/posts/script-alert-5"))
    assert "image" not in hostile["meta"]
    assert hostile["meta"]["title"] == HOSTILE_TITLE
    # filter values are the tag's text; the Search page puts them on the page as text (browser test)
    assert "#" + HOSTILE_TAG in hostile["filters"]["tag"]


def pagefind_fragments(site: Path) -> list[dict]:
    """Every page record of the Pagefind bundles, all shards (gzip, then a signature, then JSON)."""
    out = []
    for path in (site / "pagefind").glob("*/fragment/*.pf_fragment"):
        data = gzip.decompress(path.read_bytes()).decode("utf-8")
        assert data.startswith("pagefind_dcd")
        out.append(json.loads(data[len("pagefind_dcd"):]))
    return out


def pagefind_records(folder: Path, out: Path) -> dict[str, dict]:
    """Pagefind's record of every page it indexes in `folder`, by URL."""
    from catalog.sitegen.search import LANGUAGE, pagefind_executable

    subprocess.run([str(pagefind_executable()), "--site", str(folder), "--output-path", str(out),
                    "--force-language", LANGUAGE, "--quiet"], check=True, capture_output=True, timeout=300)
    records = {}
    for path in out.glob("fragment/*.pf_fragment"):
        data = gzip.decompress(path.read_bytes()).decode("utf-8")
        record = json.loads(data[len("pagefind_dcd"):])
        records[record["url"]] = record
    return records


def test_search_copies_give_pagefind_the_same_records_as_the_pages(built, tmp_path):
    """The index is built from bare copies of the articles (search_copy): the same URL, title, text,
    filters and anchors as Pagefind reads from the full pages, hostile post included."""
    from catalog.sitegen.search import search_copy, site_pages

    site, stage = built["site"], tmp_path / "stage"
    for rel in site_pages(site):
        lean = search_copy((site / rel).read_bytes())
        if lean is not None:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(lean)
    full, lean = pagefind_records(site, tmp_path / "full"), pagefind_records(stage, tmp_path / "lean")
    assert len(full) > 40 and any(url.startswith("/posts/script-alert-5") for url in full)
    assert sorted(full) == sorted(lean)
    for url, record in full.items():
        assert lean[url] == record, url


def test_the_builders_search_hashes_match_the_search_copies_of_the_pages(built):
    """The builder fingerprints shards from the search copies it made in memory; read back from
    the written pages they must agree, or every build would re-index everything."""
    from catalog.sitegen.search import index_site, read_manifest

    site = built["site"]
    before = read_manifest(site)
    entries = {s["path"]: (site / "pagefind" / s["path"] / "pagefind-entry.json").stat().st_mtime_ns
               for s in before["shards"]}
    stats = built["result"].generated
    # no hashes given: read from the files
    index_site(site, stats.post_pages, post_keys=stats.post_keys, papers=stats.paper_pages)
    assert read_manifest(site) == before
    assert {path: (site / "pagefind" / path / "pagefind-entry.json").stat().st_mtime_ns
            for path in entries} == entries


def test_search_index_is_chunked_and_holds_posts_and_papers_not_lists(built):
    site = built["site"]
    manifest = json.loads((site / "pagefind" / "shards.json").read_text(encoding="utf-8"))
    # a small site: one shard of posts, one of papers, one of the other searched pages
    assert [s["path"] for s in manifest["shards"]] == ["shard-0000/", "papers-0000/", "pages/"]
    entry = json.loads((site / "pagefind" / "shard-0000" / "pagefind-entry.json").read_text(encoding="utf-8"))
    # one index per language, each stemmed or segmented its own way (see catalog/sitegen/search.py)
    assert sorted(entry["languages"]) == ["en", "ru", "zh"]
    assert not (site / "search" / "search_index.json").exists()  # mkdocs' one-file index is gone
    urls = {f["url"] for f in pagefind_fragments(site)}
    assert sum(u.startswith("/posts/") for u in urls) == 31 and sum(u.startswith("/papers/") for u in urls) == 15
    assert "/reproductions/tinyrepro/" in urls
    assert not any(u in urls for u in ("/", "/posts/", "/tags/", "/papers/", "/search/")) and not any(
        u.startswith(("/tags/", "/sources/", "/posts/archive/")) for u in urls)
    post = next(f for f in pagefind_fragments(site) if f["url"].startswith("/posts/scheduled-drophead-regulyar"))
    assert post["filters"]["type"] == ["post"] and post["filters"]["language"] == ["ru"]
    assert post["filters"]["source"] == ["DL-дайджест (пример)"] and "#nlp" in post["filters"]["tag"]


def article_page(article: str, after: str = "") -> str:
    """A page as the theme writes it: the searched article, its end marker, what follows."""
    return (f"<html><body><article><div data-pagefind-body>{article}</div><!--/digest:search-->{after}"
            "</article></body></html>")


def test_search_shards_cut_posts_by_date_and_reindex_only_what_changed(tmp_path):
    from catalog.sitegen.search import index_site, plan_shards, read_manifest

    # newest first; cut from the oldest, the newest shard takes the rest; the other pages have a shard of their own
    shards = plan_shards([f"p{i}" for i in range(6, -1, -1)], ["about/a"], 2)
    assert [(s.name, s.pages) for s in shards] == [("shard-0003", ["p6"]), ("pages", ["about/a"]),
                                                   ("shard-0002", ["p5", "p4"]), ("shard-0001", ["p3", "p2"]),
                                                   ("shard-0000", ["p1", "p0"])]
    assert [s.pages for s in plan_shards(["p0"], [], 10)] == [["p0"]]
    assert [s.pages for s in plan_shards([], ["a"], 10)] == [["a"]]

    site = tmp_path / "site"
    posts = []
    for i in range(5):  # post-4 is the newest
        page = site / "posts" / f"post-{i}" / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(article_page(f"<h1>Post {i}</h1><p>word{i}</p>"))
        posts.insert(0, f"posts/post-{i}/index.html")
    index_site(site, posts, shard_posts=2)
    manifest = read_manifest(site)
    assert [(s["path"], s["posts"]) for s in manifest["shards"]] == [
        ("shard-0002/", 1), ("shard-0001/", 2), ("shard-0000/", 2)]
    entries = {s["path"]: site / "pagefind" / s["path"] / "pagefind-entry.json" for s in manifest["shards"]}
    stamps = {k: v.stat().st_mtime_ns for k, v in entries.items()}
    (site / "posts" / "post-4" / "index.html").write_text(article_page("<h1>Post 4</h1><p>edited</p>"))
    index_site(site, posts, shard_posts=2)
    assert entries["shard-0000/"].stat().st_mtime_ns == stamps["shard-0000/"]  # old shards kept as they were
    assert entries["shard-0001/"].stat().st_mtime_ns == stamps["shard-0001/"]
    assert entries["shard-0002/"].stat().st_mtime_ns != stamps["shard-0002/"]  # the newest one re-indexed
    oldest = site / "posts" / "post-0" / "index.html"
    oldest.write_text(oldest.read_text())  # rewritten unchanged, as mkdocs does: a new mtime, the same bytes
    index_site(site, posts, shard_posts=2)
    assert entries["shard-0000/"].stat().st_mtime_ns == stamps["shard-0000/"]
    # what follows the searched article (related items) changes: not indexed again either
    oldest.write_text(article_page("<h1>Post 0</h1><p>word0</p>", after="<h2>Related</h2><p>Post 3</p>"))
    index_site(site, posts, shard_posts=2)
    assert entries["shard-0000/"].stat().st_mtime_ns == stamps["shard-0000/"]
    # a shard without a page to search (list pages only) is left out of the manifest
    for i in range(5):
        (site / "posts" / f"post-{i}" / "index.html").write_text("<html><body><article><h1>A list</h1></article>")
    index_site(site, posts, shard_posts=2)
    assert read_manifest(site)["shards"] == [] and not list((site / "pagefind").glob("shard-*"))
    assert not list(tmp_path.glob(".pagefind-*"))  # the staging folders are gone


def test_chinese_posts_carry_the_words_inside_compound_words():
    from catalog.sitegen.search import cjk_terms

    terms = cjk_terms("我们复现了多头自注意力机制。").split()
    assert "自注意力" in terms or "注意力" in terms
    assert "注意力" in terms and "机制" in terms
    assert cjk_terms("no Chinese here, только кириллица") == ""


def test_regenerating_writes_nothing_and_removes_stale_pages(built, tmp_path):
    docs = built["docs"]
    stale = docs / "posts" / "stale-page.md"
    stale.write_text("# gone\n")
    stats = generate_docs(built["engine"], docs)
    assert stats.written == 0 and stats.removed == 1 and not stale.exists()


def test_foreign_or_source_folders_are_refused(engine, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "docs").mkdir()
    (tmp_path / "mine" / "docs" / "notes.txt").write_text("not ours")
    with pytest.raises(DigestError, match="not generated by digest"):
        build_site(engine, tmp_path / "mine")
    assert (tmp_path / "mine" / "docs" / "notes.txt").exists()
    from catalog.sitegen.paths import SITE_SRC

    for folder in (SITE_SRC, SITE_SRC / "templates", SITE_SRC.parent):
        with pytest.raises(DigestError, match="overwrite the site sources"):
            build_site(engine, folder)


def test_cli_reports_errors_in_one_line(fresh_target, engine, db_target, tmp_path):
    root = Path(__file__).resolve().parents[2]
    for args in (["--db", str(fresh_target(migrated=False)), "site", "build", "--out", str(tmp_path / "o")],
                 ["--db", str(db_target), "site", "build", "--out", str(root / "site")]):
        proc = subprocess.run([sys.executable, "-m", "catalog.cli", *args], cwd=root, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.startswith("digest: error:") and proc.stderr.count("\n") == 1, proc.stderr


def test_links_inside_raw_html_pages_resolve(built):
    """Generated pages bypass Markdown, so mkdocs' --strict link check never sees their links: check them here."""
    site = built["site"]
    checked = 0
    for path in site.rglob("index.html"):
        page = path.read_text(encoding="utf-8")
        body = page[page.index("<article"): page.index("</article>")]
        for href in re.findall(r'href="([^"#?]*)"', body):
            if href.startswith(("http://", "https://")) or not href:
                continue
            target = (path.parent / href).resolve()
            assert (target / "index.html").exists() or target.is_file(), f"{path}: broken link {href}"
            checked += 1
    assert checked > 200


def test_a_link_to_a_page_never_written_fails_the_build(tmp_path):
    from catalog.sitegen.links import PageLinks
    from catalog.sitegen.writer import DocsWriter

    links = PageLinks()
    assert links("../../", "posts", "a-post") == "../../posts/a-post/"
    with pytest.raises(DigestError, match="posts/a-post.md"):
        links.check(DocsWriter(tmp_path))
    with pytest.raises(ValueError):
        links("../", "posts", "../../etc")


def site_files(site: Path) -> dict[Path, bytes]:
    """Every file of a built site but the search index (Pagefind names some files by a hash)."""
    return {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file() and "pagefind" not in
            p.relative_to(site).parts}


def assert_same_files(ours: Path, reference: Path) -> None:
    a, b = site_files(ours), site_files(reference)
    assert sorted(a) == sorted(b)
    for rel in a:
        assert a[rel] == b[rel], rel


def test_stamped_pages_match_pages_mkdocs_renders(built, tmp_path):
    """The fast path (posts, papers, tags, sources stamped into their folder's shell) against
    the plain one (mkdocs renders every page): every file of the two sites is the same."""
    plain = build_site(built["engine"], tmp_path / "plain", strict=True, stamp=False)
    assert plain.generated.plan is None and built["result"].generated.plan is not None
    assert len(built["result"].generated.plan.pages) > 40  # most pages were stamped
    assert_same_files(built["site"], plain.site_dir)


def test_stamping_in_forked_workers_writes_the_same_pages(built, tmp_path, monkeypatch):
    """A large plan is stamped by forked workers: the same files, hashes and link targets as inline."""
    from catalog.sitegen import stamp
    from catalog.sitegen.build import run_mkdocs
    from catalog.sitegen.writer import DocsWriter

    monkeypatch.setattr(stamp, "PARALLEL_MIN", 1)
    results = {}
    for workers in (1, 3):
        stats = generate_docs(built["engine"], tmp_path / f"docs{workers}")
        run_mkdocs(tmp_path / f"docs{workers}", tmp_path / f"mkdocs{workers}")
        site, hashes = DocsWriter(tmp_path / f"site{workers}"), {}
        assert stats.plan.stamp(tmp_path / f"mkdocs{workers}", site, hashes, workers=workers) > 40  # links checked
        results[workers] = (site.written, hashes, site_files(tmp_path / f"site{workers}"),
                            set(stats.plan.env.globals["url"].targets))
    assert results[1] == results[3]
    assert site_files(tmp_path / "site3") == {rel: data for rel, data in site_files(built["site"]).items()
                                              if rel in site_files(tmp_path / "site3")}


def test_memoised_theme_blocks_match_a_build_without_the_memo(built, tmp_path):
    """theme_memo_hook reuses nav/tabs/config HTML between pages; every page must come out the same without it."""
    from mkdocs.commands.build import build

    from catalog.sitegen.build import mkdocs_config

    plain = build_site(built["engine"], tmp_path / "plain", stamp=False)
    plain_hook = tmp_path / "no_memo_hook.py"
    plain_hook.write_text("def on_env(env, config, files):\n"
                          "    env.globals['digest_memo'] = lambda name, page, render: render()\n    return env\n")
    raw_hook = Path(__file__).resolve().parents[2] / "catalog" / "sitegen" / "raw_html_hook.py"
    site = tmp_path / "site"
    build(mkdocs_config(plain.docs_dir, site, hooks=[str(raw_hook), str(plain_hook)]))
    assert_same_files(site, plain.site_dir.parent / "mkdocs")


# ------------------------------------------------------------------ the same order on both engines

def test_undated_posts_come_last_and_papers_by_arxiv_id_on_every_engine(engine):
    """SQLite sorts NULL first and PostgreSQL last: every list of posts says where undated ones go."""
    from catalog.discussed import top_papers
    from catalog.sitegen.catalogview import Catalog

    def post(n: int, published: datetime | None, ids: tuple[str, ...]) -> PostRecord:
        return PostRecord(source=SourceRecord(kind="telegram", handle=f"order_{n}", title=f"Order {n}"),
                          external_id="1", published_at=published, text=f"Post {n}", title=f"Post {n}",
                          arxiv_ids=ids, language="en")

    ingest_records(engine, [post(1, None, ("2101.00002",)), post(2, datetime(2021, 1, 1, tzinfo=timezone.utc),
                                                                  ("2101.00003", "2101.00001")),
                            post(3, None, ("2101.00004",))])
    cat = Catalog(engine, cards={})
    assert [p["title"] for p in cat.posts] == ["Post 2", "Post 3", "Post 1"]  # newest first, undated last
    assert [p["arxiv_id"] for p in cat.posts[0]["papers"]] == ["2101.00001", "2101.00003"]
    # discussed as often: the paper last discussed most recently first, undated ones after
    assert [p["arxiv_id"] for p in top_papers(engine)] == ["2101.00001", "2101.00003", "2101.00002", "2101.00004"]


# ------------------------------------------------------------------ offline paper metadata

def test_bundled_snapshot_gives_the_sample_papers_titles_offline(engine, tmp_path):
    from catalog.paper_snapshot import load_snapshot

    ingest_paths(engine, sample_corpus())
    with Session(engine) as s, s.begin():  # metadata fetched from arXiv is never replaced
        s.query(Paper).filter_by(arxiv_id="1412.6980").one().title = "Fetched title"
        s.query(Paper).filter_by(arxiv_id="1412.6980").one().status = "ok"
    assert load_snapshot(engine) == 13
    assert load_snapshot(engine) == 0  # idempotent
    with Session(engine) as s:
        papers = {p.arxiv_id: p for p in s.query(Paper)}
    assert papers["1412.6980"].title == "Fetched title"
    assert papers["1706.03762"].title == "Attention Is All You Need" and "Noam Shazeer" in papers["1706.03762"].authors
    assert papers["2004.13342"].status == "ok" and papers["2004.13342"].published.year == 2020
    assert papers["hep-th/9901001"].status == "pending"  # not in the snapshot: still waits for arXiv
    docs = tmp_path / "docs"
    generate_docs(engine, docs, cards={})
    index = (docs / "papers" / "index.md").read_text(encoding="utf-8")
    assert "Attention Is All You Need" in index and index.count("(metadata not fetched)") == 1


def test_a_broken_snapshot_is_one_clear_error(engine, tmp_path):
    from catalog.paper_snapshot import load_snapshot

    for content in ("{not json", '{"papers": [{"title": "no id"}]}', "[]"):
        (tmp_path / "bad.json").write_text(content)
        with pytest.raises(DigestError, match="cannot read the paper snapshot"):
            load_snapshot(engine, tmp_path / "bad.json")


def test_incremental_build_renders_only_what_changed(engine, tmp_path):
    ingest_paths(engine, sample_corpus())
    first = build_site(engine, tmp_path / "out", run_roots=[])
    site = first.site_dir
    unchanged = next(p for p in (site / "posts").glob("*/index.html") if "archive" not in p.parts)
    before = unchanged.stat().st_mtime_ns
    stale = site / "posts" / "a-post-that-was-deleted" / "index.html"
    stale.parent.mkdir()
    stale.write_text("<html>old</html>")
    ingest_records(engine, [PostRecord(
        source=SourceRecord(kind="telegram", handle="inc_channel", title="Incremental"), external_id="1",
        published_at=datetime(2021, 3, 4, tzinfo=timezone.utc), text="Инкрементальная сборка #новый_тег",
        title="Новый пост", hashtags=("новый_тег",), language="ru")])
    again = build_site(engine, tmp_path / "out", run_roots=[])
    assert again.warnings == []
    assert unchanged.stat().st_mtime_ns == before  # an unchanged post was not written again
    assert 0 < again.site_written < first.site_written / 4 and again.site_removed == 1
    assert (site / "posts" / "index.html").read_text(encoding="utf-8").count("Новый пост") == 1
    new_page = page_html(site, "posts", "novyy-post-*")
    assert "Инкрементальная сборка" in html.unescape(new_page)
    assert page_html(site, "tags", "novyy-teg*")  # the new tag's page
    assert not stale.exists()  # HTML of a page whose Markdown is gone is removed
    urls = {f["url"] for f in pagefind_fragments(site)}
    assert any(u.startswith("/posts/novyy-post-") for u in urls)  # and the search index knows the new post


def _dotted_keys(values, prefix=""):
    """Every dotted key a nested dict of metrics or config has (`arms.dropout.accuracy`, `lambdas.l2`)."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if prefix:
            yield name
        if isinstance(value, dict):
            yield from _dotted_keys(value, name + ".")


NUMBER = re.compile(r"(?<![\w.:/-])[-−+]?\d[\d]*(?:\.\d+)?(?:e[-−+]?\d+)?(?![\w.]*\w)")


def _significant_digits(token: str) -> int:
    mantissa = re.split(r"e", token.lstrip("+-−"))[0]
    digits = mantissa.replace(".", "").lstrip("0")
    if "." not in mantissa:
        digits = digits.rstrip("0")  # 60000: one significant digit
    return len(digits)


@pytest.mark.parametrize("name, stamp", [r.split("/") for r in REAL_RUNS[:2]])
def test_a_judged_reproduction_page_reads_without_dotted_keys_or_long_numbers(built, name, stamp):
    """Verdict badges and sentences first, then a forest plot; no internal key, no number with > 4 digits."""
    body = article(page_html(built["site"], "reproductions", name))
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    rec = json.loads((REPO_ROOT / "results" / name / stamp / "run.json").read_text(encoding="utf-8"))
    keys = set(_dotted_keys(rec["metrics"])) | set(_dotted_keys(rec["config"]))
    keys |= {a for c in rec["claims"] for a in c["arms"] if "." in a}
    assert keys and not [k for k in keys if k in text]
    long = [t for t in NUMBER.findall(text.replace(rec["paper_id"], ""))  # an identifier, not a number
            if not re.fullmatch(r"\d{4}", t) and _significant_digits(t) > 4]
    assert not long, long[:10]
    verdicts = re.findall(r'class="digest-verdict digest-verdict--([\w-]+)"', body)  # "not-measured" too
    assert verdicts[:len(rec["claims"])] == [c["verdict"].replace(" ", "-") for c in rec["claims"]]
    claims_at = text.index("Claims and verdicts")
    assert claims_at < text.index("Arms") < text.index("How to run it") < text.index("Details")
    assert re.search(r'<img alt="Forest plot[^"]*" src="[^"]*forest\.png"', body)


def test_the_weissi_page_says_what_the_paired_statistics_say(built):
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article(page_html(built["site"], "reproductions",
                                                                                "weissi")))).split())
    assert ("WEISSI vs L2, accuracy under FGSM: +0.642 points [+0.17, +1.1] adjusted, 5 seeds — reproduced"
            in text)
    assert "no penalty 0.971 ± 0.00065" in text  # arms with 3 significant digits


def test_an_exploratory_run_is_labelled_and_not_the_one_the_page_leads_with(built):
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article(page_html(built["site"], "reproductions",
                                                                                "drophead")))).split())
    lead = text[text.index("Claims and verdicts"):text.index("Arms")]
    assert "(5 seeds fixed by the preset)" in lead and "exploratory" not in lead
    assert "Exploratory run : not the preset's pre-registered run (--seed 5" in text


def test_post_articles_carry_their_language_and_each_language_has_its_index(built):
    """Issue 30: Pagefind stems a page by its language, so a post's article says which it is,
    its search copy is a document of that language, and each shard lists its language indexes."""
    from catalog.sitegen.search import read_manifest, search_copy

    site = built["site"]
    cases = [("scheduled-drophead-regulyarizatsiya-transformerov-*", "ru"),
             ("adam-https-arxiv-org-abs-1412-6980-and-deco*", "en")]
    for pattern, lang in cases:
        page = page_html(site, "posts", pattern)
        assert f'<div data-pagefind-body lang="{lang}">' in page
        copy = search_copy(page.encode()).decode()
        assert copy.startswith(f'<!doctype html><html lang="{lang}">')
    chinese = [p for p in (site / "posts").glob("*/index.html")
               if "自注意力机制只需要十五行代码" in p.read_text(encoding="utf-8")]
    assert chinese and '<div data-pagefind-body lang="zh">' in chinese[0].read_text(encoding="utf-8")
    about = (site / "about" / "index.html").read_text(encoding="utf-8")  # not a post: the site's English
    assert "<div data-pagefind-body>" in about
    assert search_copy(about.encode()).startswith(b'<!doctype html><html lang="en">')
    shards = read_manifest(site)["shards"]
    assert {"ru", "en", "zh"} <= {lang for shard in shards for lang in shard["languages"]}
    for shard in shards:
        entry = json.loads((site / "pagefind" / shard["path"] / "pagefind-entry.json").read_text(encoding="utf-8"))
        assert sorted(shard["languages"]) == sorted(entry["languages"])
        stemmed = {lang for lang, index in entry["languages"].items() if index["wasm"]}  # Snowball in its wasm
        assert stemmed >= {"ru", "en"} & set(entry["languages"])
