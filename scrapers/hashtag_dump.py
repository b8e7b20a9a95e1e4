"""Channel post dumps with hashtags (the opendatascience shape), doubled and damaged.

Each post was captured twice in a row — a preview with the title, then the full
text, which may lack the title or carry a line the preview cut — and ends with a
hashtag line (``#nlp #bert``). The text went through the lossy ISO-8859-7 mojibake
described in `scrapers.mojibake`; the lost emoji that opened every post (``ββ``,
``π¦``) is what marks where a post starts.

Each post is kept once (the two captures merged line by line), the text repaired
where the repair is certain, `raw` left exactly as read. Hashtags are taken from
the repaired text and any that still hold mojibake characters are dropped; ids
are derived from the repaired title, never from damaged text.

The dump does not name its channel: the source is named after the file (``--format
hashtag-dump`` with a file called ``opendatascience.txt`` gives that handle).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
import re
from pathlib import Path
from typing import Iterator

from scrapers import mojibake
from scrapers.build import make_record
from scrapers.errors import ParseError
from scrapers.normalize import clean_text, extract_hashtags
from scrapers.records import PostRecord, SourceRecord, stable_id
from scrapers.textblocks import undouble
from scrapers.textio import head_text, read_text

NAME = "hashtag-dump"
DESCRIPTION = "channel post dump with hashtag lines and doubled bodies (mojibake repaired)"

_TAG_LINE = re.compile(r"^\s*#\w+(?:\s+#\w+)*\s*$")
# A post opens with a lost emoji: a run of "β"/"π" leftovers at the start of a line.
_START = re.compile(r"^(?:ββ|π[" + re.escape(mojibake._CONT) + r"]?(?:\s|$))")


def sniff(head: bytes) -> bool:
    text = head_text(head)
    if text.lstrip().startswith(("<", "{", "[")):
        return False
    lines = text.splitlines()
    tag_lines = sum(bool(_TAG_LINE.match(ln)) for ln in lines)
    starts = sum(bool(_START.match(ln)) for ln in lines)
    return tag_lines >= 2 or (tag_lines >= 1 and starts >= 1)


def split_posts(lines: list[str]) -> list[list[str]]:
    """Posts as line blocks: on lost-emoji openers when the dump has them, else after every
    second hashtag line (a post and its repeat each end with one)."""
    if any(_START.match(ln) for ln in lines):
        posts: list[list[str]] = []
        for line in lines:
            if _START.match(line) or not posts:
                posts.append([])
            posts[-1].append(line)
        return posts
    posts, current, tag_lines = [], [], 0
    for line in lines:
        current.append(line)
        if _TAG_LINE.match(line):
            tag_lines += 1
            if tag_lines % 2 == 0:
                posts.append(current)
                current = []
    if any(ln.strip() for ln in current):
        posts.append(current)
    return posts


def parse_text(text: str, *, source_name: str = "<dump>", handle: str = "dump") -> Iterator[PostRecord]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    damaged = mojibake.looks_damaged(text)
    blocks = [b for b in split_posts(lines) if any(ln.strip() for ln in b)]
    if not blocks:
        raise ParseError("empty dump", source=source_name)
    source = SourceRecord(kind="telegram", handle=handle, title=handle)
    seen: dict[str, int] = {}
    for block in blocks:
        raw = "\n".join(block).strip("\n")
        fixed = [mojibake.repair_lossy(ln) if damaged else ln for ln in block]
        fixed = [mojibake.repair(ln) if not damaged else ln for ln in fixed]
        body = clean_text("\n".join(undouble([ln for ln in fixed])))
        if not body:
            continue
        tags = [t for t in extract_hashtags(body) if not mojibake.has_mojibake_chars(t)]
        title = body.split("\n", 1)[0].strip()
        key = hashlib.sha1(title.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        n = seen.get(key, 0)
        seen[key] = n + 1
        record = make_record(source, stable_id(handle, key, str(n)), body, raw=raw)
        # the record's own hashtag scan saw the same text; keep only clean ones
        yield replace(record, hashtags=tuple(tags))


def parse_file(path: str | Path) -> Iterator[PostRecord]:
    path = Path(path)
    handle = re.sub(r"[^\w.-]+", "-", path.stem) or "dump"
    yield from parse_text(read_text(path), source_name=str(path), handle=handle)
