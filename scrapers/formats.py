"""The registry of input formats: detection from content, and reading a path.

Each format module exposes ``NAME``, ``sniff(head: bytes) -> bool`` and
``parse_file(path) -> Iterator[PostRecord]``. Detection looks at the content (the
first 64 KiB), not only at the file name.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Iterator

from scrapers import telegram_json
from scrapers.errors import ParseError
from scrapers.records import PostRecord

SNIFF_BYTES = 64 * 1024

# Order matters: the first format whose sniff() accepts the content wins.
FORMATS: list[ModuleType] = [telegram_json]


def names() -> list[str]:
    return [f.NAME for f in FORMATS]


def by_name(name: str) -> ModuleType:
    for fmt in FORMATS:
        if fmt.NAME == name:
            return fmt
    raise KeyError(f"unknown format {name!r} (known: {', '.join(names())})")


def detect(path: str | Path) -> ModuleType:
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    for fmt in FORMATS:
        if fmt.sniff(head):
            return fmt
    raise ParseError(f"unrecognised format (tried: {', '.join(names())}); use --format NAME to force one",
                     source=str(path))


def read(path: str | Path, format: str | None = None) -> Iterator[PostRecord]:
    """Parse `path` with the named format, or the detected one."""
    fmt = by_name(format) if format else detect(path)
    return fmt.parse_file(path)
