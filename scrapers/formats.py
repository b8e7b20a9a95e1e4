"""The registry of input formats: detection from content, and reading a path.

Each format module exposes ``NAME``, ``DESCRIPTION``, ``sniff(head: bytes) -> bool``
and ``parse_file(path) -> Iterator[PostRecord]``. Detection looks at the content
(the first 64 KiB), never at the file name alone: the first format whose `sniff`
accepts the head wins, so the specific formats come before the loose text ones.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Iterator

from scrapers import (archive_text, blog_listing, hashtag_dump, mirror_page, telegram_html, telegram_json,
                      tme_preview)
from scrapers.errors import ParseError
from scrapers.digests import KnownDigests
from scrapers.records import PostRecord, Unchanged

SNIFF_BYTES = 64 * 1024

# Order matters: the first format whose sniff() accepts the content wins.
FORMATS: list[ModuleType] = [telegram_json, telegram_html, tme_preview, blog_listing, mirror_page, archive_text,
                             hashtag_dump]


def names() -> list[str]:
    return [f.NAME for f in FORMATS]


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) of every format, in detection order."""
    return [(f.NAME, getattr(f, "DESCRIPTION", "")) for f in FORMATS]


class UnknownFormat(KeyError):
    """A format name no reader has. A KeyError (a lookup by name), but its own type, so a
    caller can tell a bad ``--format`` from a KeyError raised by a bug inside a parser."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown format"


def by_name(name: str) -> ModuleType:
    for fmt in FORMATS:
        if fmt.NAME == name:
            return fmt
    raise UnknownFormat(f"unknown format {name!r} (known: {', '.join(names())})")


def detect(path: str | Path) -> ModuleType:
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    if not head.strip():
        raise ParseError("empty file", source=str(path))
    for fmt in FORMATS:
        if fmt.sniff(head):
            return fmt
    raise ParseError(f"unrecognised format (tried: {', '.join(names())}); use --format NAME to force one",
                     source=str(path))


def read(path: str | Path, format: str | None = None,
         known: KnownDigests | None = None) -> Iterator[PostRecord | Unchanged]:
    """Parse `path` with the named format, or the detected one.

    `known` gives the stored raw digests of a source (`scrapers.digests`): a format that
    digests its raw messages (``SKIPS_UNCHANGED``) hands out the messages they match as
    `Unchanged`, unanalysed; the other formats ignore it and read everything."""
    fmt = by_name(format) if format else detect(path)
    if known is not None and getattr(fmt, "SKIPS_UNCHANGED", False):
        return fmt.parse_file(path, known)
    return fmt.parse_file(path)
