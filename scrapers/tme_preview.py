"""Telegram public preview pages (``https://t.me/s/<channel>``), saved or fetched.

One page holds about twenty posts, oldest first::

    div.tgme_widget_message[data-post="gonzo_ML/62"]
      .tgme_widget_message_forwarded_from_name     forward
      .tgme_widget_message_text                    body (emoji as <i class="emoji"><b>🔥</b></i>)
      span.tgme_widget_message_views               "1.2K"
      a.tgme_widget_message_date time[datetime]    ISO time with zone
      span.tgme_widget_message_meta "edited"       edited flag
    a.tme_messages_more[data-before="41"]          link to older posts

Hashtags are links to ``?q=%23tag``; they are read from the text like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from bs4 import Tag

from scrapers.build import make_record
from scrapers.errors import ParseError
from scrapers.htmltext import body_text, soup_of
from scrapers.records import PostRecord, SourceRecord
from scrapers.textio import head_text, read_text

NAME = "tme-preview"
DESCRIPTION = "t.me/s/<channel> public preview page (saved HTML; URLs are fetched)"

_VIEWS = re.compile(r"^\s*([\d.,]+)\s*([KkMmBb]?)\s*$")
_FORWARDED_POST = re.compile(r"^(?:https?:)?//t\.me/(?:s/)?([A-Za-z0-9_]{3,64})/(\d+)")
_MULT = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def sniff(head: bytes) -> bool:
    text = head_text(head)
    return "tgme_widget_message" in text or "tgme_channel_info" in text


def parse_views(value: str | None) -> int | None:
    """``1.2K`` -> 1200, ``3M`` -> 3000000, ``845`` -> 845; None when unreadable."""
    m = _VIEWS.match(value or "")
    if not m:
        return None
    number = m.group(1).replace(",", ".") if m.group(2) else m.group(1).replace(",", "")
    try:
        return int(round(float(number) * _MULT[m.group(2).lower()]))
    except ValueError:
        return None


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


@dataclass
class Page:
    """One parsed page: its posts (oldest first) and the id to ask for older ones."""

    channel: str
    title: str
    posts: list[PostRecord] = field(default_factory=list)
    before: int | None = None


def parse_page(html: str, *, source_name: str = "<t.me page>", channel: str | None = None) -> Page:
    soup = soup_of(html)
    widgets = soup.find_all("div", class_="tgme_widget_message", attrs={"data-post": True})
    title_node = soup.find(class_="tgme_channel_info_header_title")
    title = " ".join(title_node.get_text(" ").split()) if title_node else ""
    if not widgets and title_node is None and soup.find(class_="tgme_widget_message_wrap") is None:
        raise ParseError("no tgme_widget_message blocks (is this a t.me/s page?)", source=source_name)
    page = Page(channel=channel or "", title=title)
    for w in widgets:
        post_ref = (w.get("data-post") or "").strip()
        handle, _, msg_id = post_ref.rpartition("/")
        if not handle or not msg_id.isdigit():
            continue
        page.channel = page.channel or handle
        record = _record(w, handle, msg_id, title)
        if record is not None:
            page.posts.append(record)
    more = soup.find("a", class_="tme_messages_more", attrs={"data-before": True})
    if more is not None and str(more.get("data-before", "")).isdigit():
        page.before = int(more["data-before"])
    return page


_WANTED = {"tgme_widget_message_owner_name", "tgme_widget_message_text", "tgme_widget_message_photo_wrap",
           "tgme_widget_message_video_player", "tgme_widget_message_document", "tgme_widget_message_date",
           "tgme_widget_message_views", "tgme_widget_message_forwarded_from_name", "tgme_widget_message_meta"}


def _parts(w: Any) -> dict[str, Any]:
    """The first element of each wanted class inside widget `w`, found in one walk of its tags."""
    found: dict[str, Any] = {}
    for el in w.descendants:
        cls = el.get("class") if isinstance(el, Tag) else None
        if cls:
            for c in cls:
                if c in _WANTED and c not in found:
                    found[c] = el
    return found


def _record(w: Any, handle: str, msg_id: str, title: str) -> PostRecord | None:
    raw = str(w)
    parts = _parts(w)
    owner = parts.get("tgme_widget_message_owner_name")
    channel_title = title or (" ".join(owner.get_text(" ").split()) if owner else "")
    source = SourceRecord(kind="telegram", handle=handle, title=channel_title, url=f"https://t.me/s/{handle}")
    text_node = parts.get("tgme_widget_message_text")
    for emoji in (text_node.find_all("i", class_="emoji") if text_node is not None else []):
        emoji.replace_with(emoji.get_text(""))
    text, hidden = body_text(text_node)
    has_media = any(k in parts for k in ("tgme_widget_message_photo_wrap", "tgme_widget_message_video_player",
                                         "tgme_widget_message_document"))
    if not text.strip() and not has_media:
        return None
    date_link = parts.get("tgme_widget_message_date")
    time_node = (date_link or w).find("time", attrs={"datetime": True})
    views_node = parts.get("tgme_widget_message_views")
    fwd = parts.get("tgme_widget_message_forwarded_from_name")
    meta = parts.get("tgme_widget_message_meta")
    edited = meta is not None and "edited" in meta.get_text(" ").lower()
    published = parse_datetime(time_node.get("datetime") if time_node is not None else None)
    extra = {"edited": "1"} if edited else {}
    origin = _FORWARDED_POST.match(str(fwd.get("href") or "")) if fwd is not None else None
    if origin:  # the forward links its original post: "channel/id", used to tie copies to originals
        extra["forwarded_post"] = f"{origin.group(1)}/{origin.group(2)}"
    return make_record(
        source, msg_id, text, raw=raw, url=f"https://t.me/{handle}/{msg_id}",
        published_at=published, hidden_links=hidden,
        views=parse_views(views_node.get_text("") if views_node is not None else None),
        forwarded_from=" ".join(fwd.get_text(" ").split()) if fwd is not None else None,
        extra=extra or None,
    )


def parse_text(html: str, *, source_name: str = "<t.me page>") -> Iterator[PostRecord]:
    yield from parse_page(html, source_name=source_name).posts


def parse_file(path: str | Path) -> Iterator[PostRecord]:
    yield from parse_text(read_text(path), source_name=str(path))
