"""Telegram web-view mirror pages: the text of a third-party page showing one post.

Shape::

    Warning: mkdir(): ... on line 37          <- PHP noise, dropped
    <channel title> | Telegram Webview: <handle>/<id> -
    Telegram Group & Telegram Channel         <- site chrome
    <body>
    <mirror host>/<handle>/<id>
    Create: [date]
    Last Update: [date]
    <body again>
    BY <channel title>
    ... share buttons, "DID YOU KNOW?" footer ...

The handle and id come from the title line, so the post lands on the same
``telegram`` source and id as the channel's own t.me pages. The body is kept once:
the two copies are merged line by line (a copy may be cut or lack a line).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from scrapers.build import make_record
from scrapers.errors import ParseError
from scrapers.records import PostRecord, SourceRecord
from scrapers.textblocks import merge_copies, strip_boilerplate
from scrapers.textio import head_text, read_text

NAME = "mirror-page"
DESCRIPTION = "Telegram web-view mirror page text (title '… | Telegram Webview: channel/id')"

_TITLE = re.compile(r"^(?P<title>.*?)\s*\|\s*Telegram Webview:\s*(?P<handle>[A-Za-z0-9_]{3,64})/(?P<id>\d+)\b")
_CHROME = [re.compile(r"^\s*Telegram Group & Telegram Channel\s*$")]
_CREATE = re.compile(r"^\s*Create:\s*(?P<date>.*)$")
_UPDATE = re.compile(r"^\s*Last Update:\s*(?P<date>.*)$")
_FOOTER = re.compile(r"^\s*(?:Share with your friend now:|View MORE|Open in Telegram|Telegram \| DID YOU KNOW\?)\s*$")


def sniff(head: bytes) -> bool:
    return any(_TITLE.match(ln) for ln in head_text(head).splitlines()[:40])


def _date(value: str) -> datetime | None:
    """Mirror dates look like ``2019-06-03 10:00:00`` or ``03.06.2019 10:00``; empty is common."""
    value = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
                "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def parse_text(text: str, *, source_name: str = "<mirror>") -> Iterator[PostRecord]:
    lines = strip_boilerplate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), _CHROME)
    title_at = next((i for i, ln in enumerate(lines) if _TITLE.match(ln)), None)
    if title_at is None:
        raise ParseError("no 'Telegram Webview: channel/id' title line", source=source_name)
    m = _TITLE.match(lines[title_at])
    assert m is not None
    handle, msg_id, channel_title = m.group("handle"), m.group("id"), m.group("title").strip()
    rest = lines[title_at + 1:]
    permalink = re.compile(rf"^\s*(?:https?://)?[\w.-]+\.\w+/{re.escape(handle)}/{msg_id}\s*$")
    byline = re.compile(rf"^\s*BY\s+{re.escape(channel_title)}\s*$") if channel_title else None

    first_end = next((i for i, ln in enumerate(rest) if permalink.match(ln) or _CREATE.match(ln)), len(rest))
    first = rest[:first_end]
    created = updated = None
    second: list[str] = []
    i = first_end
    while i < len(rest) and (permalink.match(rest[i]) or _CREATE.match(rest[i]) or _UPDATE.match(rest[i])
                             or not rest[i].strip()):
        if (c := _CREATE.match(rest[i])):
            created = _date(c.group("date"))
        if (u := _UPDATE.match(rest[i])):
            updated = _date(u.group("date"))
        i += 1
    if i > first_end:  # there was a Create:/Last Update: block: the second copy follows
        for line in rest[i:]:
            if (byline and byline.match(line)) or _FOOTER.match(line) or permalink.match(line):
                break
            second.append(line)
    body = merge_copies(first, second) if first and second else (first or second)
    body_text = "\n".join(body).strip()
    if not body_text:
        return
    source = SourceRecord(kind="telegram", handle=handle, title=channel_title, url=f"https://t.me/s/{handle}")
    yield make_record(
        source, msg_id, body_text, raw=text, url=f"https://t.me/{handle}/{msg_id}",
        published_at=created, edited_at=updated if updated and updated != created else None,
    )


def parse_file(path: str | Path) -> Iterator[PostRecord]:
    path = Path(path)
    yield from parse_text(read_text(path), source_name=str(path))
