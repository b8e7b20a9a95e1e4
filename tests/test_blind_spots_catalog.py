"""Catalog behaviours a mutation probe (issue 35) showed no test would notice when broken.

Each test states its expected values from the fixture as written (hand-counted), never
from the function under test, and each was seen to fail with the guarded line broken.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.ingest import ingest_paths, ingest_records
from catalog.models import Post, Source
from catalog.search import Filters, search
from channel_routes import Msg, tme_page
from helpers import message, write_json
from scrapers.records import PostRecord, SourceRecord

T0 = datetime(2023, 7, 1, 9, 0, tzinfo=timezone.utc)


def counts(engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (c.execute(select(func.count()).select_from(Source)).scalar(),
                c.execute(select(func.count()).select_from(Post)).scalar())


# ---------------------------------------------------------------- auto-merge: the share of agreeing ids

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


# ---------------------------------------------------------------- search filters

def _record(handle: str, ext: str, text: str, *, day: int, arxiv: tuple[str, ...] = (), title: str = "",
            source_title: str = "") -> PostRecord:
    return PostRecord(source=SourceRecord(kind="telegram", handle=handle, title=source_title or handle.title()),
                      external_id=ext, published_at=T0 + timedelta(days=day), text=text, title=title or text[:40],
                      arxiv_ids=arxiv, language="en")


def _ids_by_title(engine) -> dict[str, int]:
    with engine.connect() as c:
        return dict(c.execute(select(Post.title, Post.id)).all())


def test_reproduction_filters_split_posts_by_their_papers(engine):
    """Three posts on diffusion: one discusses a paper we reproduced, one a paper we did not,
    one no paper at all."""
    from catalog.runs import upsert_reproduction

    ingest_records(engine, [
        _record("lab_ch", "1", "Diffusion models beat GANs, reproduced here", day=1, arxiv=("2105.05233",),
                title="reproduced"),
        _record("lab_ch", "2", "Diffusion transformers scale with compute", day=2, arxiv=("2212.09748",),
                title="paper, no reproduction"),
        _record("lab_ch", "3", "Diffusion is everywhere this week, no paper today", day=3, title="no paper")])
    with Session(engine) as s, s.begin():
        upsert_reproduction(s, slug="adm", arxiv_id="2105.05233")
    by_title = _ids_by_title(engine)

    def found(**kw) -> set[int]:
        return {h.id for h in search(engine, "diffusion", filters=Filters(**kw))}

    assert found(has_reproduction=True) == {by_title["reproduced"]}
    assert found(has_reproduction=False) == {by_title["paper, no reproduction"], by_title["no paper"]}
    assert found() == set(by_title.values())


def test_search_by_a_merged_sources_old_name(engine):
    """After `sources merge`, the name the merged-away source had still selects its posts (now the kept one's)."""
    from catalog.source_merge import merge_sources

    ingest_records(engine, [
        _record("papers_lab", "1", "Mixture of experts routing, explained slowly", day=1, title="kept"),
        _record("old_lab_name", "7", "Mixture of experts load balancing losses", day=2, title="moved"),
        _record("unrelated_ch", "1", "Mixture of experts in vision transformers", day=3, title="elsewhere")])
    with engine.begin() as c:
        keep = c.execute(select(Source.id).where(Source.handle == "papers_lab")).scalar()
        other = c.execute(select(Source.id).where(Source.handle == "old_lab_name")).scalar()
        merge_sources(c, keep, other)
    by_title = _ids_by_title(engine)
    merged = {by_title["kept"], by_title["moved"]}
    for name in ("old_lab_name", "@old_lab_name", "OLD_LAB_NAME", "papers_lab"):
        assert {h.id for h in search(engine, "mixture experts", filters=Filters(source=name))} == merged, name
    assert {h.id for h in search(engine, "mixture experts", filters=Filters(source="unrelated_ch"))} == \
        {by_title["elsewhere"]}


def test_hyphenated_query_keeps_its_words_adjacent(engine):
    """`self-attention` is a phrase on both engines: a post with "self" and "attention" apart is no hit."""
    ingest_records(engine, [
        _record("a_ch", "1", "Self-attention layers explained with a small worked example", day=1, title="adjacent"),
        _record("a_ch", "2", "Self supervised pretraining meets attention pooling in speech", day=2, title="apart"),
        _record("a_ch", "3", "Attention to self care matters for researchers too", day=3, title="reversed")])
    by_title = _ids_by_title(engine)
    for query in ("self-attention", "Self-Attention", "self‐attention"):
        assert {h.id for h in search(engine, query)} == {by_title["adjacent"]}, query
    assert {h.id for h in search(engine, "self attention")} == set(by_title.values())  # two words, anywhere


# ---------------------------------------------------------------- related lists: incremental update

def test_an_old_related_list_takes_in_a_new_near_copy(sample_engine, tmp_path):
    """A new post that repeats an old post almost word for word must head that old post's list
    after an incremental update (a near-copy is the nearest neighbour there can be)."""
    from catalog.related import rebuild_related, stored_lists, update_related

    rebuild_related(sample_engine)
    with Session(sample_engine) as s:
        old_id, old_text = s.execute(select(Post.id, Post.text).where(Post.title.contains("Self-attention в 15 строк"))
                                     ).one()
    export = {"name": "New Channel", "type": "public_channel", "id": 777,
              "messages": [message(1, old_text + "\nПовтор для новых подписчиков.", date="2020-06-01T10:00:00")]}
    ingest_paths(sample_engine, [write_json(tmp_path / "new.json", export)])
    with Session(sample_engine) as s:
        new_id = s.scalar(select(Post.id).join(Source).where(Source.channel_id == 777))
    assert update_related(sample_engine)["mode"] == "incremental"
    with Session(sample_engine) as s:
        lists = stored_lists(s)
    assert lists[("post", old_id)]["post"][0][0] == new_id
    assert lists[("post", new_id)]["post"][0][0] == old_id


# ---------------------------------------------------------------- sync: the walk stops at the newest stored post

PAGE = 10  # posts on one t.me/s page


class PagedChannel:
    """A channel served as t.me/s pages of PAGE posts, newest first, `?before=` for older ones."""

    def __init__(self, name: str, last: int):
        self.name, self.requests = name, []
        self.set_last(last)

    def set_last(self, last: int) -> None:
        self.posts = [Msg(i, T0 + timedelta(hours=i), [f"Post {i} of {self.name}: notes on optimisation paper {i}"])
                      for i in range(1, last + 1)]

    def page(self, before: int | None) -> str:
        older = [m for m in self.posts if before is None or m.id < before]
        shown = older[-PAGE:]
        more = shown[0].id if shown and shown[0].id > 1 else None
        return tme_page(shown, username=self.name, title=self.name.title(), before=more)


@pytest.fixture
def paged_server():
    channel = PagedChannel("paged_ch", 25)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            from urllib.parse import parse_qs, urlsplit

            channel.requests.append(self.path)
            before = parse_qs(urlsplit(self.path).query).get("before")
            body = channel.page(int(before[0]) if before else None).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    channel.url = f"http://127.0.0.1:{srv.server_address[1]}/s/{channel.name}"
    yield channel
    srv.shutdown()


def test_sync_stops_at_the_newest_stored_post(paged_server, cli):
    """25 posts over 3 pages (16-25, 6-15, 1-5); then posts 26 and 27 come: one page is enough."""
    assert cli("follow", paged_server.url).exit_code == 0
    first = cli("sync", "--interval", "0.1", "--no-arxiv", "--json")
    assert first.exit_code == 0, first.output
    assert [(c["new"], c["pages"]) for c in json.loads(first.stdout)["channels"]] == [(25, 3)]
    assert [r.split("?")[-1] for r in paged_server.requests] == ["/s/paged_ch", "before=16", "before=6"]

    paged_server.set_last(27)
    paged_server.requests.clear()
    again = cli("sync", "--interval", "0.1", "--no-arxiv", "--json")
    assert again.exit_code == 0, again.output
    channel = json.loads(again.stdout)["channels"][0]
    assert (channel["new"], channel["unchanged"], channel["pages"]) == (2, 0, 1)
    assert paged_server.requests == ["/s/paged_ch"]
    rows = {r["handle"]: r["posts"] for r in json.loads(cli("sources", "--json").stdout)}
    assert rows == {"paged_ch": 27}


def test_ingest_full_walks_every_page_again(paged_server, cli):
    """`digest ingest URL --full` does not stop at the newest stored post: all 3 pages, 25 posts seen."""
    assert cli("ingest", paged_server.url, "--json").exit_code == 0
    paged_server.requests.clear()
    full = cli("ingest", paged_server.url, "--full", "--json")
    assert full.exit_code == 0, full.output
    stats = json.loads(full.stdout)
    assert (stats["posts_new"], stats["posts_unchanged"]) == (0, 25)
    assert len(paged_server.requests) == 3


# ---------------------------------------------------------------- a merge folds two records of one message id

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


def test_each_filter_selects_the_posts_it_names(engine):
    """Four posts on transformers, hand-labelled; every filter's expected set is counted from this list."""
    from catalog.search import parse_date

    def rec(handle, ext, day, lang, tags, title):
        return PostRecord(source=SourceRecord(kind="telegram", handle=handle, title=f"{handle.title()} Digest"),
                          external_id=ext, published_at=datetime(2023, 7, day, 12, 0, tzinfo=timezone.utc),
                          text=f"Transformers {title}: a note, with the details that matter.", title=title,
                          hashtags=tags, language=lang)

    ingest_records(engine, [rec("north_ch", "1", 1, "en", ("nlp",), "n1"), rec("north_ch", "2", 2, "ru", (), "n2"),
                            rec("south_ch", "1", 2, "en", ("nlp", "vision"), "s1"),
                            rec("south_ch", "2", 3, "ru", ("vision",), "s2")])
    ids = _ids_by_title(engine)
    with engine.connect() as c:
        north = c.execute(select(Source.id).where(Source.handle == "north_ch")).scalar()

    def found(**kw) -> set[str]:
        by_id = {v: k for k, v in ids.items()}
        return {by_id[h.id] for h in search(engine, "transformers", filters=Filters(**kw))}

    assert found() == {"n1", "n2", "s1", "s2"}
    assert found(tag="#NLP") == found(tag="nlp") == {"n1", "s1"}
    assert found(tag="vision") == {"s1", "s2"}
    for name in ("north_ch", "@North_Ch", "North_ch Digest", str(north)):
        assert found(source=name) == {"n1", "n2"}, name
    assert found(lang="RU") == found(lang="ru") == {"n2", "s2"}
    day2 = datetime(2023, 7, 2, 12, 0, tzinfo=timezone.utc)
    assert found(since=day2) == {"n2", "s1", "s2"}  # the bounds are inclusive
    assert found(until=day2) == {"n1", "n2", "s1"}
    assert found(since=day2, until=day2) == {"n2", "s1"}
    assert found(until=parse_date("2023-07-02", end_of_day=True)) == {"n1", "n2", "s1"}
    assert found(since=parse_date("2023-07-03")) == {"s2"}
    assert found(until=parse_date("2023-07-01")) == set()  # a bare date as a datetime: midnight, before 12:00
    assert found(tag="vision", lang="ru", source="south_ch") == {"s2"}


def test_parse_date_reads_a_bare_date_as_a_whole_day_when_it_ends_a_range():
    from catalog.errors import UsageError
    from catalog.search import parse_date

    utc = timezone.utc
    assert parse_date("2023-07-02") == datetime(2023, 7, 2, tzinfo=utc)
    assert parse_date("2023-07-02", end_of_day=True) == datetime(2023, 7, 2, 23, 59, 59, tzinfo=utc)
    assert parse_date("2023-07-02T08:30:00", end_of_day=True) == datetime(2023, 7, 2, 8, 30, tzinfo=utc)
    assert parse_date("2023-07-02T08:30:00+02:00") == datetime(2023, 7, 2, 6, 30, tzinfo=utc)
    assert parse_date("") is None and parse_date(None) is None
    for bad in ("yesterday", "2023-13-01", "02.07.2023"):
        with pytest.raises(UsageError, match=f"bad date '{bad}': use YYYY-MM-DD"):
            parse_date(bad)


# ---------------------------------------------------------------- survivors of the mutation run (tools/mutation.py)

def test_search_limits_empty_queries_and_control_characters(engine):
    from catalog.errors import UsageError

    ingest_records(engine, [
        _record("a_ch", "1", "Sparse attention for long documents", day=1, title="one"),
        _record("a_ch", "2", "Sparse attention kernels on GPUs", day=2, title="two"),
        _record("a_ch", "3", "MLOps pipelines that survive a reorg", day=3, title="mlops")])
    ids = _ids_by_title(engine)
    assert len(search(engine, "sparse attention", limit=1)) == 1
    assert {h.id for h in search(engine, "sparse\x00attention")} == {ids["one"], ids["two"]}
    assert [h.id for h in search(engine, "ML")] == [ids["mlops"]]  # two characters: a substring, inside a word
    with pytest.raises(UsageError, match="--limit must be at least 1"):
        search(engine, "sparse", limit=0)
    with pytest.raises(UsageError, match="empty query: give a word to search for"):
        search(engine, " \t ")


def test_copies_stay_out_of_filtered_and_substring_searches_unless_asked(engine):
    """A repost (same text, another channel) is a copy: hidden with any filter and for short
    queries too, shown when copies are asked for."""
    text = "Quantised low rank adapters, read the original thread for details"
    ingest_records(engine, [_record("orig_ch", "1", text, day=1, title="original"),
                            _record("fan_ch", "5", text, day=2, title="copy")])
    ids = _ids_by_title(engine)
    with engine.connect() as c:
        assert c.execute(select(Post.copy_of_id).where(Post.id == ids["copy"])).scalar() == ids["original"]

    def found(query: str, **kw) -> set[int]:
        return {h.id for h in search(engine, query, filters=Filters(**kw))}

    for query in ("low rank adapters", "Qu"):  # words (FTS) and two characters (substring)
        assert found(query) == found(query, lang="en") == {ids["original"]}, query
        assert found(query, include_copies=True) == found(query, lang="en", include_copies=True) == \
            {ids["original"], ids["copy"]}, query


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
