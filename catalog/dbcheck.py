"""`digest db check` and `digest db backup`: is the catalog whole, and a consistent copy of it.

The check only reads (it never migrates or repairs): on SQLite the page-level
``PRAGMA quick_check`` (``integrity_check`` with `full`, which also compares every
index with its table) and the FTS5 index's own integrity check, which is the one
that sees a damaged search segment (that reads as "no such word", not as an error);
on both engines the schema version and the presence of every index the catalog
expects. The backup uses SQLite's online backup API, a few hundred pages a step, so
readers (and a writer) keep working on the live catalog meanwhile.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect

from catalog.db import MIGRATIONS, catalog_url, describe, schema_version
from catalog.dbfaults import db_fault, first_line
from catalog.errors import DigestError, UsageError

PG_SEARCH_INDEXES = ("ix_post_search_doc", "ix_post_search_title_trgm", "ix_post_search_body_trgm", "ix_post_text_trgm")
FTS_CHECK = "INSERT INTO post_fts(post_fts, rank) VALUES ('integrity-check', 0)"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CheckReport:
    catalog: str
    engine: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict:
        return {"catalog": self.catalog, "engine": self.engine, "ok": self.ok,
                "checks": [asdict(c) for c in self.checks]}


def _engine(target) -> Engine:
    """An engine on an existing catalog, without migrating it (a check must not write)."""
    url = catalog_url(target)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not path.is_file():
            raise DigestError(f"no catalog at {describe(target)}")
        # FTS5's check needs the write lock for a moment (it writes nothing): wait at most 5 s for it
        return create_engine(f"sqlite:///{path}", connect_args={"timeout": 5})
    return create_engine(url)


def _expected_indexes() -> set[str]:
    from catalog.models import Base

    names = {i.name for t in Base.metadata.tables.values() for i in t.indexes if i.name}
    return names


def _run(report: CheckReport, conn, name: str, fn) -> None:
    try:
        ok, detail = fn()
    except Exception as exc:  # the check itself hit the damage: that is its finding
        ok, detail = False, first_line(exc)
        try:
            conn.rollback()  # PostgreSQL: the next check needs a transaction that is not aborted
        except Exception:  # noqa: BLE001 - a connection that is gone: the next check says so
            pass
    report.checks.append(Check(name, ok, detail))


def check_catalog(target, *, full: bool = False) -> CheckReport:
    """Check the catalog at `target`; the report says what is damaged (nothing is changed)."""
    url = catalog_url(target)
    report = CheckReport(describe(target), url.get_backend_name())
    engine = _engine(target)
    try:
        with engine.connect() as conn:
            def version():
                have = schema_version(conn)
                return have == len(MIGRATIONS), f"schema version {have} (this program: {len(MIGRATIONS)})"

            _run(report, conn, "schema", version)
            if report.engine == "sqlite":
                pragma = "integrity_check" if full else "quick_check"

                def pages():
                    rows = [r[0] for r in conn.exec_driver_sql(f"PRAGMA {pragma}(20)")]
                    if rows == ["ok"]:
                        return True, "ok"
                    found = [line for r in rows for line in r.splitlines() if line and not line.startswith("***")]
                    more = "+" if len(found) >= 20 else ""
                    return False, f"{len(found)}{more} problem(s), first: {'; '.join(found[:3])}"

                def fts():
                    conn.exec_driver_sql(FTS_CHECK)
                    return True, "ok"

                _run(report, conn, pragma, pages)
                _run(report, conn, "fts5 integrity-check", fts)
                conn.rollback()

            def indexes():
                present = {i["name"] for t in inspect(conn).get_table_names()
                           for i in inspect(conn).get_indexes(t) if i.get("name")}
                wanted = _expected_indexes() | (set(PG_SEARCH_INDEXES) if report.engine == "postgresql" else set())
                missing = sorted(wanted - present)
                return not missing, "missing: " + ", ".join(missing) if missing else f"{len(wanted)} present"

            _run(report, conn, "indexes", indexes)
    except DigestError:
        raise
    except Exception as exc:
        known = db_fault(exc, target)
        if known is not None and getattr(known, "kind", "") not in ("corrupt",):
            raise known from exc
        report.checks.append(Check("open", False, first_line(exc)))  # not even readable: that is the finding
    finally:
        engine.dispose()
    return report


@dataclass
class BackupReport:
    source: str
    destination: str
    pages: int
    bytes: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def backup_catalog(target, destination: str | Path, *, step_pages: int = 256) -> BackupReport:
    """A consistent copy of the live SQLite catalog `target` in the new file `destination`."""
    url = catalog_url(target)
    if url.get_backend_name() != "sqlite":
        raise UsageError("`digest db backup` copies a SQLite catalog; for PostgreSQL use pg_dump, or "
                         "`digest db copy URL FILE` for a SQLite copy")
    source = Path(url.database or "")
    dest = Path(destination)
    if not source.is_file():
        raise DigestError(f"no catalog at {describe(target)}")
    if dest.exists():
        raise UsageError(f"{dest} already exists: give a new file name (a backup never overwrites)")
    if not dest.parent.is_dir():
        raise UsageError(f"cannot write {dest}: folder {dest.parent} does not exist")
    partial = dest.with_name(dest.name + ".partial")
    started = time.monotonic()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    try:
        out = sqlite3.connect(partial)
        try:
            # a few pages a step, sleeping between: readers and writers of the live file go on
            src.backup(out, pages=step_pages, sleep=0.001)
            pages = out.execute("PRAGMA page_count").fetchone()[0]
            ok = out.execute("PRAGMA quick_check").fetchone()[0]
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            out.close()
        if ok != "ok":
            raise DigestError(f"the copy of {source} fails its check ({ok}): the catalog itself is damaged —"
                              " run `digest db check`")
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise (db_fault(exc, target, doing=f"while backing up to {dest}") or
               DigestError(f"backup of {source} failed: {first_line(exc)}")) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    return BackupReport(str(source), str(dest), pages, dest.stat().st_size, round(time.monotonic() - started, 3))
