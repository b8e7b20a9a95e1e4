"""Merge rules a mutation probe (issue 35) showed no test would notice when broken: the share
of agreeing ids an automatic merge needs, and how a merge folds two records of one message id.

Expected values are counted from the fixtures as written here, never taken from the code under test.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.ingest import ingest_paths, ingest_records
from catalog.models import Post, Source
from catalog.search import Filters, search
from support.helpers import message, write_json
from scrapers.records import PostRecord, SourceRecord
from test_blind_spots_catalog import T0, _record, counts


BOILERPLATE = "Subscribe to the channel and share it with colleagues who read papers"


def _export(path, name: str, texts: dict[int, str], chat_id: int | None) -> object:
    data = {"name": name, "type": "public_channel",
            "messages": [message(i, t, date=f"2023-07-{i:02d}T10:00:00") for i, t in sorted(texts.items())]}
    if chat_id is not None:
        data["id"] = chat_id
    return write_json(path, data)


def _two_channels(tmp_path, same: int):
    """Channel A (with its chat id) and an older export of B without one: ten message ids each,
    the first `same` of them carrying the same text in both."""
    a = {i: f"Alpha post {i}: a note on sparse attention kernels, part {i}" for i in range(1, 11)}
    b = {i: f"Beta post {i}: reinforcement learning from human feedback, episode {i}" for i in range(1, 11)}
    for i in range(1, same + 1):
        a[i] = b[i] = f"{BOILERPLATE} (reminder {i})"
    return _export(tmp_path / "a.json", "Alpha", a, 111), _export(tmp_path / "b.json", "Beta", b, None)


@pytest.mark.parametrize("same, expected", [
    (3, (2, 20)),  # 3 of 10 ids agree (30 %): two channels sharing boilerplate stay two
    (7, (2, 20)),  # 70 %: still below the 80 % share
    (8, (1, 10)),  # exactly 80 %: one channel, each message id once
])
def test_auto_merge_needs_the_share_of_agreeing_ids(engine, tmp_path, same, expected):
    a, b = _two_channels(tmp_path, same)
    ingest_paths(engine, [a])
    ingest_paths(engine, [b])
    assert counts(engine) == expected


@pytest.mark.parametrize("ids, expected", [(2, (2, 4)), (3, (1, 3))])
def test_auto_merge_needs_three_agreeing_ids(engine, tmp_path, ids, expected):
    """Two ids of two agree (100 %) is not enough, three of three is: SAME_TEXT_MIN is 3."""
    texts = {i: f"{BOILERPLATE} (number {i})" for i in range(1, ids + 1)}
    ingest_paths(engine, [_export(tmp_path / "a.json", "Alpha", texts, 111)])
    stats = ingest_paths(engine, [_export(tmp_path / "b.json", "Beta", texts, None)])
    assert counts(engine) == expected
    assert stats.sources_merged == (expected[0] == 1)


def _fold_record(handle: str, ext: str, text: str, **kw) -> PostRecord:
    from scrapers.records import Link

    links = tuple(Link(u) for u in kw.pop("links", ()))
    return PostRecord(source=SourceRecord(kind="telegram", handle=handle, title=kw.pop("title", "")),
                      external_id=ext, published_at=T0 + timedelta(days=int(ext)), text=text, title=text[:30],
                      url=f"https://t.me/{handle}/{ext}", language="en", links=links, **kw)


def test_a_merge_folds_each_field_into_the_richest_record(engine):
    """KEEP and OTHER share message ids 1 and 2; 3 is KEEP's only, 4 OTHER's only. For id 1 OTHER has
    more views, the later edit, another tag, paper, link and extra field; for id 2 KEEP is richer."""
    from catalog.models import Link as LinkRow, Paper, PostPaper, PostTag, Tag
    from catalog.source_merge import merge_sources

    ingest_records(engine, [
        _fold_record("keep_ch", "1", "Original notes on sparse attention, first draft", views=100,
                     hashtags=("a_tag",), arxiv_ids=("2101.00001",), links=("https://k.example/1",),
                     extra=(("author", "K"),)),
        _fold_record("keep_ch", "2", "Keep's corrected notes on mixture of experts", views=500,
                     edited_at=T0 + timedelta(days=4)),
        _fold_record("keep_ch", "3", "Only in keep: notes on state space models"),
        _fold_record("fan_ch", "9", "A fan channel quoting the other channel's post one at length")])
    ingest_records(engine, [
        _fold_record("other_ch", "1", "Edited notes on sparse attention kernels, final version", views=900,
                     edited_at=T0 + timedelta(days=8), hashtags=("b_tag",), arxiv_ids=("2202.00002",),
                     links=("https://o.example/1",), extra=(("author", "O"), ("readers", "7")), title="Other"),
        _fold_record("other_ch", "2", "Other's older notes on mixture of experts", views=300,
                     edited_at=T0 + timedelta(days=3)),
        _fold_record("other_ch", "4", "Only in other: notes on speculative decoding")])
    with engine.begin() as c:
        sid = dict(c.execute(select(Source.handle, Source.id)).all())
        post = {(h, e): i for h, e, i in c.execute(select(Source.handle, Post.external_id, Post.id).join(Source))}
        c.execute(Post.__table__.update().where(Post.id == post["fan_ch", "9"])
                  .values(copy_of_id=post["other_ch", "1"]))
        report = merge_sources(c, sid["keep_ch"], sid["other_ch"])
    assert (report.moved, report.folded, report.enriched, report.posts_after) == (1, 2, 1, 4)
    assert report.posts_before == {"keep": 3, "other": 3}
    assert report.aliases == ["telegram:other_ch"]
    assert report.keep["handle"] == "keep_ch" and report.other["handle"] == "other_ch"

    one, two = post["keep_ch", "1"], post["keep_ch", "2"]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Source)) == 2
        assert s.scalar(select(Source.title).where(Source.id == sid["keep_ch"])) == "Other"  # KEEP had none
        rows = {p.id: p for p in s.scalars(select(Post).where(Post.source_id == sid["keep_ch"]))}
        assert sorted(rows) == sorted([one, two, post["keep_ch", "3"], post["other_ch", "4"]])
        assert (rows[one].views, rows[one].text) == (900, "Edited notes on sparse attention kernels, final version")
        assert rows[one].edited_at.replace(tzinfo=None) == (T0 + timedelta(days=8)).replace(tzinfo=None)
        extra = json.loads(rows[one].extra) if isinstance(rows[one].extra, str) else rows[one].extra
        assert extra == {"author": "K", "readers": "7"}  # KEEP's value wins where both have the key
        assert (rows[two].views, rows[two].text) == (500, "Keep's corrected notes on mixture of experts")
        assert rows[two].edited_at.replace(tzinfo=None) == (T0 + timedelta(days=4)).replace(tzinfo=None)
        tags = set(s.scalars(select(Tag.name).join(PostTag, PostTag.tag_id == Tag.id).where(PostTag.post_id == one)))
        assert tags == {"a_tag", "b_tag"}
        papers = set(s.scalars(select(Paper.arxiv_id).join(PostPaper).where(PostPaper.post_id == one)))
        assert papers == {"2101.00001", "2202.00002"}
        links = s.execute(select(LinkRow.position, LinkRow.url).where(LinkRow.post_id == one)
                          .order_by(LinkRow.position)).all()
        assert [tuple(r) for r in links] == [(0, "https://k.example/1"), (1, "https://o.example/1")]
        assert s.scalar(select(Post.copy_of_id).where(Post.id == post["fan_ch", "9"])) == one
    # the index follows the folded text: the edit's words find the kept post, the old draft's do not
    assert [h.id for h in search(engine, "kernels final version")] == [one]
    assert search(engine, "first draft") == []


def test_a_merge_moves_the_aliases_of_the_merged_source_and_no_others(engine):
    from catalog.errors import DigestError
    from catalog.source_merge import merge_sources

    ingest_records(engine, [_record(h, str(i), f"Notes from {h} on retrieval augmented generation", day=i)
                            for i, h in enumerate(("aa_ch", "bb_ch", "cc_ch", "dd_ch", "ee_ch"), 1)])
    with engine.begin() as c:
        sid = dict(c.execute(select(Source.handle, Source.id)).all())
        merge_sources(c, sid["dd_ch"], sid["ee_ch"])  # an unrelated merge: dd answers to ee
        merge_sources(c, sid["aa_ch"], sid["bb_ch"])
        report = merge_sources(c, sid["cc_ch"], sid["aa_ch"])
        with pytest.raises(DigestError, match="KEEP and OTHER are the same source"):
            merge_sources(c, sid["cc_ch"], sid["cc_ch"])
    assert report.aliases == ["telegram:bb_ch", "telegram:aa_ch"] and report.automatic == ""
    for name in ("bb_ch", "aa_ch", "cc_ch"):
        assert len(search(engine, "retrieval", filters=Filters(source=name))) == 3, name
    assert len(search(engine, "retrieval", filters=Filters(source="ee_ch"))) == 2


def test_two_known_sources_merge_once_their_texts_agree(engine, tmp_path):
    """Both sources exist before the overlap shows: the merge happens when the overlap arrives."""
    same = {i: f"{BOILERPLATE} (issue {i})" for i in range(1, 5)}
    ingest_paths(engine, [_export(tmp_path / "a.json", "Alpha", same, 111)])
    ingest_paths(engine, [_export(tmp_path / "b1.json", "Beta", {9: "Beta's own first post, on diffusion"}, None)])
    assert counts(engine) == (2, 5)
    stats = ingest_paths(engine, [_export(tmp_path / "b2.json", "Beta", same, None)])
    assert stats.sources_merged == 1 and counts(engine) == (1, 5)


def test_each_kind_of_gain_counts_a_fold_as_enriched(engine):
    """OTHER brings, per shared message id, exactly one thing KEEP lacks (ids 1-4: text and URL, links, a tag, a paper) or nothing (5, 6)."""
    from catalog.models import Link as LinkRow
    from catalog.source_merge import merge_sources
    from scrapers.records import Link

    def rec(handle, ext, text, **kw):
        src = SourceRecord(kind="telegram", handle=handle, title=kw.pop("source_title", ""),
                           channel_id=kw.pop("channel_id", None))
        return PostRecord(source=src, external_id=ext, published_at=T0, text=text, title=text[:20], views=50,
                          **kw)

    body = "Notes on retrieval heads in long context models, number {}"
    other = "Another route's wording of item {}, so no automatic merge happens"
    ingest_records(engine, [
        rec("keep_ch", "1", "", source_title="Keep", channel_id=111),  # no text yet (a photo without caption)
        rec("keep_ch", "2", body.format(2), links=(Link("https://k.example/2"),)),
        rec("keep_ch", "3", body.format(3), hashtags=("a_tag",)),
        rec("keep_ch", "4", body.format(4), arxiv_ids=("2101.00001",)),
        rec("keep_ch", "5", body.format(5), extra=(("author", "K"),)),
        rec("keep_ch", "6", body.format(6), url="https://t.me/keep_ch/6")])
    ingest_records(engine, [
        rec("other_ch", "1", other.format(1), url="https://t.me/other_ch/1", source_title="Other"),
        rec("other_ch", "2", other.format(2), links=(Link("https://o.example/2a", "paper"),
                                                    Link("https://o.example/2b", "code"))),
        rec("other_ch", "3", other.format(3), hashtags=("b_tag",)),
        rec("other_ch", "4", other.format(4), arxiv_ids=("2202.00002",)),
        rec("other_ch", "5", other.format(5), extra=(("author", "O"),)),  # a key KEEP has: nothing gained
        rec("other_ch", "6", other.format(6), url="https://t.me/other_ch/6")])  # KEEP has a URL: kept
    with engine.begin() as c:
        sid = dict(c.execute(select(Source.handle, Source.id)).all())
        report = merge_sources(c, sid["keep_ch"], sid["other_ch"])
    assert (report.folded, report.enriched, report.moved) == (6, 4, 0)  # ids 1-4 gain; 5 and 6 do not
    with Session(engine) as s:
        keep = s.get(Source, sid["keep_ch"])
        assert (keep.title, keep.channel_id) == ("Keep", 111)  # KEEP's own stay
        post = {p.external_id: p for p in s.scalars(select(Post).where(Post.source_id == keep.id))}
        assert (post["1"].text, post["1"].url) == (other.format(1), "https://t.me/other_ch/1")
        assert post["2"].text == body.format(2)  # no edit: KEEP's text stays
        assert post["6"].url == "https://t.me/keep_ch/6"
        links = s.execute(select(LinkRow.position, LinkRow.url, LinkRow.kind).where(LinkRow.post_id == post["2"].id)
                          .order_by(LinkRow.position)).all()
        assert [tuple(r) for r in links] == [(0, "https://k.example/2", "other"), (1, "https://o.example/2a", "paper"),
                                             (2, "https://o.example/2b", "code")]
