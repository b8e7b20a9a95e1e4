"""Blog listings in the shape of kexue.fm (科学空间): the text form and the site's HTML.

Every entry is a title followed by a meta line, then an excerpt::

    强大的NVAE:以后再也不能说VAE生成的图像模糊了
    By 苏剑林 | 2020-07-10 | 113498位读者 | 引用昨天早上,笔者……

In the text form the excerpt starts right after ``引用`` ("cite") on the meta line;
an entry with no excerpt has the next entry's title glued there instead. Author,
date and reader count become fields; the date has day precision. The HTML listing
and article pages carry the same meta line in an element after the title heading,
so both are read by finding meta lines first. Characters cut in half upstream
arrive as U+FFFD and are kept as they are.

An entry's id is derived from the blog, its title and date, so the text and HTML
forms of the same article land on the same post.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin, urlparse

from scrapers.build import make_record
from scrapers.errors import ParseError
from scrapers.records import PostRecord, SourceRecord, stable_id
from scrapers.textio import head_text, read_text

NAME = "blog-listing"
DESCRIPTION = "blog listing / article (kexue.fm shape): text dump or HTML page"

DEFAULT_HOST = "kexue.fm"
_META = re.compile(
    r"^\s*By\s+(?P<author>[^|\n]+?)\s*\|\s*(?P<date>\d{4}-\d{2}-\d{2})\s*\|\s*(?P<readers>[\d,]+)\s*位读者"
    r"\s*(?:\|\s*引用)?(?P<rest>.*)$")
_FOOTER_LINES = {"最近评论", "友情链接", "最新文章", "随机文章", "站内搜索"}


@dataclass
class Entry:
    title: str
    author: str
    date: str
    readers: int
    excerpt: str
    url: str = ""


_INLINE_TAG = re.compile(r"</?(?:a|span|b|strong|em|i|time)\b[^>]*>", re.I)


def sniff(head: bytes) -> bool:
    # inline tags go first: the author or the date may be a link inside the meta line
    text = _INLINE_TAG.sub("", head_text(head))
    return any(_META.match(ln) for ln in re.split(r"[\n\r]|<[^>]+>", text)[:2000])


def entries_from_text(text: str) -> list[Entry]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    metas = [i for i, ln in enumerate(lines) if _META.match(ln)]
    entries: list[Entry] = []
    for n, i in enumerate(metas):
        m = _META.match(lines[i])
        assert m is not None
        # the title: the line before, unless that line is itself a meta line whose
        # "excerpt" is really this entry's title (an entry with no excerpt)
        if i > 0 and i - 1 in metas:
            title = _META.match(lines[i - 1]).group("rest").strip()  # type: ignore[union-attr]
        else:
            title = lines[i - 1].strip() if i > 0 else ""
        nxt = metas[n + 1] if n + 1 < len(metas) else len(lines) + 1
        if nxt == i + 1:
            excerpt_lines: list[str] = []  # the rest of the meta line is the next title
        else:
            # up to the next entry's title line (the line before its meta line)
            excerpt_lines = [m.group("rest")] + lines[i + 1:nxt - 1]
        if n + 1 == len(metas):
            excerpt_lines = _drop_footer(excerpt_lines + lines[nxt - 1:nxt])
        entries.append(Entry(title=title, author=m.group("author").strip(), date=m.group("date"),
                             readers=int(m.group("readers").replace(",", "")),
                             excerpt="\n".join(excerpt_lines).strip()))
    return entries


def _drop_footer(lines: list[str]) -> list[str]:
    for k, line in enumerate(lines):
        if line.strip() in _FOOTER_LINES:
            return lines[:k]
    return lines


def entries_from_html(html: str, base_url: str = "") -> list[Entry]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for bad in soup(["script", "style", "noscript"]):
        bad.decompose()
    canonical = soup.find("link", rel="canonical")
    page_url = (canonical.get("href") if canonical else "") or base_url
    entries: list[Entry] = []
    metas = [node for node in soup.find_all(string=re.compile(r"位读者"))]
    seen_parents = set()
    for node in metas:
        holder = node.parent
        # climb to the element that holds the whole meta line ("By … | date | N位读者 | 引用")
        while holder is not None and not _META.match(holder.get_text(" ", strip=True)) and holder.parent is not None:
            holder = holder.parent
        if holder is None or id(holder) in seen_parents:
            continue
        m = _META.match(holder.get_text(" ", strip=True))
        if not m:
            continue
        seen_parents.add(id(holder))
        heading = holder.find_previous(["h1", "h2", "h3"])
        title, url = "", page_url
        if heading is not None:
            title = heading.get_text(" ", strip=True)
            link = heading.find("a", href=True)
            if link is not None:
                url = urljoin(base_url or page_url, link["href"])
        excerpt_parts = []
        for sib in holder.find_next_siblings():
            if sib.name in ("h1", "h2", "h3") or _META.match(sib.get_text(" ", strip=True)) \
                    or sib.find(["h1", "h2", "h3"]) is not None:
                break
            classes = " ".join(sib.get("class") or [])
            if re.search(r"comment|footer|nav|sidebar", classes, re.I):
                break
            excerpt_parts.append(sib.get_text("\n", strip=True))
        entries.append(Entry(title=title, author=m.group("author").strip(), date=m.group("date"),
                             readers=int(m.group("readers").replace(",", "")),
                             excerpt="\n".join(p for p in excerpt_parts if p).strip(), url=url))
    return entries


def _records(entries: list[Entry], raw_of: list[str], host: str) -> Iterator[PostRecord]:
    source = SourceRecord(kind="blog", handle=host, title=host, url=f"https://{host}/")
    for entry, raw in zip(entries, raw_of):
        if not entry.title and not entry.excerpt:
            continue
        try:
            day = datetime.strptime(entry.date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            day = None
        text = entry.title + ("\n\n" + entry.excerpt if entry.excerpt else "")
        yield make_record(
            source, stable_id(host, entry.title, entry.date), text, raw=raw, title=entry.title,
            published_at=day, date_precision="day", url=entry.url,
            extra={"author": entry.author, "readers": str(entry.readers)},
        )


def _is_html(text: str) -> bool:
    return bool(re.match(r"\s*(?:<!DOCTYPE|<html|<head|<body|<div|<article|<\?xml)", text, re.I))


def parse_text(text: str, *, source_name: str = "<blog>", host: str = DEFAULT_HOST,
               base_url: str = "") -> Iterator[PostRecord]:
    if _is_html(text):
        entries = entries_from_html(text, base_url)
        if base_url:
            host = urlparse(base_url).hostname or host
        elif entries and entries[0].url:
            host = urlparse(entries[0].url).hostname or host
        raws = [f"{e.title}\nBy {e.author} | {e.date} | {e.readers}位读者\n{e.excerpt}" for e in entries]
    else:
        entries = entries_from_text(text)
        raws = [f"{e.title}\nBy {e.author} | {e.date} | {e.readers}位读者 | 引用{e.excerpt}" for e in entries]
    if not entries:
        raise ParseError("no 'By <author> | <date> | <n>位读者' entry found", source=source_name)
    yield from _records(entries, raws, host)


def parse_file(path: str | Path) -> Iterator[PostRecord]:
    yield from parse_text(read_text(path), source_name=str(path))
