"""Channel archive text dumps: the plain text of a Telegram-archive site.

Shape (one channel per file)::

    Size: a a a
    2020 April 29                 <- date header, day precision
    DL in NLP                     <- the channel name opens a post
    Scheduled DropHead: ...       <- body
    Переслано от Someone          <- optional: marks a forward
    источник                      <- "source": closes the post

Posts with no body (name + ``источник`` only, or a bare forward line) are media we
never saw and are skipped. The format has no message ids, so a post's id is derived
from the channel, the day, the body and its position among identical bodies that
day: re-reading the file gives the same ids, and a post added elsewhere does not
shift them.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from scrapers.build import make_record
from scrapers.errors import ParseError
from scrapers.records import PostRecord, SourceRecord, stable_id
from scrapers.textio import head_text, read_text

NAME = "archive-text"
DESCRIPTION = "channel archive text dump (date headers, posts closed by 'источник')"

MONTHS = {m: i for i, m in enumerate(
    "January February March April May June July August September October November December".split(), 1)}
_DATE = re.compile(r"^(\d{4}) (" + "|".join(MONTHS) + r") (\d{1,2})$")
_END = "источник"
_FORWARD = re.compile(r"^Переслано от\s+(.+?)\s*$")


def sniff(head: bytes) -> bool:
    text = head_text(head)
    lines = [ln.strip() for ln in text.splitlines()]
    return sum(ln == _END for ln in lines) >= 1 and any(_DATE.match(ln) for ln in lines)


def channel_name(lines: list[str]) -> str:
    """The line that most often opens a post: the one right after a date header or an end line."""
    openers: Counter[str] = Counter()
    for prev, line in zip(lines, lines[1:]):
        if line and (prev == _END or _DATE.match(prev)) and line != _END and not _DATE.match(line):
            openers[line] += 1
    if not openers:
        raise ParseError("no post found (no channel-name line after a date header)")
    return openers.most_common(1)[0][0]


def _slug(name: str) -> str:
    return re.sub(r"[^\w]+", "-", name.casefold()).strip("-") or "archive"


def parse_text(text: str, *, source_name: str = "<archive>") -> Iterator[PostRecord]:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    stripped = [ln.strip() for ln in lines]
    try:
        name = channel_name(stripped)
    except ParseError as exc:
        raise ParseError(exc.message, source=source_name) from None
    source = SourceRecord(kind="archive", handle=_slug(name), title=name)
    day: datetime | None = None
    body: list[str] | None = None  # None: between posts
    start_line = 0
    seen: Counter[tuple] = Counter()
    for lineno, (line, key) in enumerate(zip(lines, stripped), 1):
        m = _DATE.match(key)
        if m:
            # A date header always separates posts; a post left open before it (the
            # channel name printed as a page title, or a missing end line) is closed.
            if body:
                record = _post(source, day, body, seen, source_name, start_line)
                if record is not None:
                    yield record
            body = None
            day = datetime(int(m.group(1)), MONTHS[m.group(2)], int(m.group(3)), tzinfo=timezone.utc)
            continue
        if body is None:
            if key == name:
                body, start_line = [], lineno
            # anything else between posts ("Size:", a title block) is page chrome
            continue
        if key == _END:
            record = _post(source, day, body, seen, source_name, start_line)
            if record is not None:
                yield record
            body = None
            continue
        body.append(line)
    if body:  # a file cut after a post's last line: keep what we have
        record = _post(source, day, body, seen, source_name, start_line)
        if record is not None:
            yield record


def _post(source: SourceRecord, day: datetime | None, body: list[str], seen: Counter,
          source_name: str, start_line: int) -> PostRecord | None:
    forwarded = None
    kept = []
    for line in body:
        m = _FORWARD.match(line.strip())
        if m and forwarded is None:
            forwarded = m.group(1)
            continue
        kept.append(line)
    raw = "\n".join(body)
    text = "\n".join(kept).strip()
    if not text:
        return None
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    day_key = day.date().isoformat() if day else "undated"
    occurrence = seen[(day_key, digest)]
    seen[(day_key, digest)] += 1
    return make_record(
        source, stable_id(source.handle, day_key, digest, str(occurrence)), text, raw=raw,
        published_at=day, date_precision="day", forwarded_from=forwarded,
        extra={"line": str(start_line)},
    )


def parse_file(path: str | Path) -> Iterator[PostRecord]:
    path = Path(path)
    yield from parse_text(read_text(path), source_name=str(path))
