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
from catalog.ingest import ingest_records
from catalog.ingest_stats import IngestStats
from scrapers.errors import ParseError
from scrapers.fetch import Fetcher, channel_url, fetch_channel


def newest_external_id(engine: Engine, handle: str, kind: str = "telegram") -> int | None:
    """The highest numeric message id stored for the channel (by any route of it), or None."""
    from sqlalchemy import select

    from catalog.models import Post
    from catalog.source_identity import find_source_id

    with engine.connect() as conn:
        sid = find_source_id(conn, kind, handle)
        if sid is None:
            return None
        ids = conn.execute(select(Post.external_id).where(Post.source_id == sid)).scalars()
        numeric = [int(x) for x in ids if x.isdigit()]
    return max(numeric) if numeric else None


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
