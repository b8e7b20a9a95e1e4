"""Faults tell the truth: each database fault is one line, a non-zero exit, and no loss.

Every command runs as a real subprocess of the installed `digest` script. Expected counts
come from the inputs themselves (the synthetic export's message count), never from the
code under test. A signal during a sync and a PostgreSQL server killed mid-way are in
test_faults_sync.py.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.synthetic import write_export

DIGEST = str(Path(sys.executable).parent / "digest")


def digest(*args: str, env: dict | None = None, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([DIGEST, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec)


def one_line_error(result, *needles: str, code: int = 1) -> str:
    """The run failed with `code` and said so in exactly one line naming every needle, without SQL."""
    err = result.stderr.strip()
    assert result.returncode == code, (result.returncode, result.stdout[-500:], err[-2000:])
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    for leaked in ("SELECT", "INSERT", "%(", "[SQL", "Traceback", "parameters"):
        assert leaked not in err, err
    return err


def sqlite_count(path: Path, table: str = "post") -> int:
    with sqlite3.connect(path) as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory) -> tuple[Path, Path, int]:
    """A catalog of 1,000 synthetic posts (Russian, English, Chinese), its input, and the post count."""
    folder = tmp_path_factory.mktemp("faults")
    export = write_export(folder / "export.json", 1000)
    db = folder / "catalog.db"
    assert digest("--db", str(db), "ingest", str(export)).returncode == 0
    return db, export, len(json.loads(export.read_text(encoding="utf-8"))["messages"])


def damage_pages(src: Path, dst: Path, table: str, *, which: str = "first") -> None:
    """Copy `src` to `dst`, then overwrite 8 KB from a page of `table` (found with the dbstat table)."""
    shutil.copy(src, dst)
    with sqlite3.connect(src) as c:
        pages = [p for (p,) in c.execute("SELECT pageno FROM dbstat WHERE name=? ORDER BY pageno", (table,))]
        size = c.execute("PRAGMA page_size").fetchone()[0]
    page = pages[0] if which == "first" else pages[len(pages) // 2]
    with open(dst, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xab" * 8192)


# ---------------------------------------------------------------- SQLite: corrupt, read-only, locked, full

def test_damaged_search_index_is_an_error_not_an_empty_result(catalog_file, tmp_path):
    db, _, _ = catalog_file
    assert "модель" in digest("--db", str(db), "search", "модель", "--json").stdout  # intact: hits
    bad = tmp_path / "bad.db"
    shutil.copy(db, bad)
    with sqlite3.connect(bad) as c:  # damage inside the index's segments: the b-tree itself stays valid
        c.execute("UPDATE post_fts_data SET block = zeroblob(length(block)) WHERE id > 10")
    one_line_error(digest("--db", str(bad), "search", "модель"), "is corrupt", "digest db check")
    check = digest("--db", str(bad), "db", "check", "--json")
    assert check.returncode == 1
    found = {c["name"]: c["ok"] for c in json.loads(check.stdout)["checks"]}
    assert found == {"schema": True, "quick_check": True, "fts5 integrity-check": False, "indexes": True}
    ok = digest("--db", str(db), "db", "check", "--full", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True


def test_corrupt_pages_fail_search_ingest_and_check(catalog_file, tmp_path):
    db, export, posts = catalog_file
    bad = tmp_path / "bad.db"
    damage_pages(db, bad, "post")
    one_line_error(digest("--db", str(bad), "search", "модель"), f"catalog {bad} is corrupt")
    one_line_error(digest("--db", str(bad), "ingest", str(export)), "is corrupt", f"while ingesting {export}")
    check = digest("--db", str(bad), "db", "check")
    err = one_line_error(check, "is damaged", "quick_check")
    assert "FAILED  quick_check" in check.stdout and "btreeInitPage" in err
    header = tmp_path / "header.db"
    shutil.copy(db, header)
    with open(header, "r+b") as f:
        f.write(b"\0" * 8192)  # the file header and first pages gone
    one_line_error(digest("--db", str(header), "search", "модель"), "is corrupt", "file is not a database")
    assert sqlite_count(db) == posts  # the original was never touched


def _make_read_only(path: Path) -> callable:
    """Make `path` unwritable for this process; returns the undo. root ignores modes: chattr +i then."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        return lambda: (path.parent.chmod(0o755), path.chmod(0o644))
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: cannot make a file read-only")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_and_locked_catalogs(catalog_file, tmp_path):
    db, _, posts = catalog_file
    edits = write_export(tmp_path / "edits.json", 200, seed=1)  # same ids, new texts: 200 updates
    folder = tmp_path / "ro"
    folder.mkdir()
    ro = folder / "catalog.db"
    shutil.copy(db, ro)
    undo = _make_read_only(ro)
    try:
        one_line_error(digest("--db", str(ro), "ingest", str(edits)), "is read-only", f"while ingesting {edits}")
    finally:
        undo()

    locked = tmp_path / "locked.db"
    shutil.copy(db, locked)
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    holder.execute("INSERT INTO meta(key, value) VALUES ('holder', 'test')")
    try:
        result = digest("--db", str(locked), "ingest", str(edits), env={"DIGEST_SQLITE_BUSY_MS": "300"})
        one_line_error(result, "is locked by another writer past the busy timeout", "while ingesting")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert digest("--db", str(locked), "ingest", str(edits)).returncode == 0  # the writer gone, it goes through
    assert sqlite_count(locked) == posts


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_during_ingest_then_rerun(catalog_file, tmp_path):
    _, export, posts = catalog_file
    from catalog.db import open_db

    db = tmp_path / "full.db"
    open_db(db).dispose()  # an empty catalog
    before = db.stat().st_size
    result = digest("--db", str(db), "ingest", str(export), preexec=_file_size_limit(before + 256 * 1024))
    err = one_line_error(result, f"while ingesting {export}", "nothing from this file was stored")
    assert "disk full" in err or "I/O error" in err
    assert sqlite_count(db) == 0  # nothing partial
    assert digest("--db", str(db), "ingest", str(export)).returncode == 0
    assert sqlite_count(db) == posts


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB file system (tmpfs) when this process may mount one, else None."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_during_site_build(tmp_path, small_disk):
    db = tmp_path / "demo.db"
    assert digest("--db", str(db), "demo", "--no-site", "--offline").returncode == 0
    if small_disk is not None:  # only the site's folder is full: the message names a file in it
        result = digest("--db", str(db), "site", "build", "--out", str(small_disk / "site"))
        one_line_error(result, f"disk full (writing {small_disk / 'site'}", "free some space")
    else:  # a file size limit for the whole child: the catalog may be the file that hits it
        result = digest("--db", str(db), "site", "build", "--out", str(tmp_path / "site"),
                        preexec=_file_size_limit(db.stat().st_size + 64 * 1024))
        err = one_line_error(result)
        assert "disk full (writing " in err or "I/O error writing catalog" in err


def test_backup_while_a_reader_searches(catalog_file, tmp_path):
    db, _, posts = catalog_file
    live = tmp_path / "live.db"
    shutil.copy(db, live)
    stop, searches = threading.Event(), []

    def reader() -> None:  # a reader of the live file, searching all along
        from catalog.db import open_db
        from catalog.search import search

        engine = open_db(live)
        try:
            while not stop.is_set():
                searches.append(len(search(engine, "модель", limit=3)))
        finally:
            engine.dispose()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.3)
        result = digest("--db", str(live), "db", "backup", str(tmp_path / "copy.db"), "--json")
        time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert len(searches) > 3 and set(searches) == {3}  # every search answered while the copy was made
    copy = tmp_path / "copy.db"
    assert sqlite_count(copy) == posts
    with sqlite3.connect(copy) as c:
        assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    one_line_error(digest("--db", str(live), "db", "backup", str(copy)), "already exists", code=2)


def test_unreachable_server_is_not_a_missing_catalog():
    result = digest("--db", "postgresql+psycopg://nobody@127.0.0.1:1/x", "search", "model")
    err = one_line_error(result, "cannot reach PostgreSQL at 127.0.0.1:1")
    assert "no catalog" not in err


def test_db_check_names_what_is_missing(db_kind, db_target):
    from sqlalchemy import text

    from catalog.db import open_db

    engine = open_db(db_target)
    engine.dispose()
    healthy = digest("--db", str(db_target), "db", "check", "--json")
    assert healthy.returncode == 0, healthy.stderr
    names = {c["name"] for c in json.loads(healthy.stdout)["checks"]}
    assert names == ({"schema", "indexes"} | ({"quick_check", "fts5 integrity-check"} if db_kind == "sqlite" else set()))
    engine = open_db(db_target)
    with engine.begin() as c:  # an index lost, and a schema from a newer program
        c.execute(text("DROP INDEX ix_post_published"))
        c.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()
    result = digest("--db", str(db_target), "db", "check", "--json")
    report = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.returncode == 1 and not report["indexes"]["ok"] and not report["schema"]["ok"]
    assert "ix_post_published" in report["indexes"]["detail"] and "schema version 99" in report["schema"]["detail"]
    assert len(result.stderr.strip().splitlines()) == 1
