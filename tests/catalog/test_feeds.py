"""Every field of the Atom and RSS feeds, on a hand-made catalog of three posts (issue 35).

The mutation run over catalog/feeds.py found most of a feed's fields unread by any test
(a feed that parses and has the right number of entries passed). Here each expected value
is written out from the records below as a reader would read the feed: titles, ids, links
climbing as many folders as the feed is deep, dates, authors, categories, summaries cut at
600 characters, arXiv links, RSS dates; and which feed a CLI user gets for a name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest

from catalog.errors import DigestError
from catalog.feeds import atom_xml, catalog_feeds, find_feed, rss_xml
from catalog.ingest import ingest_records
from catalog.sitegen.catalogview import Catalog
from scrapers.records import PostRecord, SourceRecord

A = "{http://www.w3.org/2005/Atom}"
OLD, NEW = "2101.00001", "2306.00002"
# words of 41 characters and a space: 600 characters end 12 letters into the 15th word, so the summary keeps 14
LONG = " ".join(f"{n:02d}" + "x" * 39 for n in range(20))
EXACT = "y" * 600  # exactly 600 characters: kept whole
ALPHA = SourceRecord(kind="telegram", handle="alpha_ch", title="Alpha <Lab>", url="https://t.me/alpha_ch")
BETA = SourceRecord(kind="telegram", handle="beta_ch", title="Beta")


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


RECORDS = [
    # (alpha 1) dated 1 July 09:00, edited 2 July 10:00, a link, two tags, one paper, a long text
    PostRecord(source=ALPHA, external_id="1", published_at=_utc(2023, 7, 1, 9), edited_at=_utc(2023, 7, 2, 10),
               url="https://t.me/alpha_ch/1", title="Sparse attention", text=LONG, hashtags=("nlp", "sparse"),
               arxiv_ids=(OLD,), language="en"),
    # (beta 2) dated 3 July 08:30, never edited, no link, one tag, two papers, exactly 600 characters
    PostRecord(source=BETA, external_id="2", published_at=_utc(2023, 7, 3, 8, 30), title="Diffusion notes",
               text=EXACT, hashtags=("nlp",), arxiv_ids=(OLD, NEW), language="en"),
    # (beta 3) undated: in no feed
    PostRecord(source=BETA, external_id="3", published_at=None, title="Undated", text="no date here",
               language="en"),
]


@pytest.fixture
def feeds(engine):
    ingest_records(engine, RECORDS)
    cat = Catalog(engine, {})
    slugs = {p["title"]: p["slug"] for p in cat.posts}  # the page of each post, named by the site generator
    return {f.key: f for f in catalog_feeds(cat)}, slugs, cat


def test_there_is_a_feed_for_the_site_each_source_tag_and_paper(feeds):
    by_key, _, cat = feeds
    alpha = next(s["slug"] for s in cat.sources if s["handle"] == "alpha_ch")  # named by the site generator
    assert {key: (f.path, f.title, f.page) for key, f in by_key.items()} == {
        "all": ("feeds/all.atom.xml", "paper-digest: latest posts", ""),
        "source/telegram:alpha_ch": (f"feeds/sources/{alpha}.atom.xml", "paper-digest: Alpha <Lab>", f"sources/{alpha}/"),
        "source/telegram:beta_ch": ("feeds/sources/beta.atom.xml", "paper-digest: Beta", "sources/beta/"),
        "tag/nlp": ("feeds/tags/nlp.atom.xml", "paper-digest: #nlp", "tags/nlp/"),
        "tag/sparse": ("feeds/tags/sparse.atom.xml", "paper-digest: #sparse", "tags/sparse/"),
        f"paper/{OLD}": ("feeds/papers/2101-00001.atom.xml", f"paper-digest: posts on arXiv:{OLD}", "papers/2101-00001/"),
        f"paper/{NEW}": ("feeds/papers/2306-00002.atom.xml", f"paper-digest: posts on arXiv:{NEW}", "papers/2306-00002/"),
    }
    titles = {key: [p["title"] for p in f.posts] for key, f in by_key.items()}
    assert titles == {"all": ["Diffusion notes", "Sparse attention"], "source/telegram:alpha_ch": ["Sparse attention"],
                      "source/telegram:beta_ch": ["Diffusion notes"], "tag/nlp": ["Diffusion notes", "Sparse attention"],
                      "tag/sparse": ["Sparse attention"], f"paper/{OLD}": ["Diffusion notes", "Sparse attention"],
                      f"paper/{NEW}": ["Diffusion notes"]}
    assert by_key["all"].rss_path == "feeds/all.rss.xml"
    one = {f.key: [p["title"] for p in f.posts] for f in catalog_feeds(cat, limit=1, site_name="Digest")}
    assert one["all"] == ["Diffusion notes"] and one["tag/nlp"] == ["Diffusion notes"]
    assert one[f"paper/{OLD}"] == ["Diffusion notes"]
    assert next(f for f in catalog_feeds(cat, site_name="Digest") if f.key == "all").title == "Digest: latest posts"


def _atom(feed, **kw) -> ET.Element:
    return ET.fromstring(atom_xml(feed, **kw))


def _links(el: ET.Element) -> list[tuple[str, str, str | None]]:
    return [(ln.get("rel"), ln.get("href"), ln.get("title")) for ln in el.findall(A + "link")]


def test_atom_feed_fields_and_entries(feeds):
    by_key, slug, _ = feeds
    root = _atom(by_key["tag/nlp"])  # two folders deep: links climb two
    assert root.findtext(A + "title") == "paper-digest: #nlp"
    assert root.findtext(A + "id") == "tag:paper-digest,2026:feed/tag/nlp"
    assert _links(root) == [("self", "../../feeds/tags/nlp.atom.xml", None), ("alternate", "../../tags/nlp/", None)]
    assert [ln.get("type") for ln in root.findall(A + "link")] == ["application/atom+xml", "text/html"]
    assert root.findtext(A + "updated") == "2023-07-03T08:30:00Z"  # the newest entry's time
    assert root.findtext(A + "generator") == "paper-digest"
    beta, alpha = root.findall(A + "entry")
    assert beta.findtext(A + "title") == "Diffusion notes"
    assert beta.find(A + "link").get("type") == "text/html"
    assert beta.findtext(A + "id") == "tag:paper-digest,2026:post/telegram:beta_ch:2"
    assert _links(beta) == [("alternate", f"../../posts/{slug['Diffusion notes']}/", None),
                            ("related", f"https://arxiv.org/abs/{OLD}", f"arXiv:{OLD}"),
                            ("related", f"https://arxiv.org/abs/{NEW}", f"arXiv:{NEW}")]
    assert beta.findtext(A + "published") == beta.findtext(A + "updated") == "2023-07-03T08:30:00Z"
    assert beta.findtext(A + "author/" + A + "name") == "Beta" and beta.find(A + "author/" + A + "uri") is None
    assert [c.get("term") for c in beta.findall(A + "category")] == ["nlp"]
    assert beta.find(A + "summary").get("type") == "text"
    assert beta.findtext(A + "summary") == EXACT + f"\n\narXiv: {OLD}, {NEW}"
    assert alpha.findtext(A + "id") == "tag:paper-digest,2026:post/telegram:alpha_ch:1"
    assert _links(alpha) == [("alternate", f"../../posts/{slug['Sparse attention']}/", None),
                             ("via", "https://t.me/alpha_ch/1", None),
                             ("related", f"https://arxiv.org/abs/{OLD}", f"arXiv:{OLD}")]
    assert alpha.findtext(A + "published") == "2023-07-01T09:00:00Z"
    assert alpha.findtext(A + "updated") == "2023-07-02T10:00:00Z"  # its edit
    assert alpha.findtext(A + "author/" + A + "name") == "Alpha <Lab>"
    assert alpha.findtext(A + "author/" + A + "uri") == "https://t.me/alpha_ch"
    assert [c.get("term") for c in alpha.findall(A + "category")] == ["nlp", "sparse"]
    words = LONG.split()
    assert alpha.findtext(A + "summary") == " ".join(words[:14]) + " …" + f"\n\narXiv: {OLD}"


def test_a_feed_updated_by_an_edit_and_a_feed_one_folder_deep(feeds):
    by_key, slug, _ = feeds
    alpha = _atom(by_key["source/telegram:alpha_ch"])
    assert alpha.findtext(A + "id") == "tag:paper-digest,2026:feed/source/telegram:alpha_ch"  # ':' kept as is
    assert alpha.findtext(A + "updated") == "2023-07-02T10:00:00Z"  # its one post's edit, after its date
    site = _atom(by_key["all"])
    assert _links(site) == [("self", "../feeds/all.atom.xml", None), ("alternate", "../", None)]
    assert [e.find(A + "link").get("href") for e in site.findall(A + "entry")] == [
        f"../posts/{slug['Diffusion notes']}/", f"../posts/{slug['Sparse attention']}/"]


def test_an_empty_feed_and_absolute_links(feeds):
    by_key, slug, _ = feeds
    empty = by_key["all"].__class__("feeds/tags/none.atom.xml", "empty", "tags/none/", "tag/none")
    root = _atom(empty)
    assert root.findtext(A + "updated") == "1970-01-01T00:00:00Z" and root.findall(A + "entry") == []
    root = _atom(by_key["tag/sparse"], base_url="https://digest.example/sub/")
    assert _links(root) == [("self", "https://digest.example/sub/feeds/tags/sparse.atom.xml", None),
                            ("alternate", "https://digest.example/sub/tags/sparse/", None)]
    assert root.find(A + "entry/" + A + "link").get("href") == \
        f"https://digest.example/sub/posts/{slug['Sparse attention']}/"
    rss = ET.fromstring(rss_xml(by_key["tag/sparse"], base_url="https://digest.example"))
    assert rss.findtext("channel/link") == "https://digest.example/tags/sparse/"
    assert rss.findtext("channel/item/link") == f"https://digest.example/posts/{slug['Sparse attention']}/"


def test_feeds_are_utf8_documents_with_entries_only_between_elements(feeds):
    by_key, _, _ = feeds
    for data in (atom_xml(by_key["all"]), rss_xml(by_key["all"])):
        assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n"), data[:60]
    root = _atom(by_key["all"])
    assert len(root.findall(A + "entry")) == 2
    assert all((el.tail or "").strip() == "" for el in root)  # nothing but indentation between elements
    assert (root.text or "").strip() == ""


def test_entries_shared_between_feeds_are_made_once_per_depth(feeds):
    by_key, _, _ = feeds
    shared: dict = {}
    together = [atom_xml(by_key[k], entries=shared) for k in ("all", "tag/nlp", "tag/sparse")]
    assert together == [atom_xml(by_key[k]) for k in ("all", "tag/nlp", "tag/sparse")]
    # all (depth 1): two posts; the two tag feeds (depth 2): the same two posts
    assert sorted((key, depth) for key, depth, _ in shared) == [
        ("telegram:alpha_ch:1", 1), ("telegram:alpha_ch:1", 2), ("telegram:beta_ch:2", 1), ("telegram:beta_ch:2", 2)]


def test_rss_feed_fields(feeds):
    by_key, slug, _ = feeds
    rss = ET.fromstring(rss_xml(by_key["tag/nlp"]))
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    ch = rss.find("channel")
    assert [ch.findtext(t) for t in ("title", "link", "description", "generator")] == [
        "paper-digest: #nlp", "../../tags/nlp/", "paper-digest: #nlp", "paper-digest"]
    beta, alpha = ch.findall("item")
    assert beta.findtext("title") == "Diffusion notes"
    assert beta.findtext("link") == f"../../posts/{slug['Diffusion notes']}/"
    assert beta.find("guid").text == "tag:paper-digest,2026:post/telegram:beta_ch:2"
    assert beta.find("guid").get("isPermaLink") == "false"
    assert beta.findtext("pubDate") == "Mon, 03 Jul 2023 08:30:00 GMT"
    assert [c.text for c in beta.findall("category")] == ["nlp"]
    assert beta.findtext("description") == EXACT  # no arXiv line in RSS
    assert alpha.findtext("pubDate") == "Sat, 01 Jul 2023 09:00:00 GMT"
    assert [c.text for c in alpha.findall("category")] == ["nlp", "sparse"]
    assert alpha.findtext("description") == " ".join(LONG.split()[:14]) + " …"
    home = ET.fromstring(rss_xml(by_key["all"])).find("channel")
    assert home.findtext("link") == "../"


def test_find_feed_by_source_tag_or_paper(feeds):
    by_key, _, _ = feeds
    feeds_list = list(by_key.values())
    for name in ("alpha_ch", "@alpha_ch", "Alpha <Lab>"):
        assert find_feed(feeds_list, source=name).key == "source/telegram:alpha_ch", name
    for name in ("nlp", "#nlp", "NLP", "#Sparse"):
        assert find_feed(feeds_list, tag=name).key == f"tag/{name.lstrip('#').lower()}", name
    assert find_feed(feeds_list, paper=NEW).key == f"paper/{NEW}"
    assert find_feed(feeds_list).key == "all"
    for kw, said in (({"source": "gamma_ch"}, "no feed for source 'gamma_ch'"), ({"tag": "cv"}, "no feed for tag 'cv'"),
                     ({"paper": "2401.00001"}, "no feed for paper '2401.00001'")):
        with pytest.raises(DigestError) as err:
            find_feed(feeds_list, **kw)
        assert str(err.value) == f"{said}: it is not in the catalog (see `digest sources`, `digest tags`)"


def test_names_starting_with_x_are_found_too():
    """Only the one leading '@' or '#' is dropped from a name, never its first letters."""
    from catalog.feeds import Feed

    feeds_list = [Feed("feeds/all.atom.xml", "d: latest posts", "", "all"),
                  Feed("feeds/sources/xformers.atom.xml", "d: Xformers", "sources/xformers/", "source/telegram:Xformers_ch"),
                  Feed("feeds/tags/xai.atom.xml", "d: #xai", "tags/xai/", "tag/xai")]
    assert find_feed(feeds_list, source="@Xformers_ch") is feeds_list[1]
    assert find_feed(feeds_list, tag="#Xai") is feeds_list[2]


def test_feed_dates_are_utc_whatever_the_machines_time_zone(feeds, monkeypatch):
    import time

    by_key, _, _ = feeds
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no daylight saving
    time.tzset()
    try:
        rss = ET.fromstring(rss_xml(by_key["tag/sparse"]))
        atom = _atom(by_key["tag/sparse"])
        empty = _atom(by_key["all"].__class__("feeds/tags/none.atom.xml", "empty", "tags/none/", "tag/none"))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert rss.findtext("channel/item/pubDate") == "Sat, 01 Jul 2023 09:00:00 GMT"
    assert atom.findtext(A + "entry/" + A + "published") == "2023-07-01T09:00:00Z"
    assert empty.findtext(A + "updated") == "1970-01-01T00:00:00Z"


def test_a_post_without_paper_or_text_has_a_bare_summary(engine):
    """No arXiv line without a paper; an empty text is an empty summary; a control character
    (which XML 1.0 cannot carry) is dropped, not replaced."""
    ingest_records(engine, [
        PostRecord(source=BETA, external_id="5", published_at=_utc(2023, 7, 5), title="Bell", text="ring \x07 the bell",
                   language="en"),
        PostRecord(source=BETA, external_id="6", published_at=_utc(2023, 7, 6), title="Title only", text="",
                   language="en")])
    cat = Catalog(engine, {})
    site = next(f for f in catalog_feeds(cat) if f.key == "all")
    newest = next(f for f in catalog_feeds(cat, limit=1) if f.key == "source/telegram:beta_ch")
    assert [p["title"] for p in newest.posts] == ["Title only"]  # the newest of beta's two
    entries = _atom(site).findall(A + "entry")
    assert [(e.findtext(A + "title"), e.findtext(A + "summary")) for e in entries] == [
        ("Title only", ""), ("Bell", "ring  the bell")]  # the spaces either side of it stay
