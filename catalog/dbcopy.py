"""Copying a whole catalog between engines (SQLite <-> PostgreSQL, or within one).

All-or-nothing: the destination must hold no catalog content yet, and everything is
written in ONE transaction on it, so a failure leaves it empty. Rows keep their ids
(links between tables, and post ids in URLs, stay valid); the full-text index is
rebuilt on the destination from the copied search text. The copy is verified by row
counts per table and by a search spot check (the same hits on both sides).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, Table, Text, func, select, text

from catalog.db import catalog_url, describe, open_db
from catalog.errors import DigestError
from catalog.models import Base

BATCH = 2000
# Created by a migration rather than a model: only the columns both engines store
# (PostgreSQL's tsvector is generated from them).
POST_SEARCH = Table("post_search", MetaData(), Column("post_id", Integer, primary_key=True),
                    Column("title", Text), Column("body", Text),
                    Column("title_stem", Text), Column("body_stem", Text))


def catalog_tables() -> list[Table]:
    """Every content table in foreign-key order (parents first); `meta` belongs to each catalog itself."""
    return [t for t in Base.metadata.sorted_tables if t.name != "meta"] + [POST_SEARCH]


@dataclass
class CopyReport:
    source: str
    destination: str
    rows: dict[str, int] = field(default_factory=dict)
    spot_checks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "rows": self.rows,
                "spot_checks": self.spot_checks}


def _count(conn: Connection, table: Table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _sqlite_value(value: Any) -> Any:
    # As catalog.ingest writes them: JSON as text, times through sqlite3's own adapter.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def _copy_table(src: Connection, dst: Connection, table: Table) -> int:
    copied = 0
    names = [c.name for c in table.columns]
    raw_insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    result = src.execution_options(yield_per=BATCH).execute(select(*table.columns))
    for part in result.partitions(BATCH):
        if dst.dialect.name == "sqlite":
            # Same stored text as the catalog's own writes (SQLAlchemy would add ".000000" to every time).
            dst.exec_driver_sql(raw_insert, [tuple(_sqlite_value(v) for v in row) for row in part])
        else:
            dst.execute(table.insert(), [dict(row._mapping) for row in part])
        copied += len(part)
    return copied


def _after_copy(dst: Connection, tables: list[Table]) -> None:
    if dst.dialect.name == "sqlite":
        dst.exec_driver_sql("INSERT INTO post_fts(post_fts) VALUES ('rebuild')")  # index the copied search text
        return
    for table in tables:  # ids were copied as they are: move each sequence past the largest
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and isinstance(pk[0].type, Integer) and pk[0].autoincrement in (True, "auto"):
            dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'),"
                             f" COALESCE(max({pk[0].name}), 1), max({pk[0].name}) IS NOT NULL) FROM {table.name}"))


def _spot_check(src: Engine, dst: Engine, n: int = 3) -> list[dict[str, Any]]:
    """Search a word of a few stored titles on both sides: the same posts must come back."""
    from catalog.search import search

    with src.connect() as c:
        titles = [r[0] for r in c.execute(text("SELECT title FROM post WHERE title <> '' ORDER BY id LIMIT :n"),
                                          {"n": n})]
    checks = []
    for title in titles:
        word = max(title.split(), key=len)
        ours, theirs = ({h.id for h in search(e, word, limit=100)} for e in (src, dst))
        checks.append({"query": word, "hits": len(ours), "same": ours == theirs})
    return checks


def copy_catalog(source: str | Path, destination: str | Path) -> CopyReport:
    """Copy the catalog at `source` into the empty catalog at `destination` (both a path or a URL)."""
    if catalog_url(source) == catalog_url(destination):
        raise DigestError("source and destination are the same catalog")
    src = open_db(source, create=False)
    dst = open_db(destination)
    report = CopyReport(describe(source), describe(destination))
    tables = catalog_tables()
    try:
        with src.connect() as s, dst.begin() as d:
            filled = {t.name: n for t in tables if (n := _count(d, t))}
            if filled:
                raise DigestError(f"destination {describe(destination)} is not empty "
                                  f"({', '.join(f'{n} {t}' for t, n in filled.items())}): copy into an empty catalog")
            for table in tables:
                report.rows[table.name] = _copy_table(s, d, table)
            _after_copy(d, tables)
            counted = {t.name: _count(d, t) for t in tables}
            if counted != report.rows or counted != {t.name: _count(s, t) for t in tables}:
                raise DigestError(f"copy incomplete: source {report.rows}, destination {counted}")
        report.spot_checks = _spot_check(src, dst)
        if not all(c["same"] for c in report.spot_checks):
            raise DigestError(f"copied catalog searches differently: {report.spot_checks}")
    finally:
        src.dispose()
        dst.dispose()
    return report
