"""The migration behind source identity: the alias and follow tables, channel ids, text
fingerprints and copy links (`catalog.source_identity`, `catalog.source_copies`)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, inspect, select, text, update

from catalog.models import Follow, Post, Source, SourceAlias
from catalog.source_identity import CHANNEL_ID_HANDLE, text_fingerprint
from catalog.sqlutil import chunked

S, P = Source.__table__, Post.__table__


def add_source_identity_schema(conn: Connection) -> None:
    """The migration behind this module: new tables and columns, fingerprints backfilled.

    A fresh catalog already has them (the first migration creates the current models),
    so each piece is added only when missing.
    """
    from catalog.models import Base

    have = inspect(conn)
    tables = set(have.get_table_names())
    for table in (SourceAlias.__table__, Follow.__table__):
        if table.name not in tables:
            table.create(conn)
    columns = {
        "source": {c["name"] for c in have.get_columns("source")},
        "post": {c["name"] for c in have.get_columns("post")},
    }
    for table, column, ddl in (("source", "channel_id", "BIGINT"), ("post", "fingerprint", "VARCHAR(40)"),
                               ("post", "copy_of_id", "INTEGER")):
        if column not in columns[table]:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
            # the model's own Index object: a new one would join the metadata and be created twice later
            next(i for i in Base.metadata.tables[table].indexes if [c.name for c in i.columns] == [column]).create(conn)
    _backfill_fingerprints(conn)
    for sid, handle in conn.execute(select(S.c.id, S.c.handle).where(S.c.channel_id.is_(None))).all():
        m = CHANNEL_ID_HANDLE.match(handle)
        if m:
            conn.execute(update(S).where(S.c.id == sid).values(channel_id=int(m.group(1))))


def _backfill_fingerprints(conn: Connection) -> None:
    rows = conn.execute(select(P.c.id, P.c.text).where(P.c.fingerprint.is_(None))).all()
    values = [{"pid": pid, "fp": fp} for pid, body in rows if (fp := text_fingerprint(body))]
    for part in chunked(values):
        conn.execute(update(P).where(P.c.id == bindparam("pid")).values(fingerprint=bindparam("fp")), part)
