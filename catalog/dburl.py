"""What `--db` names (a file path, ``sqlite:///PATH`` or a PostgreSQL URL) as an SQLAlchemy URL,
and how long a SQLite connection waits for a writer.

A leaf module (no catalog imports) so that the fault messages (`catalog.dbfaults`) can name
a catalog without importing `catalog.db`, which imports them.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from catalog.errors import DigestError


def is_url(target: str | Path | URL) -> bool:
    return isinstance(target, URL) or "://" in str(target)


def catalog_url(target: str | Path | URL) -> URL:
    """The SQLAlchemy URL of `target`: a file path, ``sqlite:///…`` or a PostgreSQL URL."""
    if isinstance(target, URL):
        return target
    if not is_url(target):
        return URL.create("sqlite", database=str(Path(target)))
    try:
        url = make_url(str(target))
    except ArgumentError:
        raise DigestError(f"not a database URL: {target!r}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3, the driver we depend on
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise DigestError(f"unsupported database {url.get_backend_name()!r}: use a file path, sqlite:/// or "
                          "postgresql+psycopg://")
    return url


def describe(target: str | Path | URL) -> str:
    """`target` for messages: a path as given, a URL without its password."""
    return catalog_url(target).render_as_string(hide_password=True) if is_url(target) else str(target)


def busy_timeout_ms() -> int:
    """How long a SQLite writer waits for another one (DIGEST_SQLITE_BUSY_MS, default 10 s)."""
    try:
        return max(0, int(os.environ.get("DIGEST_SQLITE_BUSY_MS", "10000")))
    except ValueError:
        return 10000
