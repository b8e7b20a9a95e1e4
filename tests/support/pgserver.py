"""A PostgreSQL server for the tests: the one CI started ($DIGEST_TEST_PG_URL) or a throwaway cluster.

Each test gets a fresh database, copied from a template migrated once per session
(copying a template is much faster than migrating again). A released catalog is emptied
back to the template's state (TRUNCATE … RESTART IDENTITY, the template's meta rows) and
handed to the next test: several times faster than CREATE DATABASE on a loaded machine.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from support.helpers import REPO

URL_ENV = "DIGEST_TEST_PG_URL"
_names = itertools.count()


def pg_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if
                   p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else None


@dataclass
class PgServer:
    admin_url: str  # a superuser connection to a maintenance database
    cluster_dir: Path | None = None  # set when this process started the cluster
    template: str | None = None
    template_meta: list[tuple] = field(default_factory=list)  # the migrated template's meta rows
    template_shape: list[tuple] = field(default_factory=list)  # its tables, columns and indexes
    migrated: set[str] = field(default_factory=set)  # catalogs handed out, reusable once emptied
    spare: list[str] = field(default_factory=list)  # emptied catalogs, ready for the next test
    stopped: bool = False

    @classmethod
    def from_env(cls) -> PgServer | None:
        url = os.environ.get(URL_ENV)
        return cls(url) if url else None

    @classmethod
    def start(cls) -> PgServer | None:
        """Start a cluster with .ci/pg-start; None when PostgreSQL is not installed."""
        if pg_binaries() is None:
            return None
        # Not under pytest's tmp folder: that is private to us, and the server runs as the postgres user.
        folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        folder.chmod(0o755)
        proc = subprocess.run([str(REPO / ".ci" / "pg-start"), str(folder / "cluster")],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"PostgreSQL is installed but would not start: {proc.stderr.strip()[-500:]}")
        return cls(proc.stdout.strip().splitlines()[-1], cluster_dir=folder / "cluster")

    def _admin(self):
        from sqlalchemy import create_engine

        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def _url_for(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def _create(self, name: str, template: str) -> None:
        admin = self._admin()
        try:
            with admin.connect() as c:
                locale = "" if template != "template0" else " ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
                c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{locale}')
        finally:
            admin.dispose()

    def fresh_database(self, *, migrated: bool = True) -> str:
        """A new database: a copy of a migrated template, or empty as after `createdb` (`migrated=False`)."""
        if migrated and self.spare:
            return self.spare.pop()
        name = f"digest_t{os.getpid()}_{next(_names)}"
        if not migrated:
            self._create(name, "template0")
            return self._url_for(name)
        if self.template is None:
            from catalog.db import open_db

            self.template = f"digest_tpl_{os.getpid()}"
            self.drop_database(self._url_for(self.template))
            self._create(self.template, "template0")
            engine = open_db(self._url_for(self.template))  # migrated once; copies start at the latest schema
            with engine.connect() as c:
                self.template_meta = [tuple(r) for r in c.exec_driver_sql("SELECT key, value FROM meta")]
                self.template_shape = _shape(c)
            engine.dispose()
        self._create(name, self.template)
        url = self._url_for(name)
        self.migrated.add(url)
        return url

    def release(self, url: str) -> None:
        """A test is done with `url`: keep a migrated catalog for reuse (emptied), drop anything else."""
        if self.stopped:  # a session fixture set up before the server outlives it: the cluster is gone
            return
        if url not in self.migrated:
            self.drop_database(url)
            return
        try:
            self._empty(url)
        except Exception:  # a test left it in a state we cannot reset: start over with a new copy
            self.migrated.discard(url)
            self.drop_database(url)
        else:
            self.spare.append(url)

    def _empty(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        admin = self._admin()
        try:  # connections a test left open would hold locks TRUNCATE waits for
            with admin.connect() as c:
                c.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                  " WHERE datname = %(db)s AND pid <> pg_backend_pid()", {"db": make_url(url).database})
        finally:
            admin.dispose()
        engine = create_engine(url)
        try:
            with engine.begin() as c:
                if _shape(c) != self.template_shape:  # a test changed the schema (a migration test): not reusable
                    raise RuntimeError(f"{url}: schema differs from the template")
                tables = ", ".join(f'"{r[0]}"' for r in c.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
                c.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
                c.exec_driver_sql("INSERT INTO meta(key, value) VALUES (%(k)s, %(v)s)",
                                  [{"k": k, "v": v} for k, v in self.template_meta])
        finally:
            engine.dispose()

    def drop_database(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        admin = self._admin()
        try:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        finally:
            admin.dispose()

    def stop(self) -> None:
        self.stopped = True
        for url in self.spare:
            self.drop_database(url)
        if self.template:
            self.drop_database(self._url_for(self.template))
        if self.cluster_dir is not None:
            subprocess.run([str(REPO / ".ci" / "pg-stop"), str(self.cluster_dir)], capture_output=True, timeout=120)
            shutil.rmtree(self.cluster_dir.parent, ignore_errors=True)


def _shape(conn) -> list[tuple]:
    """The catalog's tables, columns (with types) and indexes, sorted: what emptying does not reset."""
    return [tuple(r) for r in conn.exec_driver_sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
        " UNION ALL SELECT tablename, indexname, '' FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2, 3")]
