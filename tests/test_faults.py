"""Faults tell the truth: each database fault is one line, a non-zero exit, and no loss.

Every command runs as a real subprocess of the installed `digest` script. The PostgreSQL
tests that kill the server start a throwaway cluster of their own (.ci/pg-start), so the
session's shared server is never touched. Expected counts come from the inputs themselves
(the synthetic export's message count, the local channel server's posts), never from the
code under test.
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
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.synthetic import write_export
from channel_routes import Msg, tme_page
from helpers import REPO, missing
from pgserver import pg_binaries

DIGEST = str(Path(sys.executable).parent / "digest")
T0 = __import__("datetime").datetime(2023, 7, 1, 9, 0, tzinfo=__import__("datetime").timezone.utc)


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


# ---------------------------------------------------------------- a local channel server, slow on demand

class Channels:
    """t.me/s pages on 127.0.0.1: channel -> posts; `slow` channels answer after `delay` seconds."""

    def __init__(self) -> None:
        self.posts = {name: [Msg(i, T0 + __import__("datetime").timedelta(hours=i),
                                 [f"Post {i} of {name}: a note on attention and optimisation number {i}"])
                             for i in range(1, n + 1)]
                      for name, n in (("alpha_ch", 5), ("beta_ch", 4), ("gamma_ch", 3))}
        self.slow: set[str] = set()
        self.delay = 4.0
        self.asked = {name: threading.Event() for name in self.posts}


@pytest.fixture
def channels():
    site = Channels()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            name = self.path.split("?")[0].rstrip("/").split("/")[-1]
            site.asked[name].set()
            if name in site.slow:
                time.sleep(site.delay)
            body = tme_page(site.posts[name], username=name, title=name.title()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    site.host = f"127.0.0.1:{srv.server_address[1]}"
    yield site
    srv.shutdown()


def follow_all(target, site: Channels) -> None:
    from catalog.db import open_db
    from catalog.follow import follow

    engine = open_db(target)
    try:
        follow(engine, [f"http://{site.host}/s/{name}" for name in site.posts], mirrors=[site.host])
    finally:
        engine.dispose()


def stored(target) -> dict[str, int]:
    """Posts per channel handle, and whether the sync lock row is still there (key "lock")."""
    from sqlalchemy import create_engine

    from catalog.db import catalog_url

    engine = create_engine(catalog_url(target))
    try:
        with engine.connect() as c:
            rows = dict(c.exec_driver_sql("SELECT s.handle, count(*) FROM post p JOIN source s ON s.id = p.source_id"
                                          " GROUP BY s.handle").all())
            rows["lock"] = c.exec_driver_sql("SELECT count(*) FROM meta WHERE key = 'sync_lock'").scalar()
        return rows
    finally:
        engine.dispose()


def test_signal_during_sync_stops_cleanly(db_kind, db_target, channels):
    # SIGTERM (a service manager) on SQLite, SIGINT (Ctrl-C) on PostgreSQL: both signals, both engines
    sig, code = (signal.SIGTERM, 143) if db_kind == "sqlite" else (signal.SIGINT, 130)
    follow_all(db_target, channels)
    channels.slow = {"beta_ch"}
    proc = subprocess.Popen([DIGEST, "--db", str(db_target), "sync", "--no-arxiv", "--interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert channels.asked["beta_ch"].wait(60), "the sync never reached the second channel"
        proc.send_signal(sig)
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - started < channels.delay  # it did not wait for the slow page
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    one_line_error(result, f"interrupted by {sig.name}", "stored: @alpha_ch", "rolled back: @beta_ch",
                   "not reached: @gamma_ch", "lock is released", code=code)
    assert stored(db_target) == {"alpha_ch": 5, "lock": 0}
    channels.slow = set()
    again = digest("--db", str(db_target), "sync", "--no-arxiv", "--interval", "0.1")
    assert again.returncode == 0, again.stderr
    assert stored(db_target) == {"alpha_ch": 5, "beta_ch": 4, "gamma_ch": 3, "lock": 0}


# ---------------------------------------------------------------- PostgreSQL killed under a running command

class Cluster:
    """A throwaway PostgreSQL cluster of this module's own (.ci/pg-start), stopped and started at will."""

    def __init__(self, folder: Path, port: int, url: str):
        self.folder, self.port, self.url = folder, port, url
        self.bin = pg_binaries()

    def _pg_ctl(self, *args: str) -> None:
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_pg, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args],
                       check=True, capture_output=True, timeout=60)

    def kill(self) -> None:
        self._pg_ctl("-m", "immediate", "-w", "stop")  # as a crash: no clean shutdown of the sessions

    def start(self) -> None:
        self._pg_ctl("-l", str(self.folder / "server.log"), "-w", "-o",
                     f"-c listen_addresses='' -k {self.folder} -p {self.port} -c fsync=off", "start")

    def database(self, name: str) -> str:
        """A new, migrated catalog database."""
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        from catalog.db import open_db

        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        url = make_url(self.url).set(database=name).render_as_string(hide_password=False)
        open_db(url).dispose()
        return url

    def wait_for_writer(self, name: str, timeout: float = 60) -> None:
        """Until a session on database `name` has written in its open transaction (mid-ingest)."""
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        deadline = time.monotonic() + timeout
        with psycopg.connect(host=u.query["host"], port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as c:
            while time.monotonic() < deadline:
                if c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_xid IS NOT NULL",
                             (name,)).fetchone()[0]:
                    return
                time.sleep(0.05)
        raise AssertionError(f"no writer on {name} within {timeout} s")


@pytest.fixture(scope="module")
def own_pg():
    if pg_binaries() is None:
        missing("no PostgreSQL binaries (Debian's postgresql) for a cluster of this test's own")
    folder = Path(tempfile.mkdtemp(prefix="digest-faults-pg-"))
    folder.chmod(0o755)
    port = 55000 + os.getpid() % 5000
    proc = subprocess.run([str(REPO / ".ci" / "pg-start"), str(folder / "cluster"), str(port)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        missing(f"a PostgreSQL cluster would not start: {proc.stderr.strip()[-300:]}")
    cluster = Cluster(folder / "cluster", port, proc.stdout.strip().splitlines()[-1])
    yield cluster
    subprocess.run([str(REPO / ".ci" / "pg-stop"), str(folder / "cluster")], capture_output=True, timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


def _ingest_in_background(url: str, path: Path) -> subprocess.Popen:
    return subprocess.Popen([DIGEST, "--db", url, "ingest", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _counts(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return {t: c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                    for t in ("post", "source", "tag", "post_tag", "paper", "post_paper", "link", "post_search")}
    finally:
        engine.dispose()


def test_postgres_killed_mid_ingest(own_pg, tmp_path):
    export = write_export(tmp_path / "export.json", 1000)
    posts = len(json.loads(export.read_text(encoding="utf-8"))["messages"])

    # killed and left down: one line, nothing stored; once it is back, a re-run stores the file
    down = own_pg.database("killed_down")
    proc = _ingest_in_background(down, export)
    own_pg.wait_for_writer("killed_down")
    own_pg.kill()
    result = _finish(proc)
    own_pg.start()
    one_line_error(result, f"lost the connection to PostgreSQL at {own_pg.folder}:{own_pg.port}",
                   f"while ingesting {export}", "nothing from this file was stored — run it again")
    assert _counts(down)["post"] == 0
    assert digest("--db", down, "ingest", str(export)).returncode == 0

    # killed and back at once: the file is read again once after reconnecting, and stored once
    back = own_pg.database("killed_back")
    proc = _ingest_in_background(back, export)
    own_pg.wait_for_writer("killed_back")
    own_pg.kill()
    own_pg.start()
    result = _finish(proc)
    assert result.returncode == 0, result.stderr
    assert f"{posts} new" in result.stdout

    assert _counts(back) == _counts(down) and _counts(back)["post"] == posts


def test_postgres_killed_mid_sync(own_pg, channels):
    url = own_pg.database("killed_sync")
    follow_all(url, channels)
    channels.slow = {"beta_ch"}
    proc = subprocess.Popen([DIGEST, "--db", url, "sync", "--no-arxiv", "--interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert channels.asked["beta_ch"].wait(60)
    own_pg.kill()
    result = _finish(proc)
    own_pg.start()
    one_line_error(result, "lost the connection to PostgreSQL", "while syncing @beta_ch",
                   "nothing from @beta_ch was stored", "stored before it: @alpha_ch")
    assert stored(url) == {"alpha_ch": 5, "lock": 1}  # the dead sync's lock: the next one takes it over
    channels.slow = set()
    again = digest("--db", url, "sync", "--no-arxiv", "--interval", "0.1")
    assert again.returncode == 0, again.stderr
    assert stored(url) == {"alpha_ch": 5, "beta_ch": 4, "gamma_ch": 3, "lock": 0}


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
