"""Telegram Desktop JSON export (``result.json``), modern and old.

Modern exports carry ``text_entities`` (typed spans; hidden links only in
``text_link.href``); old ones have only ``text``, a string or a list mixing strings
and ``{type, text, href?}`` objects. Service messages (joins, pins) are not posts.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from scrapers.errors import ParseError
from scrapers.digests import KnownDigests, message_digest
from scrapers.jsonstream import JsonStream
from scrapers.normalize import analyze, clean_text, extract_hashtags
from scrapers.records import PostRecord, SourceRecord, Unchanged

NAME = "telegram-json"
_WEB_LINK = re.compile(r"^https?://", re.I)
_OTHER_SCHEME = re.compile(r"^(?!https?://)[a-z][a-z0-9+.-]*:", re.I)  # tg:, mailto:, …
DESCRIPTION = "Telegram Desktop JSON export (result.json), streamed message by message"
SKIPS_UNCHANGED = True  # parse_file takes the stored digests (`known`) and skips what they match


def sniff(head: bytes) -> bool:
    """Content check for auto-detection: a JSON object with a ``messages`` key near the top."""
    start = head.lstrip()[:1]
    return start == b"{" and b'"messages"' in head


def parse_file(path: str | Path, known: KnownDigests | None = None) -> Iterator[PostRecord | Unchanged]:
    """Stream the export: one message decoded at a time, so memory does not grow with the file.

    The chat's ``name``/``id`` come before ``messages`` in every export we know; if a
    file has them after, the messages are held until they arrive (correct, not flat).

    Each record carries the digest of its message's raw JSON text (`scrapers.digests`).
    With `known` (the stored digests of the export's source, asked once the source is
    known), a message whose id and digest are stored is handed out as `Unchanged`, before
    any analysis; only the first message of an id is compared (a repeat may differ).
    """
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    with f:
        stream = JsonStream(f, source=str(path))
        header: dict[str, Any] = {}
        pending: list[tuple[Any, str]] = []
        source: SourceRecord | None = None
        stored: dict[str, str] = {}
        index = 0
        for kind, key, value in stream.events("messages"):
            if kind == "key":
                header[key] = value
                continue
            item = (value, message_digest(stream.last_text()))
            if source is None and "id" not in header and "name" not in header:
                pending.append(item)
                continue
            if source is None:
                source = _source(header, str(path))
                stored = _stored(known, source)
                yield from _records(pending, source, str(path), 0, stored)
                index, pending = len(pending), []
            yield from _records((item,), source, str(path), index, stored)
            index += 1
        if source is None:
            if not pending and not isinstance(header.get("messages"), list):
                raise ParseError("no 'messages' list (is this a Telegram Desktop export?)", source=str(path))
            source = _source(header, str(path))
            yield from _records(pending, source, str(path), 0, _stored(known, source))


def _stored(known: Any, source: SourceRecord) -> dict[str, str]:
    """The stored digests of `source`'s messages, as a dict of our own (_records pops from it)."""
    return dict(known(source)) if known else {}


def _source(header: dict[str, Any], source_name: str) -> SourceRecord:
    try:
        return source_of(header)
    except ParseError as exc:
        raise ParseError(exc.message, source=source_name) from None


def _records(items: Iterable[tuple[Any, str]], source: SourceRecord, source_name: str, start: int,
             stored: dict[str, str]) -> Iterator[PostRecord | Unchanged]:
    """Records of (message, raw digest) pairs; `stored` loses each id it is asked about."""
    for index, (message, digest) in enumerate(items, start):
        if stored and isinstance(message, dict):
            msg_id = message.get("id")
            if isinstance(msg_id, int) and stored.pop(str(msg_id), None) == digest:
                yield Unchanged(source, str(msg_id))
                continue
        try:
            record = parse_message(message, source, digest)
        except ParseError as exc:
            raise ParseError(exc.message, source=source_name, position=f"message #{index}") from None
        if record is not None:
            yield record


def parse_export(data: Any, *, source_name: str = "<export>") -> Iterator[PostRecord]:
    if not isinstance(data, dict):
        raise ParseError(f"top level is {type(data).__name__}, expected an object with 'messages'", source=source_name)
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ParseError("no 'messages' list (is this a Telegram Desktop export?)", source=source_name)
    yield from _records(((m, "") for m in messages), source_of(data), source_name, 0, {})


def source_of(data: dict[str, Any]) -> SourceRecord:
    chat_id = data.get("id")
    name = data.get("name") or ""
    if not isinstance(name, str):
        raise ParseError("'name' is not a string")
    handle = f"channel{chat_id}" if chat_id is not None else (name or "telegram-export")
    numeric = chat_id if isinstance(chat_id, int) and not isinstance(chat_id, bool) else None
    return SourceRecord(kind="telegram", handle=str(handle), title=name, channel_id=numeric)


def _parse_time(unix: Any, local: Any) -> datetime | None:
    """Prefer ``*_unixtime`` (true UTC); old exports only have local time, taken as UTC."""
    try:
        if unix not in (None, ""):
            return datetime.fromtimestamp(int(unix), tz=timezone.utc)
        if isinstance(local, str) and local:
            return datetime.fromisoformat(local).replace(tzinfo=timezone.utc)
    except (ValueError, TypeError, OverflowError, OSError):
        raise ParseError(f"bad date {unix or local!r}") from None
    return None


def _spans(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message as typed spans, from ``text_entities`` or the old mixed ``text`` list."""
    entities = message.get("text_entities")
    text = message.get("text", "")
    if isinstance(entities, list) and (entities or not text):
        spans = entities
    elif isinstance(text, str):
        return [{"type": "plain", "text": text}]
    elif isinstance(text, list):
        spans = [{"type": "plain", "text": t} if isinstance(t, str) else t for t in text]
    else:
        raise ParseError(f"'text' is {type(text).__name__}, expected a string or a list")
    for span in spans:
        if not isinstance(span, dict) or not isinstance(span.get("text", ""), str):
            raise ParseError("a text entity is not an object with a string 'text'")
    return spans


def headline(text: str, limit: int = 100) -> str:
    """The first line of a post, cut at a word boundary when long."""
    first = text.split("\n", 1)[0].strip()
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0] if " " in first[:limit] else first[:limit]
    return cut.rstrip(" ,.;:") + "…"


def parse_message(message: Any, source: SourceRecord, raw_digest: str = "") -> PostRecord | None:
    if not isinstance(message, dict):
        raise ParseError(f"message is {type(message).__name__}, expected an object")
    if message.get("type", "message") != "message":
        return None  # service messages: pins, joins, title changes
    msg_id = message.get("id")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool):
        raise ParseError(f"message id {msg_id!r} is not an integer")
    spans = _spans(message)
    raw_text = "".join(s.get("text", "") for s in spans)
    text = clean_text(raw_text)
    if not text and not message.get("photo") and not message.get("file"):
        return None  # nothing a reader could search or read
    # Every link the message carries: hidden hrefs, and the visible `link` entities too,
    # which Telegram marks even when the text scan would miss them (``example.com/page``).
    hidden = [s["href"] for s in spans if s.get("type") == "text_link" and isinstance(s.get("href"), str)
              and _WEB_LINK.match(s["href"])]
    hidden += [s["text"].strip() for s in spans if s.get("type") == "link" and s.get("text", "").strip()
               and " " not in s["text"].strip() and not _OTHER_SCHEME.match(s["text"].strip())]
    # A hashtag entity may carry a bot suffix ("#tag@channel"): keep the tag itself.
    tagged = [t for s in spans if s.get("type") == "hashtag" for t in extract_hashtags(s["text"])]
    facts = analyze(text, hidden)
    hashtags = tuple(dict.fromkeys([*tagged, *facts.hashtags]))
    forwarded = message.get("forwarded_from")
    return PostRecord(
        source=source,
        external_id=str(msg_id),
        published_at=_parse_time(message.get("date_unixtime"), message.get("date")),
        edited_at=_parse_time(message.get("edited_unixtime"), message.get("edited")),
        text=text,
        raw=json.dumps(message, ensure_ascii=False, sort_keys=True),
        title=headline(text),
        hashtags=tuple(h for h in hashtags if h),
        arxiv_ids=facts.arxiv_ids,
        arxiv_versions=facts.arxiv_versions,
        links=facts.links,
        language=facts.language,
        forwarded_from=forwarded if isinstance(forwarded, str) else None,
        raw_digest=raw_digest,
    )
