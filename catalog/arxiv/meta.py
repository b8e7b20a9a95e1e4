"""What we keep of one `arxiv.Result`: plain values ready for the `paper` row."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import arxiv

from catalog.models import PaperStatus, to_naive_utc

_VERSIONED = re.compile(r"^(?P<id>.+?)(?:v(?P<v>\d+))?$")
_WITHDRAWN = re.compile(r"\bwithdrawn\b", re.I)
_WITHDRAWN_ABSTRACT = re.compile(r"^\s*(?:this|the) (?:paper|article|submission|manuscript) (?:has been|is|was) withdrawn",
                                 re.I)


@dataclass
class PaperMeta:
    arxiv_id: str
    version: int | None
    title: str
    authors: list[str]
    abstract: str
    primary_category: str | None
    categories: list[str]
    published: datetime | None  # naive UTC, as stored
    updated: datetime | None
    pdf_url: str | None
    doi: str | None
    journal_ref: str | None
    comment: str | None
    status: PaperStatus = PaperStatus.OK


def split_version(short_id: str) -> tuple[str, int | None]:
    """``1807.03819v3`` -> (``1807.03819``, 3); ``hep-th/9901001`` -> (``hep-th/9901001``, None)."""
    m = _VERSIONED.match(short_id.strip())
    return m.group("id"), int(m.group("v")) if m.group("v") else None


def category_tag(category: str) -> str:
    """``cs.CL`` -> ``cs.cl``: the tag an arXiv category becomes."""
    return category.strip().casefold()


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def paper_meta(result: arxiv.Result) -> PaperMeta:
    arxiv_id, version = split_version(result.get_short_id())
    abstract = _one_line(result.summary)
    comment = _one_line(result.comment) or None
    withdrawn = bool(comment and _WITHDRAWN.search(comment)) or bool(_WITHDRAWN_ABSTRACT.match(abstract))
    categories = list(dict.fromkeys(c for c in result.categories if c))
    primary = result.primary_category or (categories[0] if categories else None)
    if primary and primary not in categories:
        categories.insert(0, primary)
    return PaperMeta(
        arxiv_id=arxiv_id, version=version, title=_one_line(result.title),
        authors=[name for name in (_one_line(a.name) for a in result.authors) if name],
        abstract=abstract, primary_category=primary, categories=categories,
        published=to_naive_utc(result.published), updated=to_naive_utc(result.updated),
        pdf_url=result.pdf_url, doi=_one_line(result.doi) or None,
        journal_ref=_one_line(result.journal_ref) or None, comment=comment,
        status=PaperStatus.WITHDRAWN if withdrawn else PaperStatus.OK)
