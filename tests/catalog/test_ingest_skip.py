"""A re-ingest skips the messages it has stored exactly as read, before analysing them (issue 33).

Each post keeps the digest of its raw message (`scrapers.digests`); the reader compares it
before any analysis. What must hold: the same export again changes nothing, not even a
clock; an edited message is still analysed and updated; a repeated id still ends as its
last copy; a catalog without digests (older, or another analysis) is read in full once.
Analysis is counted by wrapping the real `scrapers.normalize.analyze` (it still runs).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import inspect

from catalog import ingest_parser
from catalog.ingest import ingest_file
from scrapers import digests, normalize, telegram_json
from support.helpers import message, telegram_export, write_json
from test_ingest import fts_consistent, index_hits

TEXTS = [f"Post {i}: attention heads and dropout, notes on regularization #nlp arxiv.org/abs/2004.{13000 + i}"
         for i in range(40)]


def everything(engine) -> dict[str, list[tuple]]:
    """Every row of every table, clocks included (a skipped message must not even touch one)."""
    out = {}
    with engine.connect() as c:
        for table in sorted(t for t in inspect(c).get_table_names() if not t.startswith("post_fts")):
            out[table] = sorted(map(tuple, c.exec_driver_sql(f"SELECT * FROM {table}")), key=repr)
    return out


@pytest.fixture
def analysed(monkeypatch) -> list[str]:
    """The texts `analyze` was asked about, in this process (the real function still answers)."""
    seen: list[str] = []
    real = normalize.analyze

    def counting(text, *args, **kwargs):
        seen.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(telegram_json, "analyze", counting)
    return seen


def _export(tmp_path, texts, changes: dict[int, dict] | None = None):
    """result.json of one message per text (ids from 1); `changes` edits messages by id."""
    msgs = [message(i + 1, t, date_unixtime=str(1588000000 + 60 * i)) for i, t in enumerate(texts)]
    for msg_id, fields in (changes or {}).items():
        msgs[msg_id - 1].update(fields)
    return write_json(tmp_path / "result.json", telegram_export(msgs))


def test_reingest_of_the_same_export_skips_every_message_and_changes_nothing(engine, tmp_path, analysed):
    path = _export(tmp_path, TEXTS)
    first = ingest_file(engine, path)
    assert first.posts_new == len(TEXTS) and len(analysed) == len(TEXTS)
    before = everything(engine)
    analysed.clear()
    again = ingest_file(engine, path)
    assert (again.posts_new, again.posts_updated, again.posts_unchanged) == (0, 0, len(TEXTS))
    assert analysed == []  # not one message analysed again
    assert everything(engine) == before
    # what the run reports is still what the export holds: 1 hashtag, 40 papers
    assert (again.tags, again.arxiv_ids, again.sources) == (1, len(TEXTS), 1)


def test_an_edited_message_is_analysed_and_updated_the_others_skipped(engine, tmp_path, analysed):
    path = _export(tmp_path, TEXTS)
    ingest_file(engine, path)
    analysed.clear()
    edited = "Post 7: multi-head attention with a learned gate #vae arxiv.org/abs/1706.03762"
    _export(tmp_path, TEXTS, {7: {"text": edited, "edited_unixtime": "1589000000"}})
    stats = ingest_file(engine, path)
    assert (stats.posts_new, stats.posts_updated, stats.posts_unchanged) == (0, 1, len(TEXTS) - 1)
    assert analysed == [edited]
    with engine.connect() as c:
        text, = c.exec_driver_sql("SELECT text FROM post WHERE external_id='7'").one()
        tags = {r[0] for r in c.exec_driver_sql(
            "SELECT t.name FROM post p JOIN post_tag pt ON pt.post_id=p.id JOIN tag t ON t.id=pt.tag_id"
            " WHERE p.external_id='7'")}
        assert index_hits(c, "learned gate") == 1 and index_hits(c, "notes on regularization") == len(TEXTS) - 1
    assert text == edited and tags == {"vae"}
    assert fts_consistent(engine)
    # and the edit is now what is stored: the same file a third time is skipped whole
    analysed.clear()
    assert ingest_file(engine, path).posts_unchanged == len(TEXTS) and analysed == []


@pytest.mark.parametrize("order", ["stored copy first", "stored copy last"])
def test_a_repeated_id_still_ends_as_its_last_copy(engine, tmp_path, order):
    old, new = "the stored text of message one", "another text for message one"
    path = write_json(tmp_path / "r.json", telegram_export([message(1, old)]))
    ingest_file(engine, path)
    copies = [message(1, old), message(1, new)] if order == "stored copy first" else [message(1, new), message(1, old)]
    write_json(path, telegram_export(copies))
    ingest_file(engine, path)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT text FROM post").scalar() == copies[-1]["text"]


@pytest.mark.parametrize("stale", [None, "0" * 32], ids=["no digest (older catalog)", "another analysis"])
def test_a_catalog_without_current_digests_is_read_in_full_once(engine, tmp_path, analysed, stale):
    path = _export(tmp_path, TEXTS)
    ingest_file(engine, path)
    with engine.begin() as c:
        current = dict(c.exec_driver_sql("SELECT external_id, raw_digest FROM post").all())
        c.exec_driver_sql("UPDATE post SET raw_digest=?", (stale,))
    before = everything(engine)
    analysed.clear()
    stats = ingest_file(engine, path)
    assert stats.posts_unchanged == len(TEXTS) and len(analysed) == len(TEXTS)
    with engine.connect() as c:
        assert dict(c.exec_driver_sql("SELECT external_id, raw_digest FROM post").all()) == current
    # only the digests were written (the post table's last column): every other value, clocks included, is as it was
    after = everything(engine)
    assert sorted(r[:-1] for r in after.pop("post")) == sorted(r[:-1] for r in before.pop("post"))
    assert after == before
    analysed.clear()
    assert ingest_file(engine, path).posts_unchanged == len(TEXTS) and analysed == []


def test_the_digest_is_of_the_message_exactly_as_the_file_spells_it(tmp_path):
    # Two messages laid out by hand: odd spacing and key order are part of what was read.
    first = '{"type": "message",  "id": 5, "date": "2020-04-27T10:15:00", "text": "spaced   out"}'
    second = '{"id":6,"type":"message","date":"2020-04-27T10:16:00","text":"tight"}'
    path = tmp_path / "result.json"
    path.write_text('{"name": "C", "id": 9, "messages": [\n  ' + first + ",\n  " + second + "\n]}", encoding="utf-8")
    records = list(telegram_json.parse_file(path))
    key = digests.analysis_key()
    expected = [hashlib.blake2b(key + raw.encode(), digest_size=16).hexdigest() for raw in (first, second)]
    assert [r.raw_digest for r in records] == expected
    # the same message re-serialised is other bytes: another digest (it is read again, not skipped)
    assert digests.message_digest(json.dumps(json.loads(first))) != expected[0]


def test_the_parser_child_skips_the_same_way(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_parser, "PARALLEL_MIN_BYTES", 0)  # every file through the forked child
    path = _export(tmp_path, TEXTS)
    assert ingest_file(engine, path).posts_new == len(TEXTS)
    before = everything(engine)
    stats = ingest_file(engine, path)
    assert (stats.posts_updated, stats.posts_unchanged, stats.tags, stats.arxiv_ids) == (0, len(TEXTS), 1, len(TEXTS))
    assert everything(engine) == before
    _export(tmp_path, TEXTS, {3: {"text": "Post 3 rewritten: gated attention"}})
    stats = ingest_file(engine, path)
    assert (stats.posts_updated, stats.posts_unchanged) == (1, len(TEXTS) - 1)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT text FROM post WHERE external_id='3'").scalar() == "Post 3 rewritten: gated attention"
