"""Turning a clean post text into a `PostRecord`: the analysis every format shares."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from scrapers.normalize import analyze, clean_text
from scrapers.records import DatePrecision, PostRecord, SourceRecord


def headline(text: str, limit: int = 100) -> str:
    """The first line of a post, cut at a word boundary when long."""
    first = text.strip().split("\n", 1)[0].strip()
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0] if " " in first[:limit] else first[:limit]
    return cut.rstrip(" ,.;:") + "…"


def make_record(source: SourceRecord, external_id: str, text: str, *, raw: str,
                published_at: datetime | None = None, date_precision: DatePrecision = "second",
                url: str = "", title: str | None = None, hidden_links: Iterable[str] = (),
                extra_hashtags: Iterable[str] = (), views: int | None = None,
                edited_at: datetime | None = None, forwarded_from: str | None = None,
                extra: dict[str, str] | None = None) -> PostRecord:
    """Clean `text` and derive hashtags, arXiv ids, links and language from it."""
    text = clean_text(text)
    facts = analyze(text, [h for h in hidden_links if h])
    hashtags = tuple(dict.fromkeys([*extra_hashtags, *facts.hashtags]))
    return PostRecord(
        source=source,
        external_id=external_id,
        published_at=published_at,
        date_precision=date_precision,
        text=text,
        raw=raw,
        url=url,
        title=clean_text(title) if title is not None else headline(text),
        hashtags=tuple(h for h in hashtags if h),
        arxiv_ids=facts.arxiv_ids,
        arxiv_versions=facts.arxiv_versions,
        links=facts.links,
        language=facts.language,
        views=views,
        edited_at=edited_at,
        forwarded_from=forwarded_from or None,
        extra=tuple(sorted((extra or {}).items())),
    )
