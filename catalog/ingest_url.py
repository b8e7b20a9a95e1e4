"""Ingesting a public Telegram channel straight from its t.me/s pages.

The fetch and the parse live in `scrapers.fetch`; this adds what needs the
catalog: where the last run stopped (the newest stored message id of that channel)
and one transaction for the whole fetch, so a network failure halfway leaves the
catalog as it was.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from catalog.errors import DigestError
from catalog.ingest import IngestStats, ingest_records
from scrapers.errors import ParseError
from scrapers.fetch import Fetcher, channel_url, fetch_channel


def newest_external_id(engine: Engine, handle: str, kind: str = "telegram") -> int | None:
    """The highest numeric message id stored for the channel, or None."""
    with engine.connect() as conn:
        value = conn.exec_driver_sql(
            "SELECT max(CAST(p.external_id AS INTEGER)) FROM post p JOIN source s ON s.id = p.source_id"
            " WHERE s.kind = ? AND lower(s.handle) = lower(?) AND p.external_id GLOB '[0-9]*'",
            (kind, handle)).scalar()
    return int(value) if value is not None else None


def ingest_url(engine: Engine, target: str, *, max_pages: int | None = 10, since: datetime | None = None,
               full: bool = False, fetcher: Fetcher | None = None) -> IngestStats:
    """Fetch `target` (``https://t.me/s/<channel>``) politely and upsert its posts in one transaction.

    Unless `full`, the walk stops at the newest post already in the catalog.
    """
    try:
        _, channel = channel_url(target)
        stop = None if full else newest_external_id(engine, channel)
        records = fetch_channel(target, max_pages=max_pages, since=since, stop_at_id=stop, fetcher=fetcher)
        return ingest_records(engine, records)
    except ParseError as exc:
        raise DigestError(str(exc)) from exc
