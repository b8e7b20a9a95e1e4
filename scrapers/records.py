"""Plain records handed from the scrapers to the catalog.

Frozen dataclasses with tuples, so a record is hashable, comparable and safe to pass
around; the catalog never needs to know which format a record came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Literal

LinkKind = Literal["arxiv", "paper", "github", "code", "blog", "other"]
DatePrecision = Literal["second", "day"]


def _pickled_as_values(cls):
    """Pickle instances as ``cls(*field values)``.

    The dataclass default for frozen slotted classes runs `fields()` and a Python loop
    per object each way; records cross from the parser process to the writer in batches
    of thousands, where that cost a tenth of the parser's time and stalled the writer.
    """
    values = attrgetter(*(f.name for f in fields(cls)))
    cls.__reduce__ = lambda self: (cls, values(self))
    return cls


@_pickled_as_values
@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where posts come from: a Telegram channel, a blog, a mirror site."""

    kind: str  # "telegram" | "blog" | "mirror" | "archive" ...
    handle: str  # stable key within its kind: channel username or blog host
    title: str = ""
    url: str = ""
    channel_id: int | None = None  # Telegram's numeric channel id, when the input names it (JSON exports)


@_pickled_as_values
@dataclass(frozen=True, slots=True)
class Link:
    url: str
    kind: LinkKind = "other"


@_pickled_as_values
@dataclass(frozen=True, slots=True)
class PostRecord:
    """One post, normalised. `raw` is exactly what was read; `text` is clean."""

    source: SourceRecord
    external_id: str  # Telegram message id, or a stable hash for id-less dumps
    published_at: datetime | None  # aware UTC
    text: str
    raw: str = ""
    url: str = ""
    title: str = ""
    date_precision: DatePrecision = "second"
    hashtags: tuple[str, ...] = ()
    arxiv_ids: tuple[str, ...] = ()  # normalised, version-less
    arxiv_versions: tuple[tuple[str, int], ...] = ()  # (id, version) where the text named one
    links: tuple[Link, ...] = ()
    language: str | None = None
    edited_at: datetime | None = None
    views: int | None = None
    forwarded_from: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())  # format-specific fields (author, readers…)
    # Digest of the raw message as read and of the analysis that turned it into this record
    # (`scrapers.digests`); "" where the format computes none. Not part of `content_hash`.
    raw_digest: str = ""

    def content_hash(self) -> str:
        """Hash of what a reader sees; an edit changes it, a re-read does not.

        View counts are left out on purpose: they change on every fetch and are not an edit.
        """
        h = hashlib.sha256()
        for part in (self.title, self.text, self.url, "\x1f".join(self.hashtags), "\x1f".join(self.arxiv_ids),
                     "\x1f".join(f"{l.kind}:{l.url}" for l in self.links), self.forwarded_from or ""):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x1e")
        return h.hexdigest()


@_pickled_as_values
@dataclass(frozen=True, slots=True)
class Unchanged:
    """A message the catalog already holds exactly as read (same raw digest): not analysed again.

    Handed out instead of a `PostRecord` only by readers given the stored digests
    (``formats.read(..., known=...)``)."""

    source: SourceRecord
    external_id: str


def stable_id(*parts: str) -> str:
    """A short, stable id for posts whose format carries none (text dumps, blogs)."""
    h = hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return h[:16]
