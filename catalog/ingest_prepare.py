"""What a record needs before it is written, worked out where the record is parsed.

A large input is parsed in a forked child (`catalog.ingest_parser`) while this process
writes; the per-record work that needs no database (NUL cleaning, the content hash, the
text fingerprint, the post's own search text and stems) is done there too, so the writer
is left with the SQL. Small inputs do the same work in this process.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import NamedTuple

from catalog.search import search_row
from catalog.source_identity import text_fingerprint
from scrapers.records import PostRecord, Unchanged


class Prepared(NamedTuple):
    record: PostRecord  # NUL-free (`_storable`)
    content_hash: str
    fingerprint: str | None
    search: tuple[str, str, str, str]  # `search_row` of the post's own title and text (no paper text)


def _strings(rec: PostRecord) -> tuple[str, ...]:
    """Every free-text string a record brings (ids, dates and the like cannot hold a NUL)."""
    src = rec.source
    return (rec.text, rec.raw, rec.title, rec.url, rec.forwarded_from or "", src.handle, src.title, src.url,
            *rec.hashtags, *(link.url for link in rec.links), *(v for pair in rec.extra for v in pair))


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, tuple):
        return tuple(map(_without_nul, value))
    if is_dataclass(value):
        return replace(value, **{f.name: _without_nul(getattr(value, f.name)) for f in fields(value)})
    return value


def _storable(rec: PostRecord) -> PostRecord:
    """`rec` with every NUL character dropped (text, title, raw, links, source...).

    A PostgreSQL text value cannot hold NUL; SQLite's could, but its full-text index and
    LIKE stop at one. Dropping it on both engines keeps their catalogs the same.
    """
    return _without_nul(rec) if any("\x00" in s for s in _strings(rec)) else rec


def prepare(item: PostRecord | Prepared | Unchanged) -> Prepared | Unchanged:
    """`item` ready for the writer (one prepared already, or an `Unchanged` message, as it is)."""
    if isinstance(item, (Prepared, Unchanged)):
        return item
    rec = _storable(item)
    return Prepared(rec, rec.content_hash(), text_fingerprint(rec.text), search_row(0, rec.title, rec.text, None)[:4])
