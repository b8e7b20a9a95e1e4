"""Small helpers for raw SQL on the catalog connection (IN lists, batching)."""

from __future__ import annotations

from typing import Iterator, Sequence

from sqlalchemy import Connection

# SQLite allows 32766 parameters per statement; batches of 500 stay far below it
# and keep each statement's plan cheap.
BATCH = 500


def chunked(values: Sequence, size: int = BATCH) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield list(values[i:i + size])


def placeholders(values: Sequence) -> str:
    """``?,?,?`` for an ``IN (...)`` list of `values`."""
    return ",".join("?" * len(values))


def select_in(conn: Connection, prefix: str, values: Sequence) -> list[tuple]:
    """Rows of ``{prefix} (?,?,…)`` over all `values`, in batches."""
    rows: list[tuple] = []
    for part in chunked(values):
        rows += [tuple(r) for r in conn.exec_driver_sql(f"{prefix} ({placeholders(part)})", tuple(part))]
    return rows


def dialect_insert(conn: Connection, table):
    """The dialect's own INSERT, which has ON CONFLICT (upserts) on both engines."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
