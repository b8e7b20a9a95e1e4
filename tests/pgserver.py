"""A PostgreSQL server for the tests: the one CI started ($DIGEST_TEST_PG_URL) or a throwaway cluster.

Each test gets a fresh database, copied from a template migrated once per session
(copying a template is much faster than migrating again), and dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers import REPO

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
        name = f"digest_t{os.getpid()}_{next(_names)}"
        if not migrated:
            self._create(name, "template0")
            return self._url_for(name)
        if self.template is None:
            from catalog.db import open_db

            self.template = f"digest_tpl_{os.getpid()}"
            self.drop_database(self._url_for(self.template))
            self._create(self.template, "template0")
            open_db(self._url_for(self.template)).dispose()  # migrated once; copies start at the latest schema
        self._create(name, self.template)
        return self._url_for(name)

    def drop_database(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        admin = self._admin()
        try:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        finally:
            admin.dispose()

    def stop(self) -> None:
        if self.template:
            self.drop_database(self._url_for(self.template))
        if self.cluster_dir is not None:
            subprocess.run([str(REPO / ".ci" / "pg-stop"), str(self.cluster_dir)], capture_output=True, timeout=120)
            shutil.rmtree(self.cluster_dir.parent, ignore_errors=True)
