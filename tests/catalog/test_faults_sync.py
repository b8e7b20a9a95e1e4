"""Faults under a running sync or ingest: a signal, and a PostgreSQL server killed mid-way.

Every command runs as a real subprocess of the installed `digest` script against a local
channel server on 127.0.0.1 (a named mirror). The tests that kill PostgreSQL start a
throwaway cluster of their own (.ci/pg-start), so the session's shared server is never
touched. Expected counts come from the inputs (the channel server's posts, the synthetic
export's message count), never from the code under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.synthetic import write_export
from support.channel_routes import Msg, tme_page
from support.helpers import HTML, REPO, missing, serve_pages
from support.pgserver import pg_binaries
from test_faults import DIGEST, digest, one_line_error

T0 = datetime(2023, 7, 1, 9, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- a local channel server, slow on demand

class Channels:
    """t.me/s pages on 127.0.0.1: channel -> posts; `slow` channels answer after `delay` seconds."""

    def __init__(self) -> None:
        self.posts = {name: [Msg(i, T0 + timedelta(hours=i),
                                 [f"Post {i} of {name}: a note on attention and optimisation number {i}"])
                             for i in range(1, n + 1)]
                      for name, n in (("alpha_ch", 5), ("beta_ch", 4), ("gamma_ch", 3))}
        self.slow: set[str] = set()
        self.delay = 4.0
        self.asked = {name: threading.Event() for name in self.posts}


@pytest.fixture
def channels():
    site = Channels()

    def respond(path: str):
        name = path.split("?")[0].rstrip("/").split("/")[-1]
        site.asked[name].set()
        if name in site.slow:
            time.sleep(site.delay)
        return 200, HTML, tme_page(site.posts[name], username=name, title=name.title()).encode()

    srv, site.host = serve_pages(respond)
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
