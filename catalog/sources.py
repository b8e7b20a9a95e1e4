"""What the `digest sources` commands call: the sources with their routes and copies, a merge
by hand, an alias.

One source per channel, whatever route its posts came by (`catalog.source_identity`);
two sources merged when they are one channel (`catalog.source_merge`); forwards tied to
their originals (`catalog.source_copies`); the schema those need (`catalog.source_schema`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from catalog.models import Post, Source
from catalog.source_identity import add_alias, list_aliases, source_by_ref
from catalog.source_merge import MergeReport, merge_sources

S, P = Source.__table__, Post.__table__


def source_rows(engine) -> list[dict[str, Any]]:
    """`digest sources`: one row per source with its post count, dates, channel id and aliases."""
    from catalog.queries import list_sources

    with engine.connect() as conn:
        aliases = list_aliases(conn)
        ids = dict(conn.execute(select(S.c.id, S.c.channel_id)).all())
        copies = dict(conn.execute(select(P.c.source_id, func.count()).where(P.c.copy_of_id.is_not(None))
                                   .group_by(P.c.source_id)).all())
    return [r | {"channel_id": ids.get(r["id"]), "aliases": aliases.get(r["id"], []),
                 "copies": copies.get(r["id"], 0)} for r in list_sources(engine)]


def merge(engine, keep_ref: str, other_ref: str, *, dry_run: bool = False) -> MergeReport:
    """`digest sources merge`: one transaction, rolled back when `dry_run`."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            keep, other = source_by_ref(conn, keep_ref), source_by_ref(conn, other_ref)
            report = merge_sources(conn, keep, other)
            report.dry_run = dry_run
        except BaseException:
            trans.rollback()
            raise
        if dry_run:
            trans.rollback()
        else:
            trans.commit()
    return report


def alias(engine, source_ref: str, target: str) -> dict[str, Any]:
    """`digest sources alias`: one transaction."""
    with engine.begin() as conn:
        return add_alias(conn, source_ref, target)
