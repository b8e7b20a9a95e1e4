"""Catalog behaviours a mutation probe (issue 35) showed no test would notice when broken.

Each test states its expected values from the fixture as written (hand-counted), never
from the function under test, and each was seen to fail with the guarded line broken.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.ingest import ingest_paths, ingest_records
from catalog.models import Post, Source
from catalog.search import Filters, search
from support.channel_routes import Msg, tme_page
from support.helpers import HTML, message, serve_pages, write_json
from scrapers.records import PostRecord, SourceRecord

T0 = datetime(2023, 7, 1, 9, 0, tzinfo=timezone.utc)


def counts(engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (c.execute(select(func.count()).select_from(Source)).scalar(),
                c.execute(select(func.count()).select_from(Post)).scalar())


# ---------------------------------------------------------------- auto-merge: the share of agreeing ids


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

    def respond(path: str):
        from urllib.parse import parse_qs, urlsplit

        channel.requests.append(path)
        before = parse_qs(urlsplit(path).query).get("before")
        return 200, HTML, channel.page(int(before[0]) if before else None).encode()

    srv, host = serve_pages(respond)
    channel.url = f"http://{host}/s/{channel.name}"
    yield channel
    srv.shutdown()


def test_sync_stops_at_the_newest_stored_post(paged_server, cli):
    """25 posts over 3 pages (16-25, 6-15, 1-5); then posts 26 and 27 come: one page is enough."""
    host = paged_server.url.split("/")[2]  # a local mirror must be named (the follow list reaches Telegram only)
    assert cli("follow", "--mirror", host, paged_server.url).exit_code == 0
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
    assert parse_date("20230702T01", end_of_day=True) == datetime(2023, 7, 2, 1, tzinfo=utc)  # 11 characters, a time
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
    assert [h.id for h in search(engine, "Ps")] == [ids["mlops"]]  # also where no word starts with them
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


