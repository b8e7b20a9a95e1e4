"""Database faults as one line a person can act on, on both engines.

A driver error carries the SQL and its parameters (SQLAlchemy prints them all: a
500-placeholder ``IN`` list is kilobytes), which says nothing to an operator and
may show data they should not see. `db_fault` names what went wrong instead: the
server that is unreachable or was lost, the file that is read-only, locked, full or
corrupt, and what the command was doing when it happened. ``--debug`` still shows
the original traceback.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy.engine import URL

from catalog.errors import DigestError

T = TypeVar("T")

# Kinds of fault. Connection faults are the ones a retry after reconnecting can cure.
LOST, UNREACHABLE, AUTH, NO_DATABASE = "lost", "unreachable", "auth", "no-database"
READ_ONLY, LOCKED, DISK_FULL, CORRUPT, CANNOT_OPEN = "read-only", "locked", "disk-full", "corrupt", "cannot-open"
IO_ERROR = "io-error"

# SQLite primary result codes (the low byte of an extended code)
_SQLITE_CODES = {8: READ_ONLY, 5: LOCKED, 6: LOCKED, 13: DISK_FULL, 11: CORRUPT, 26: CORRUPT, 14: CANNOT_OPEN,
                 10: IO_ERROR}
_SQLITE_TEXT = (("readonly database", READ_ONLY), ("database is locked", LOCKED), ("disk is full", DISK_FULL),
                ("malformed", CORRUPT), ("file is not a database", CORRUPT), ("unable to open", CANNOT_OPEN))
# PostgreSQL: SQLSTATE classes and the texts libpq gives when there is no SQLSTATE (no server to send one)
_PG_STATES = {"28000": AUTH, "28P01": AUTH, "3D000": NO_DATABASE, "57P01": LOST, "57P02": LOST, "57P03": UNREACHABLE,
              "53100": DISK_FULL}
_PG_TEXT = (("password authentication failed", AUTH), ("authentication failed", AUTH),
            ("no password supplied", AUTH), ("pg_hba.conf", AUTH),
            ("does not exist", None),  # role or database: told apart below
            ("server closed the connection", LOST), ("terminating connection", LOST), ("consuming input failed", LOST),
            ("connection is lost", LOST), ("the connection is closed", LOST), ("connection has been closed", LOST),
            ("sending query failed", LOST), ("connection reset", LOST), ("broken pipe", LOST),
            ("connection refused", UNREACHABLE), ("no such file or directory", UNREACHABLE),
            ("could not translate host name", UNREACHABLE), ("timeout expired", UNREACHABLE),
            ("no route to host", UNREACHABLE), ("network is unreachable", UNREACHABLE),
            ("the database system is", UNREACHABLE), ("could not connect", UNREACHABLE),
            ("connection failed", UNREACHABLE), ("no space left on device", DISK_FULL))

CONNECTION_KINDS = {LOST, UNREACHABLE}


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception inside a SQLAlchemy wrapper (which holds the SQL text)."""
    seen = exc
    for _ in range(5):
        inner = getattr(seen, "orig", None)
        if inner is None or inner is seen:
            break
        seen = inner
    return seen


def first_line(exc: BaseException) -> str:
    text = str(_driver_error(exc)).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return exc.__class__.__name__


def fault_kind(exc: BaseException) -> str | None:
    """What kind of database fault `exc` is, or None when it is not one we can name."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DISK_FULL
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return READ_ONLY
    inner = _driver_error(exc)
    if getattr(exc, "connection_invalidated", False):
        return LOST
    if isinstance(inner, sqlite3.Error):
        code = getattr(inner, "sqlite_errorcode", None)
        if code is not None and (code & 0xFF) in _SQLITE_CODES:
            return _SQLITE_CODES[code & 0xFF]
        low = str(inner).lower()
        return next((kind for text, kind in _SQLITE_TEXT if text in low), None)
    module = type(inner).__module__.split(".")[0]
    if module != "psycopg":
        return None
    state = getattr(inner, "sqlstate", None) or ""
    if state in _PG_STATES:
        return _PG_STATES[state]
    if state.startswith("08"):
        return LOST
    low = str(inner).lower()
    for text, kind in _PG_TEXT:
        if text in low:
            if kind is None:  # "role … does not exist" is an authentication failure
                return NO_DATABASE if 'database "' in low else AUTH
            return kind
    return None


def server_name(url: URL) -> str:
    """HOST:PORT of a PostgreSQL URL (the socket folder when it connects through one)."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    return f"{host}:{url.port or url.query.get('port') or 5432}"


def _describe(target) -> tuple[str, URL | None]:
    from catalog.dburl import catalog_url, describe

    url = catalog_url(target)
    if url.get_backend_name() == "postgresql":
        return f"PostgreSQL at {server_name(url)}", url
    return f"catalog {describe(target)}", None


def db_fault(exc: BaseException, target, *, doing: str = "", unstored: str = "") -> DigestError | None:
    """`exc` as one line, or None when it is not a database fault we can name.

    `doing` says what was under way ("while ingesting FILE"), `unstored` what that means
    for the data ("nothing from this file was stored").
    """
    kind = fault_kind(exc)
    if kind is None:
        return None
    where, url = _describe(target)
    if isinstance(exc, OSError):  # a file of our own (the site, a temporary), not the catalog
        named = getattr(exc, "filename2", None) or exc.filename
        where, url = (f"writing {named}" if named else "no space left on the device being written"), None
    during = f" {doing}" if doing else ""
    tail = f"; {unstored} — run it again" if unstored else ""
    reason = first_line(exc)
    if kind == LOST:
        msg = f"lost the connection to {where}{during}{tail or ': run it again'}"
    elif kind == UNREACHABLE:
        msg = f"cannot reach {where}{during}: is the server running and the address right? ({reason})"
    elif kind == AUTH:
        msg = (f"{where} refused user {url.username if url is not None else '?'!r}: authentication failed"
               " (check the user and password in --db)")
    elif kind == NO_DATABASE:
        name = url.database if url is not None else "?"
        msg = f"database {name!r} does not exist on {where}: create it (createdb {name}) or fix --db"
    elif kind == READ_ONLY:
        msg = f"{where} is read-only{during}: cannot write to it (check the permissions of the file and its folder)"
    elif kind == LOCKED:
        msg = f"{where} is locked by another writer past the busy timeout{during}: try again when it is done"
    elif kind == DISK_FULL:
        msg = f"disk full{during} ({where}){tail or ': free some space and run it again'}"
    elif kind == IO_ERROR:  # SQLite says no more (a file size limit, a failing disk, a full one)
        msg = f"I/O error writing {where}{during} (is the disk full or failing?){tail or ''}"
    elif kind == CORRUPT:
        msg = (f"{where} is corrupt ({reason}){during}: `digest db check` shows what is damaged; restore it"
               " from a backup (`digest db backup` makes one)")
    else:
        msg = f"cannot open {where}: {reason}"
    error = DigestError(" ".join(msg.split()))
    error.kind = kind
    return error


def describe_unknown(exc: BaseException, target) -> str:
    """A database error we cannot name, in one line without its SQL."""
    where, _ = _describe(target)
    inner = _driver_error(exc)
    return f"database error on {where}: {inner.__class__.__name__}: {first_line(exc)}"


def wait_for_server(engine, *, seconds: float = 5.0, step: float = 0.5) -> bool:
    """After a lost connection: drop the pooled connections and try to connect again for a while."""
    engine.dispose()
    deadline = time.monotonic() + seconds
    while True:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - still down: try again until the deadline
            engine.dispose()
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)


def retry_once_if_lost(engine, target, work: Callable[[], T], *, doing: str, unstored: str) -> T:
    """`work()`, run again once after reconnecting when the connection was lost; other faults as one line."""
    for attempt in (1, 2):
        try:
            return work()
        except DigestError:
            raise
        except Exception as exc:
            kind = fault_kind(exc)
            if kind is None:
                raise
            if attempt == 1 and kind in CONNECTION_KINDS and wait_for_server(engine):
                continue
            raise db_fault(exc, target, doing=doing, unstored=unstored) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def target_of(engine) -> str | Path:
    """What `db_fault` names for `engine`: its URL (a file path for SQLite)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return Path(url.database or "")
    return url
