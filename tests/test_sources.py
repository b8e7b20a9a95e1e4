"""One source per channel: readers agree, routes merge, merge/alias commands, cross-posts."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select

from channel_routes import (MESSAGES, USERNAME, Msg, expected_links, write_html_export, write_json_export,
                            write_tme_page)
from catalog.ingest import ingest_paths
from catalog.models import Post, Source
from catalog.search import Filters, search
from catalog.sources import text_fingerprint
from scrapers import formats

ROUTES = {"json": write_json_export, "html": write_html_export, "tme": write_tme_page}


def counts(engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (c.execute(select(func.count()).select_from(Source)).scalar(),
                c.execute(select(func.count()).select_from(Post)).scalar())


@pytest.mark.parametrize("route", ROUTES)
def test_every_reader_keeps_every_link_and_arxiv_id(tmp_path, route):
    posts = {p.external_id: p for p in formats.read(ROUTES[route](tmp_path))}
    assert set(posts) == {str(m.id) for m in MESSAGES}
    for m in MESSAGES:
        got = {link.url for link in posts[str(m.id)].links}
        assert expected_links(m) <= got, (route, m.id)
    assert posts["11"].arxiv_ids == ("2307.12037", "2310.06825")  # behind footnote anchors "1" and "2"
    assert set(posts["12"].arxiv_ids) == {"2106.09685", "2005.14165"}  # arXiv DOI, "arXiv: ID"
    assert posts["13"].arxiv_ids == ("hep-th/9901001",)
    assert "paper" in {link.kind for link in posts["13"].links}
    texts = {text_fingerprint(p.text) for p in posts.values()}
    assert None not in texts and len(texts) == len(MESSAGES)


def test_readers_agree_on_text_fingerprints(tmp_path):
    by_route = {r: {p.external_id: text_fingerprint(p.text) for p in formats.read(w(tmp_path / r))}
                for r, w in ROUTES.items()}
    assert by_route["json"] == by_route["html"] == by_route["tme"]


@pytest.mark.parametrize("order", [("json", "html", "tme"), ("tme", "html", "json"), ("html", "tme", "json")])
def test_three_routes_make_one_source_and_each_post_once(engine, tmp_path, order):
    for route in order:
        ingest_paths(engine, [ROUTES[route](tmp_path / route)])
    assert counts(engine) == (1, len(MESSAGES))
    with engine.connect() as c:
        src = c.execute(select(Source)).one()
    assert src.handle == USERNAME  # the public username is the channel's name
    assert src.channel_id == 1234567890
    hits = search(engine, "retrieval heads")
    assert len(hits) == 1
    # the richest record of each post: the page's view count, every link of every route
    with engine.connect() as c:
        views = c.execute(select(Post.views).where(Post.external_id == "11")).scalar()
    assert views == 1200
    # re-ingesting any route lands in the merged source and changes nothing
    for route in order:
        stats = ingest_paths(engine, [ROUTES[route](tmp_path / route)])
        assert stats.posts_new == 0 and stats.posts_updated == 0
    assert counts(engine) == (1, len(MESSAGES))


def test_too_little_overlap_is_not_merged(engine, tmp_path):
    """Two routes sharing only two messages are not certainly one channel: two sources."""
    ingest_paths(engine, [write_html_export(tmp_path / "h", MESSAGES[:2])])
    ingest_paths(engine, [write_tme_page(tmp_path / "t", MESSAGES[:2])])
    assert counts(engine) == (2, 4)


def test_different_channels_with_the_same_ids_stay_apart(engine, tmp_path):
    other = [Msg(m.id, m.when, [f"Completely different post number {m.id} about reinforcement learning"])
             for m in MESSAGES]
    ingest_paths(engine, [write_html_export(tmp_path / "h", other)])
    ingest_paths(engine, [write_tme_page(tmp_path / "t")])
    assert counts(engine) == (2, 2 * len(MESSAGES))


def test_same_channel_id_merges(engine, tmp_path):
    """An old export without the chat id, then a new one with it: the id is certain."""
    ingest_paths(engine, [write_json_export(tmp_path / "a", MESSAGES[:1], chat_id=None)])
    ingest_paths(engine, [write_json_export(tmp_path / "b", MESSAGES[1:])])
    assert counts(engine) == (2, len(MESSAGES))  # nothing certain yet: no shared ids
    with engine.begin() as c:
        from catalog.sources import merge_sources
        merge_sources(c, 2, 1)
    ingest_paths(engine, [write_json_export(tmp_path / "a", MESSAGES[:1], chat_id=None)])
    assert counts(engine) == (1, len(MESSAGES))
