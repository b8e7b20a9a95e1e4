"""Telegram Desktop HTML export (``messages.html``, ``messages2.html`` …).

The same content as the JSON export, as ``div.message`` blocks inside
``div.history``: ``id="message123"`` carries the message id, ``div.date[title]`` the
local time (``27.04.2020 10:15:00 UTC+03:00``; older exports leave the zone out and
we read it as UTC, like the JSON reader), ``div.text`` the body with real ``<a>``
links and hashtags, ``div.forwarded`` a forward. Service blocks (day separators,
pins) are not posts. The chat name comes from the page header.

The export has no chat id, so the source is keyed by the chat name
(``export:<name>``); Telegram splits an export into files of about a thousand
messages, so each file is parsed whole.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from scrapers.build import make_record
from scrapers.errors import ParseError
from scrapers.htmltext import body_text, classes, soup_of
from scrapers.records import PostRecord, SourceRecord
from scrapers.textio import head_text, read_text

NAME = "telegram-html"
DESCRIPTION = "Telegram Desktop HTML export (messages*.html, div.message blocks)"

_DATE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})(?: UTC([+-])(\d{2}):(\d{2}))?")
_MESSAGE_ID = re.compile(r"^message(\d+)$")


def sniff(head: bytes) -> bool:
    text = head_text(head)
    return "<" in text[:200] and ('class="message default' in text or 'class="page_wrap"' in text) \
        and ('class="history"' in text or "Exported Data" in text)


def parse_date(value: str | None) -> datetime | None:
    m = _DATE.search(value or "")
    if not m:
        return None
    d, mo, y, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    try:
        local = datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    if m.group(7):
        offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
        local -= offset if m.group(7) == "+" else -offset
    return local.replace(tzinfo=timezone.utc)


def _chat_name(soup: Any) -> str:
    page_header = soup.find("div", class_="page_header")
    header = page_header.find("div", class_="text") if page_header is not None else None
    return " ".join(header.get_text(" ").split()) if header else ""


def _own(node: Any, cls: str) -> Any:
    """The first direct child div of `node` with class `cls` (not one inside a forwarded block)."""
    for child in node.find_all("div", recursive=False):
        if cls in classes(child):
            return child
    return None


def parse_text(html: str, *, source_name: str = "<html>") -> Iterator[PostRecord]:
    soup = soup_of(html)
    messages = soup.find_all("div", class_="message")
    if not messages and soup.find("div", class_="history") is None:
        raise ParseError("no div.history / div.message blocks (is this a Telegram HTML export?)",
                         source=source_name)
    name = _chat_name(soup) or Path(source_name).parent.name or "telegram-export"
    source = SourceRecord(kind="telegram", handle=f"export:{name}", title=name)
    for block in messages:
        cls = classes(block)
        if "service" in cls:
            continue
        m = _MESSAGE_ID.match(block.get("id") or "")
        if not m:
            continue  # not a message we can key
        body = _own(block, "body") or block
        date_div = next((d for d in body.find_all("div", recursive=False) if "date" in classes(d)), None)
        forwarded_block = _own(body, "forwarded")
        forwarded = None
        text_div = _own(body, "text")
        if forwarded_block is not None:
            fname = _own(forwarded_block, "from_name")
            if fname is not None:
                for span in fname.find_all("span"):
                    span.decompose()
                forwarded = " ".join(fname.get_text(" ").split()) or None
            text_div = text_div or _own(forwarded_block, "text")
        text, hidden = body_text(text_div)
        has_media = _own(body, "media_wrap") is not None or (
            forwarded_block is not None and _own(forwarded_block, "media_wrap") is not None)
        if not text.strip() and not has_media:
            continue
        msg_id = m.group(1)
        yield make_record(
            source, msg_id, text, raw=str(block),
            published_at=parse_date(date_div.get("title") if date_div is not None else None),
            hidden_links=hidden, forwarded_from=forwarded,
        )


def parse_file(path: str | Path) -> Iterator[PostRecord]:
    yield from parse_text(read_text(path), source_name=str(path))
