"""catalog.ingest: idempotence, edits, rollback of bad files, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from catalog.errors import DigestError
from catalog.ingest import ingest_file, ingest_paths
from support.helpers import REPO, dump, message, shared_path, table_counts, telegram_export, write_json


def test_sample_corpus_ingests_all_posts(sample_engine, sample_files):
    counts = table_counts(sample_engine)
    assert counts["source"] == 3
    # 11 + 10 + 8 messages with text; service messages are not posts
    assert counts["post"] == 29
    assert counts["post_search"] == 29
    with sample_engine.connect() as c:
        ids = {r[0] for r in c.exec_driver_sql("SELECT arxiv_id FROM paper")}
    assert {"2004.13342", "2007.03898", "2004.04092", "2008.02965", "1706.03762", "hep-th/9901001"} <= ids


def fts_consistent(engine) -> bool:
    """The index matches its content (raises when it does not).

    SQLite: FTS5's own integrity check of the external-content index. PostgreSQL: the
    tsvector is a generated column of post_search, so every post must have its row there.
    """
    with engine.begin() as c:
        if c.dialect.name == "sqlite":
            c.exec_driver_sql("INSERT INTO post_fts(post_fts, rank) VALUES ('integrity-check', 1)")
            return True
        unindexed = c.exec_driver_sql("SELECT count(*) FROM post p LEFT JOIN post_search s ON s.post_id = p.id"
                                      " WHERE s.post_id IS NULL OR s.doc IS NULL").scalar()
    if unindexed:
        raise AssertionError(f"index malformed: {unindexed} posts have no index row")
    return True


def index_hits(conn, words: str) -> int:
    """Posts whose index holds `words` as a phrase, asked of the engine's own full-text index."""
    if conn.dialect.name == "sqlite":
        phrase = " + ".join(f'"{w}"' for w in words.split())
        return conn.exec_driver_sql("SELECT count(*) FROM post_fts WHERE post_fts MATCH ?", (phrase,)).scalar()
    return conn.exec_driver_sql("SELECT count(*) FROM post_search WHERE doc @@ phraseto_tsquery('simple', %s)",
                                (words,)).scalar()


def test_reingest_changes_nothing(sample_engine, sample_files):
    before = dump(sample_engine)
    stats = ingest_paths(sample_engine, sample_files)
    assert (stats.posts_new, stats.posts_updated, stats.posts_unchanged) == (0, 0, 29)
    assert dump(sample_engine) == before  # same rows, same ids, same timestamps
    assert fts_consistent(sample_engine)


def test_index_check_notices_a_missing_index_row(sample_engine):
    """The consistency check used above can fail: drop one row from the index only."""
    with sample_engine.begin() as c:
        if c.dialect.name == "sqlite":
            c.exec_driver_sql("INSERT INTO post_fts(post_fts, rowid, title, body)"
                              " SELECT 'delete', post_id, title, body FROM post_search LIMIT 1")
        else:
            c.exec_driver_sql("DELETE FROM post_search WHERE post_id = (SELECT min(post_id) FROM post_search)")
    with pytest.raises(Exception, match="malformed|corrupt"):
        fts_consistent(sample_engine)


def test_edited_post_updates_in_place(engine, tmp_path):
    path = write_json(tmp_path / "result.json", telegram_export([
        message(1, "DropHead drops heads #nlp arxiv.org/abs/2004.13342"),
        message(2, "Another post #vae"),
    ]))
    ingest_file(engine, path)
    with engine.connect() as c:
        post_id = c.exec_driver_sql("SELECT id FROM post WHERE external_id='1'").scalar()
    write_json(path, telegram_export([
        message(1, "DropHead drops whole heads, edited #nlp #regularization arxiv.org/abs/1706.03762",
                edited="2020-04-28T09:00:00"),
        message(2, "Another post #vae"),
    ]))
    stats = ingest_file(engine, path)
    assert (stats.posts_new, stats.posts_updated, stats.posts_unchanged) == (0, 1, 1)
    with engine.connect() as c:
        rows = c.exec_driver_sql("SELECT id, text, edited_at FROM post WHERE external_id='1'").all()
        tags = {r[0] for r in c.exec_driver_sql(
            "SELECT t.name FROM post_tag pt JOIN tag t ON t.id=pt.tag_id WHERE pt.post_id=?", (post_id,))}
        papers = {r[0] for r in c.exec_driver_sql(
            "SELECT p.arxiv_id FROM post_paper pp JOIN paper p ON p.id=pp.paper_id WHERE pp.post_id=?", (post_id,))}
        old_text_hits = index_hits(c, "drops heads")
        new_text_hits = index_hits(c, "edited")
    assert len(rows) == 1 and rows[0][0] == post_id  # same row, not a duplicate
    assert "edited" in rows[0][1]
    assert str(rows[0][2]).startswith("2020-04-28 09:00")
    assert tags == {"nlp", "regularization"}
    assert papers == {"1706.03762"}
    assert old_text_hits == 0 and new_text_hits == 1  # the index follows the edit
    assert fts_consistent(engine)


def test_edit_without_edit_date_gets_ingest_time(engine, tmp_path):
    path = write_json(tmp_path / "r.json", telegram_export([message(1, "first version")]))
    ingest_file(engine, path)
    write_json(path, telegram_export([message(1, "second version")]))
    ingest_file(engine, path)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT edited_at FROM post").scalar() is not None


def test_duplicate_ids_in_one_file_keep_the_last(engine, tmp_path):
    path = write_json(tmp_path / "r.json", telegram_export([message(7, "old text"), message(7, "new text")]))
    stats = ingest_file(engine, path)
    assert stats.posts_new == 1
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT text FROM post").scalar() == "new text"


BAD_FILES = {
    "truncated": lambda good: good[: len(good) // 2],
    "wrong_top_level": lambda good: json.dumps([{"id": 1, "text": "a list, not an export"}]),
    "text_is_number": lambda good: json.dumps(telegram_export([message(1, "fine"), message(2, 12345)])),
    "message_is_string": lambda good: json.dumps(telegram_export([message(1, "fine"), "oops"])),
    "id_is_string": lambda good: json.dumps(telegram_export([message(1, "fine"), message("x", "bad id")])),
    "bad_date": lambda good: json.dumps(telegram_export([message(1, "fine"), message(2, "t", date="yesterday")])),
    "not_utf8": lambda good: good.replace("post number", "пост номер"),  # written as cp1251 below
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_rolls_back_and_leaves_catalog_untouched(sample_engine, tmp_path, kind):
    before = dump(sample_engine)
    good = json.dumps(telegram_export([message(i, f"post number {i} #bad") for i in range(1, 5000)]))
    bad = tmp_path / f"{kind}.json"
    bad.write_bytes(BAD_FILES[kind](good).encode("cp1251" if kind == "not_utf8" else "utf-8"))
    with pytest.raises(DigestError) as err:
        ingest_file(sample_engine, bad, format="telegram-json")
    assert str(bad) in str(err.value)
    assert "\n" not in str(err.value)
    assert dump(sample_engine) == before


def test_failure_mid_file_rolls_back_rows_already_written(engine, tmp_path):
    # 4,500 good messages (more than two write batches) then a broken one: nothing may stay.
    msgs = [message(i, f"good post {i}") for i in range(1, 4501)] + [message(4501, {"not": "text"})]
    path = write_json(tmp_path / "r.json", telegram_export(msgs))
    with pytest.raises(DigestError, match="message #4500"):
        ingest_file(engine, path)
    assert table_counts(engine)["post"] == 0


def test_earlier_files_stay_when_a_later_one_fails(engine, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_json(folder / "a.json", telegram_export([message(1, "kept post")], chat_id=1))
    (folder / "b.json").write_text('{"messages": [', encoding="utf-8")
    with pytest.raises(DigestError, match="b.json"):
        ingest_paths(engine, [folder])
    assert table_counts(engine)["post"] == 1


def test_missing_path_is_a_clear_error(engine, tmp_path):
    with pytest.raises(DigestError, match="no such file"):
        ingest_paths(engine, [tmp_path / "nope.json"])


SLOW_INGEST = textwrap.dedent("""
    import sys, time
    from catalog.db import open_db
    from catalog.ingest import ingest_records
    from scrapers.telegram_json import parse_export

    def records():
        export = {"name": "c", "id": 1, "messages": [
            {"id": i, "type": "message", "date": "2020-01-01T00:00:00", "text": f"post {i} #t"}
            for i in range(1, 6001)]}
        for n, rec in enumerate(parse_export(export), 1):
            if n == 4500:  # two batches are written inside the open transaction by now
                print("MID", flush=True)
                time.sleep(60)
            yield rec

    ingest_records(open_db(sys.argv[1]), records())
""")


def test_sigkill_mid_ingest_leaves_valid_db_and_rerun_completes(tmp_path):
    db = tmp_path / "k.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_INGEST, str(db)], stdout=subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == b"MID"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    from catalog.db import open_db

    engine = open_db(db)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert c.exec_driver_sql("SELECT count(*) FROM post").scalar() == 0
        assert c.exec_driver_sql("INSERT INTO post_fts(post_fts) VALUES ('integrity-check')") is not None
    # The re-run completes the job.
    script = SLOW_INGEST.replace("if n == 4500", "if False")
    subprocess.run([sys.executable, "-c", script, str(db)], check=True, env=env, cwd=REPO, timeout=120)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM post").scalar() == 6000
        assert c.exec_driver_sql("SELECT count(*) FROM post_fts WHERE post_fts MATCH 't'").scalar() == 6000


def test_real_telegram_export_ingests(engine):
    path = shared_path("fixtures", "telegram", "uponthepathofsalaf_result.json")
    stats = ingest_file(engine, path)
    assert stats.posts_new == 208  # 213 messages, 5 of them service messages
    assert stats.tags == 3  # patience, scholarly_anecdotes, side_benefits (bot suffix dropped)
    again = ingest_file(engine, path)
    assert again.posts_unchanged == 208 and again.posts_new == again.posts_updated == 0


def test_post_ingested_after_its_paper_was_synced_gets_category_tags(engine, tmp_path):
    path = write_json(tmp_path / "a.json", telegram_export([message(1, "first mention arxiv.org/abs/2004.13342")]))
    ingest_file(engine, path)
    with engine.begin() as c:  # what `digest arxiv sync` stores for the paper
        c.exec_driver_sql("UPDATE paper SET title='Scheduled DropHead', status='ok' WHERE arxiv_id='2004.13342'")
        c.exec_driver_sql("INSERT INTO tag(name) VALUES ('cs.cl')")
        c.exec_driver_sql("INSERT INTO paper_tag(paper_id, tag_id, origin) SELECT p.id, t.id, 'arxiv-category'"
                          " FROM paper p, tag t WHERE p.arxiv_id='2004.13342' AND t.name='cs.cl'")
    later = write_json(tmp_path / "b.json", telegram_export(
        [message(5, "a later post on arXiv:2004.13342 #nlp")], chat_id=99))
    ingest_file(engine, later)
    with engine.connect() as c:
        rows = set(c.exec_driver_sql(
            "SELECT t.name, pt.origin FROM post_tag pt JOIN tag t ON t.id = pt.tag_id JOIN post p ON p.id = pt.post_id"
            " WHERE p.external_id = '5'"))
        body = c.exec_driver_sql("SELECT body FROM post_search s JOIN post p ON p.id = s.post_id"
                                 " WHERE p.external_id = '5'").scalar()
    assert rows == {("nlp", "hashtag"), ("cs.cl", "arxiv-category")}
    assert "scheduled drophead" in body  # the paper's title is searchable through the post
