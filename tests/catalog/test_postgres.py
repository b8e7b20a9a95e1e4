"""The catalog on a real PostgreSQL server: URLs, migrations, same search results as SQLite, concurrent writers.

The catalog suites (test_ingest, test_search, test_cli) already run on both engines;
these are the PostgreSQL-specific checks. A fresh database per test (see conftest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.helpers import REPO, message, telegram_export, write_json

QUERIES = ["drophead", "attention", "transformer", "arxiv", "vae", "регуляризация", "nlp", "dropout", "optimus",
           "bert", "weight decay", "self-attention", "NVAE", "latent", "注意力", "正则化", "后验坍缩", "головы",
           "learning rate", "batch", "BN", "头", "β", "GPT-4", "c++", "_", "%", "'; DROP TABLE post; --", "Ёмкая",
           # other forms than the text's (issue 30), and quoted exact phrases
           "регуляризации", "трансформер", "head", "heads", "голова внимания", "learned", '"weight decay"',
           '"головы"', '"head"']


@pytest.fixture
def both(tmp_path, pg_url, sample_files):
    """The sample corpus in a SQLite file and in a PostgreSQL database."""
    from catalog.db import open_db
    from catalog.ingest import ingest_paths

    engines = {"sqlite": open_db(tmp_path / "c.db"), "postgresql": open_db(pg_url)}
    for engine in engines.values():
        ingest_paths(engine, sample_files)
    yield engines
    for engine in engines.values():
        engine.dispose()


def _hits(engine, query, **kw):
    from catalog.search import search

    return [h.as_dict() for h in search(engine, query, limit=100, **kw)]


def test_search_gives_the_same_hits_on_both_engines(both):
    same_order = 0
    for query in QUERIES:
        lite, pg = _hits(both["sqlite"], query), _hits(both["postgresql"], query)
        assert sorted(h["id"] for h in pg) == sorted(h["id"] for h in lite), query
        by_id = {h["id"]: h for h in lite}
        for hit in pg:  # the same post, source, date, snippet, tags, papers: all but the position
            assert {k: v for k, v in hit.items() if k != "rank"} == \
                   {k: v for k, v in by_id[hit["id"]].items() if k != "rank"}, query
        assert pg[:1] == lite[:1] or not lite, query  # the best hit is the same
        same_order += [h["id"] for h in pg] == [h["id"] for h in lite]
    assert sum(bool(_hits(both["sqlite"], q)) for q in QUERIES) >= 20  # the comparison is over real hits
    # ts_rank is not bm25: the whole order agrees for nearly every query (measured: all but one)
    assert same_order >= len(QUERIES) - 3


def test_filters_give_the_same_hits_on_both_engines(both):
    from catalog.search import Filters, parse_date

    for filters in (Filters(lang="zh"), Filters(tag="#NLP"), Filters(source="paper notes (SAMPLE)"),
                    Filters(until=parse_date("2020-04-26", end_of_day=True)), Filters(since=parse_date("2020-04-27")),
                    Filters(has_reproduction=True), Filters(has_reproduction=False)):
        lite = _hits(both["sqlite"], "drophead", filters=filters)
        pg = _hits(both["postgresql"], "drophead", filters=filters)
        assert sorted(h["id"] for h in pg) == sorted(h["id"] for h in lite), filters
    assert _hits(both["postgresql"], "drophead", filters=Filters(source="paper notes (SAMPLE)"))  # case-insensitive


def test_cli_json_output_is_the_same_on_both_engines(tmp_path, both, pg_url):
    from typer.testing import CliRunner

    from catalog.cli import app

    def run(db, *args):
        result = CliRunner().invoke(app, ["--db", str(db), *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    for args in (["search", "NVAE", "--json"], ["tags", "--json"], ["show", "3", "--json"], ["sources", "--json"]):
        assert run(pg_url, *args) == run(tmp_path / "c.db", *args), args


def test_migrations_record_the_version_in_meta(pg_url):
    from catalog.db import MIGRATIONS, open_db
    from catalog.errors import DigestError

    engine = open_db(pg_url)
    with engine.begin() as c:
        assert c.exec_driver_sql("SELECT value FROM meta WHERE key='schema_version'").scalar() == str(len(MIGRATIONS))
        assert c.exec_driver_sql("SELECT count(*) FROM pg_extension WHERE extname='pg_trgm'").scalar() == 1
        indexes = {r[0] for r in c.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename IN"
                                                   " ('post', 'post_search')")}
        c.exec_driver_sql("UPDATE meta SET value = %s WHERE key='schema_version'", (str(len(MIGRATIONS) + 1),))
    engine.dispose()
    assert {"ix_post_search_doc", "ix_post_search_title_trgm", "ix_post_search_body_trgm", "ix_post_text_trgm"} <= indexes
    with pytest.raises(DigestError, match="newer than this program"):
        open_db(pg_url)


def test_an_older_catalog_is_upgraded_without_losing_rows(empty_pg_url, tmp_path):
    """Stop after the first migration, write a post, then open: the rest of the list runs, the post stays."""
    from sqlalchemy import create_engine

    from catalog.db import MIGRATIONS, open_db
    from catalog.ingest import ingest_file
    from catalog.search import search

    raw = create_engine(empty_pg_url)
    with raw.begin() as c:
        MIGRATIONS[0](c)
        c.exec_driver_sql("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
        c.exec_driver_sql("INSERT INTO source(kind, handle, title, url, created_at) VALUES"
                          " ('telegram', 'old', 'Old', '', now())")
    raw.dispose()
    engine = open_db(empty_pg_url)
    ingest_file(engine, write_json(tmp_path / "r.json", telegram_export([message(1, "Upgraded catalogs search")])))
    with engine.connect() as c:
        handles = [r[0] for r in c.exec_driver_sql("SELECT handle FROM source")]
    assert "old" in handles and len(handles) == 2
    assert [h.title for h in search(engine, "upgraded")] == ["Upgraded catalogs search"]
    engine.dispose()


def test_database_urls():
    from catalog.db import catalog_url, describe
    from catalog.errors import DigestError

    assert catalog_url("x/c.db").get_backend_name() == "sqlite" and catalog_url("x/c.db").database == "x/c.db"
    assert catalog_url("sqlite:///x/c.db").database == "x/c.db"
    assert catalog_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert "secret" not in describe("postgresql+psycopg://u:secret@h/db")
    with pytest.raises(DigestError, match="unsupported database 'mysql'"):
        catalog_url("mysql://u@h/db")


def test_unreachable_server_is_one_line_error(tmp_path):
    url = f"postgresql+psycopg://nobody@/nodb?host={tmp_path}&port=1"  # no server on that socket
    env = {**os.environ, "PYTHONPATH": str(REPO), "DIGEST_DB": url}
    for args in (["search", "x"], ["ingest", str(tmp_path)]):
        proc = subprocess.run([sys.executable, "-m", "catalog.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("digest: error:")


def test_qmark_sql_reaches_psycopg_as_format_style():
    from catalog.db import _qmark_to_format

    def conv(sql):
        return _qmark_to_format(None, None, sql, (), None, False)[0]

    assert conv("SELECT a FROM t WHERE b=? AND c LIKE '%?%' AND d = ?") == \
        "SELECT a FROM t WHERE b=%s AND c LIKE '%%?%%' AND d = %s"
    assert conv("INSERT OR IGNORE INTO tag(name) VALUES (?)") == \
        "INSERT INTO tag(name) VALUES (%s) ON CONFLICT DO NOTHING"
    assert conv("SELECT 1 WHERE x LIKE '%a'") == "SELECT 1 WHERE x LIKE '%a'"  # no qmarks: untouched
    assert conv('SELECT "a?b" FROM t WHERE c = ?') == 'SELECT "a?b" FROM t WHERE c = %s'


WRITER = """
import sys
from catalog.db import open_db
from catalog.ingest import ingest_file
engine = open_db(sys.argv[1])
print(ingest_file(engine, sys.argv[2]).posts_new)
"""


def test_concurrent_writers_lose_nothing_and_never_deadlock(pg_url, tmp_path):
    """Six processes at once: four channels with shared hashtags and papers, and two writers of the same file."""
    files = []
    for channel in range(4):
        msgs = [message(i, f"post {i} of channel {channel} on arXiv:2004.{13000 + i % 50:05d} #shared{i % 7} #c{channel}")
                for i in range(1, 301)]
        files.append(write_json(tmp_path / f"c{channel}.json", telegram_export(msgs, chat_id=100 + channel)))
    files += [files[0]]  # the same channel twice at once
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, str(f)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for f in files]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-500:] for _, err in results]
    new = sorted(int(out.strip()) for out, _ in results)
    assert new == [0, 300, 300, 300, 300]  # one of the two same-file writers found everything stored
    from catalog.db import open_db
    from support.helpers import table_counts

    engine = open_db(pg_url)
    counts = table_counts(engine)
    engine.dispose()
    assert counts["post"] == counts["post_search"] == 1200
    assert counts["tag"] == 7 + 4 and counts["paper"] == 50
    assert counts["post_tag"] == 1200 * 2 and counts["post_paper"] == 1200


def test_writers_that_deadlock_are_retried_and_both_land(pg_url, tmp_path, monkeypatch):
    """Writer A stores paper X then Y, writer B Y then X, one post per batch, each holding its first
    row until it commits: a deadlock PostgreSQL breaks by aborting one; that one must retry."""
    import threading

    from catalog import ingest
    from catalog.db import open_db
    from catalog.ingest_upsert import Upserter
    from support.helpers import table_counts

    monkeypatch.setattr(ingest, "CHUNK", 1)
    barrier, local, waits = threading.Barrier(2, timeout=60), threading.local(), []
    write = Upserter.write

    def write_then_meet(self, batch):
        write(self, batch)
        if not getattr(local, "met", False):  # both hold their first paper before asking for the other's
            local.met = True
            barrier.wait()

    monkeypatch.setattr(Upserter, "write", write_then_meet)
    monkeypatch.setattr(ingest.time, "sleep", waits.append)
    papers = {"a": ["2001.00001", "2001.00002"], "b": ["2001.00002", "2001.00001"]}
    files = {w: write_json(tmp_path / f"{w}.json", telegram_export(
        [message(i + 1, f"writer {w} post {i} on arXiv:{pid}") for i, pid in enumerate(ids)], chat_id=ord(w)))
        for w, ids in papers.items()}
    engine, errors = open_db(pg_url), []

    def run(path):
        try:
            ingest.ingest_file(engine, path)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in files.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    counts = table_counts(engine)
    engine.dispose()
    assert errors == [] and len(waits) >= 1  # a deadlock happened, and the aborted writer retried
    assert counts["post"] == 4 and counts["paper"] == 2 and counts["post_paper"] == 4


# ---------------------------------------------------------------- digest db copy

def test_db_copy_sqlite_to_postgresql_and_back(tmp_path, empty_pg_url, sample_files):
    from typer.testing import CliRunner

    from catalog.cli import app
    from catalog.db import open_db
    from catalog.ingest import ingest_paths
    from support.helpers import dump

    lite = open_db(tmp_path / "a.db")
    ingest_paths(lite, sample_files)
    before = dump(lite)
    lite.dispose()
    runner = CliRunner()
    there = runner.invoke(app, ["db", "copy", str(tmp_path / "a.db"), empty_pg_url, "--json"])
    assert there.exit_code == 0, there.output
    report = json.loads(there.stdout)
    assert report["rows"]["post"] == 29 and report["rows"]["post_search"] == 29
    assert report["spot_checks"] and all(c["same"] and c["hits"] for c in report["spot_checks"])
    back = runner.invoke(app, ["db", "copy", empty_pg_url, str(tmp_path / "b.db")])
    assert back.exit_code == 0, back.output
    assert "verified" in back.stdout
    copied = open_db(tmp_path / "b.db")
    assert dump(copied) == before  # every row, id and stored value survived the round trip
    pg = open_db(empty_pg_url)
    ingest_paths(pg, [write_json(tmp_path / "n.json", telegram_export([message(1, "after the copy")], chat_id=7))])
    with pg.connect() as c:  # the id sequences moved past the copied ids
        assert c.exec_driver_sql("SELECT max(id) FROM post").scalar() == 30
    pg.dispose()
    copied.dispose()


def test_db_copy_refuses_a_non_empty_destination_and_changes_nothing(tmp_path, pg_url, sample_files):
    from typer.testing import CliRunner

    from catalog.cli import app
    from catalog.db import open_db
    from catalog.ingest import ingest_paths
    from support.helpers import dump

    for target in (tmp_path / "a.db", pg_url):
        engine = open_db(target)
        ingest_paths(engine, sample_files[:1])
        engine.dispose()
    pg = open_db(pg_url)
    before = dump(pg)
    result = CliRunner().invoke(app, ["db", "copy", str(tmp_path / "a.db"), pg_url])
    assert result.exit_code == 1
    assert "is not empty" in result.output and len(result.output.strip().splitlines()) == 1
    assert dump(pg) == before
    pg.dispose()
    missing = CliRunner().invoke(app, ["db", "copy", str(tmp_path / "none.db"), str(tmp_path / "x.db")])
    assert missing.exit_code == 1 and "no catalog at" in missing.output


def test_statistics_refresh_inside_the_ingest_transaction(pg_url, sample_files, monkeypatch):
    """ANALYZE runs inside the one ingest transaction (allowed there, unlike VACUUM) and changes no row."""
    import catalog.ingest as ingest
    from catalog import ingest_upsert
    from catalog.db import open_db

    monkeypatch.setattr(ingest_upsert, "ANALYZE_EVERY", 1)
    engine = open_db(pg_url)
    stats = ingest.ingest_paths(engine, sample_files)
    with engine.connect() as c:
        analyzed = c.exec_driver_sql("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'post'"
                                     " AND analyze_count > 0").scalar()
        posts = c.exec_driver_sql("SELECT count(*) FROM post").scalar()
    engine.dispose()
    assert stats.posts_new == posts == 29 and analyzed == 1
