"""An edited post, re-ingested: what it no longer has goes, what it has now comes; counts add up
over batches; one input of two channels keeps them apart (issue 35: survivors of the mutation run
over catalog/ingest_upsert.py).

Records are built by hand, so every expected tag, link, paper and count is the one written here.
"""

from __future__ import annotations

from datetime import datetime, timezone

from catalog.ingest import ingest_records
from scrapers.records import Link, PostRecord, SourceRecord

CHANNEL = SourceRecord(kind="telegram", handle="edits_ch", title="Edits")
OTHER = SourceRecord(kind="telegram", handle="elsewhere_ch", title="Elsewhere")
WHEN = datetime(2023, 7, 1, 9, tzinfo=timezone.utc)


def _post(ext: str, text: str, *, source: SourceRecord = CHANNEL, tags: tuple[str, ...] = (),
          links: tuple[str, ...] = (), papers: tuple[str, ...] = (), edited: datetime | None = None) -> PostRecord:
    return PostRecord(source=source, external_id=ext, published_at=WHEN, text=text, title=text[:30],
                      hashtags=tags, links=tuple(Link(u, "code") for u in links), arxiv_ids=papers,
                      edited_at=edited, language="en")


def _children(engine, ext: str) -> tuple[set[str], list[str], set[str]]:
    with engine.connect() as c:
        pid = c.exec_driver_sql("SELECT p.id FROM post p JOIN source s ON s.id = p.source_id"
                                " WHERE s.handle = 'edits_ch' AND p.external_id = ?", (ext,)).scalar()
        tags = {r[0] for r in c.exec_driver_sql(
            "SELECT t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id WHERE pt.post_id = ?", (pid,))}
        links = [r[0] for r in c.exec_driver_sql("SELECT url FROM link WHERE post_id = ? ORDER BY position", (pid,))]
        papers = {r[0] for r in c.exec_driver_sql(
            "SELECT pa.arxiv_id FROM post_paper pp JOIN paper pa ON pa.id = pp.paper_id WHERE pp.post_id = ?", (pid,))}
    return tags, links, papers


def test_an_edit_drops_the_tags_links_and_papers_the_post_no_longer_has(engine):
    first = _post("1", "Heads pruned: code at old/repo #nlp #pruning", tags=("nlp", "pruning"),
                  links=("https://github.com/old/repo", "https://github.com/shared/tool"), papers=("2004.13342",))
    ingest_records(engine, [first])
    assert _children(engine, "1") == ({"nlp", "pruning"}, ["https://github.com/old/repo", "https://github.com/shared/tool"],
                                      {"2004.13342"})
    edited = _post("1", "Heads pruned, corrected: code at new/repo #nlp #sparsity", tags=("nlp", "sparsity"),
                   links=("https://github.com/shared/tool", "https://github.com/new/repo"), papers=("1706.03762",),
                   edited=datetime(2023, 7, 2, 10, tzinfo=timezone.utc))
    stats = ingest_records(engine, [edited])
    assert (stats.posts_new, stats.posts_updated, stats.posts_unchanged) == (0, 1, 0)
    assert _children(engine, "1") == ({"nlp", "sparsity"}, ["https://github.com/shared/tool", "https://github.com/new/repo"],
                                      {"1706.03762"})


def test_an_edited_post_has_the_fingerprint_of_its_new_text(engine):
    """The fingerprint (what copies are found by) after an edit is the one the same text gets when
    first stored, here as a post of another channel."""
    ingest_records(engine, [_post("1", "A first version of the notes on pruning attention heads")])
    new_text = "The corrected notes on pruning attention heads, with the numbers fixed"
    ingest_records(engine, [_post("1", new_text, edited=datetime(2023, 7, 2, tzinfo=timezone.utc))])
    stats = ingest_records(engine, [_post("9", new_text, source=OTHER)])
    assert stats.copies == 1  # found by that fingerprint: a copy of the edited post
    with engine.connect() as c:
        rows = dict(c.exec_driver_sql("SELECT s.handle, p.fingerprint FROM post p JOIN source s ON s.id = p.source_id").all())
    assert rows["edits_ch"] is not None and rows["edits_ch"] == rows["elsewhere_ch"]


def test_edits_are_counted_over_every_batch(engine, monkeypatch):
    """Batches of two (the real size is 2000; the rule is the same): three posts are new in two
    batches, then all three are edited in two batches."""
    monkeypatch.setattr("catalog.ingest.CHUNK", 2)
    stats = ingest_records(engine, [_post(str(i), f"post {i} first words") for i in range(3)])
    assert stats.posts_new == 3
    stats = ingest_records(engine, [_post(str(i), f"post {i} other words") for i in range(3)])
    assert (stats.posts_new, stats.posts_updated, stats.posts_unchanged) == (0, 3, 0)


def test_one_input_of_two_channels_keeps_each_post_in_its_channel(engine):
    """Message ids repeat across channels: post 1 of one channel is not post 1 of the other, edited."""
    stats = ingest_records(engine, [_post("1", "first channel, post one"), _post("1", "second channel, post one", source=OTHER),
                                    _post("2", "first channel, post two")])
    assert (stats.posts_new, stats.posts_updated, stats.as_dict()["sources"]) == (3, 0, 2)
    with engine.connect() as c:
        rows = sorted(c.exec_driver_sql("SELECT s.handle, p.external_id, p.text FROM post p"
                                        " JOIN source s ON s.id = p.source_id").all())
    assert [tuple(r) for r in rows] == [("edits_ch", "1", "first channel, post one"), ("edits_ch", "2", "first channel, post two"),
                                        ("elsewhere_ch", "1", "second channel, post one")]


def test_the_same_post_read_by_another_route_adds_what_it_lacked(engine):
    """The same text read again (another route: a page, then an export) with two more links, a tag and a
    paper: nothing is overwritten, the post takes in the two links after its own, the tag and the paper; read
    once more the poorer way, it keeps them."""
    page = _post("1", "Pruning heads: code and paper inside", links=("https://github.com/a/heads",))
    export = _post("1", "Pruning heads: code and paper inside", tags=("nlp",), papers=("2004.13342",),
                   links=("https://github.com/a/heads", "https://github.com/b/extra", "https://github.com/c/more"))
    bare_page = _post("2", "A second post, with no link on the page")
    bare_export = _post("2", "A second post, with no link on the page", links=("https://github.com/d/second",))
    ingest_records(engine, [page, bare_page])
    stats = ingest_records(engine, [export, bare_export])  # both in one batch
    assert (stats.posts_new, stats.posts_updated, stats.posts_unchanged) == (0, 0, 2)
    assert _children(engine, "2") == (set(), ["https://github.com/d/second"], set())
    expected = ({"nlp"}, ["https://github.com/a/heads", "https://github.com/b/extra", "https://github.com/c/more"],
                {"2004.13342"})
    assert _children(engine, "1") == expected
    with engine.connect() as c:
        positions = sorted(tuple(r) for r in c.exec_driver_sql("SELECT p.external_id, l.position FROM link l"
                                                                " JOIN post p ON p.id = l.post_id"))
    assert positions == [("1", 0), ("1", 1), ("1", 2), ("2", 0)]
    ingest_records(engine, [page, bare_page])
    assert _children(engine, "1") == expected
