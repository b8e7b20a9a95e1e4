"""Read-side queries about papers: `digest paper`, `digest papers`, titles for search hits."""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, selectinload

from catalog.errors import DigestError, UsageError
from catalog.models import Paper, PaperStatus, PaperTag, Post, PostPaper, Reproduction, Tag, iso_utc
from catalog.sqlutil import chunked
from scrapers.normalize import normalize_arxiv_id, normalize_hashtag


def parse_paper_id(value: str) -> str:
    """A user-typed id (``arXiv:1807.03819v3``, an arxiv.org URL) as the catalog stores it."""
    try:
        return normalize_arxiv_id(value)[0]
    except ValueError:
        raise UsageError(f"not an arXiv id: {value!r} (e.g. 2004.13342 or hep-th/9901001)") from None


def paper_status(value: str) -> PaperStatus:
    """A user-typed status (``--status not_found``) as a `PaperStatus`."""
    try:
        return PaperStatus(value)
    except ValueError:
        raise UsageError(f"unknown --status {value!r}: use one of {', '.join(PaperStatus)}") from None


def paper_titles(conn: Connection | Session | Engine, arxiv_ids: Iterable[str]) -> dict[str, str]:
    """``{arxiv_id: title}`` for the ids whose metadata is known (others are left out).

    Takes a Connection, a Session or an Engine; ids may carry versions or prefixes.
    """
    wanted: list[str] = []
    for raw in arxiv_ids:
        try:
            wanted.append(normalize_arxiv_id(raw)[0])
        except ValueError:
            continue
    if not wanted:
        return {}
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return paper_titles(c, wanted)
    out: dict[str, str] = {}
    unique = list(dict.fromkeys(wanted))
    for part in chunked(unique):
        out.update(conn.execute(select(Paper.arxiv_id, Paper.title)
                                .where(Paper.arxiv_id.in_(part), Paper.title.is_not(None))).all())
    return out


def _paper_summary(paper: Paper, posts: int, reproduction: str | None) -> dict[str, Any]:
    return {
        "arxiv_id": paper.arxiv_id,
        "title": paper.title,
        "authors": list(paper.authors or []),
        "primary_category": paper.primary_category,
        "published": iso_utc(paper.published),
        "status": paper.status,
        "posts": posts,
        "reproduction": reproduction,
    }


def list_papers(engine: Engine, *, tag: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Papers in the catalog, newest publication first (papers without metadata last)."""
    post_count = (select(PostPaper.paper_id, func.count(PostPaper.post_id).label("n"))
                  .group_by(PostPaper.paper_id).subquery())
    q = (select(Paper, func.coalesce(post_count.c.n, 0), Reproduction.slug)
         .outerjoin(post_count, post_count.c.paper_id == Paper.id)
         .outerjoin(Reproduction, Reproduction.paper_id == Paper.id))
    if tag:
        q = q.where(Paper.id.in_(select(PaperTag.paper_id).join(Tag, Tag.id == PaperTag.tag_id)
                                 .where(Tag.name == normalize_hashtag(tag))))
    if status:
        q = q.where(Paper.status == paper_status(status).value)
    q = q.order_by(Paper.published.is_(None), Paper.published.desc(), Paper.arxiv_id)
    with Session(engine) as s:
        return [_paper_summary(p, n, slug) for p, n, slug in s.execute(q).all()]


def get_paper(engine: Engine, arxiv_id: str) -> dict[str, Any]:
    """A paper with its metadata, the posts discussing it and its reproduction (if any)."""
    ident = parse_paper_id(arxiv_id)
    with Session(engine) as s:
        paper = s.scalar(select(Paper).where(Paper.arxiv_id == ident).options(
            selectinload(Paper.posts).selectinload(PostPaper.post).selectinload(Post.source)))
        if paper is None:
            raise DigestError(f"no paper {ident} in the catalog (add it with `digest arxiv add {ident}`)")
        tags = s.scalars(select(Tag.name).join(PaperTag, PaperTag.tag_id == Tag.id)
                         .where(PaperTag.paper_id == paper.id).order_by(Tag.name)).all()
        repro = s.scalar(select(Reproduction).where(
            (Reproduction.paper_id == paper.id) | (Reproduction.arxiv_id == ident)).options(
            selectinload(Reproduction.runs)))
        posts = sorted((pp.post for pp in paper.posts),
                       key=lambda p: (p.published_at is None, p.published_at or 0, p.id))
        return {
            "arxiv_id": paper.arxiv_id,
            "version": paper.version,
            "title": paper.title,
            "authors": list(paper.authors or []),
            "abstract": paper.abstract,
            "primary_category": paper.primary_category,
            "categories": list(paper.categories or []),
            "tags": list(tags),
            "published": iso_utc(paper.published),
            "updated": iso_utc(paper.updated),
            "abs_url": f"https://arxiv.org/abs/{paper.arxiv_id}",
            "pdf_url": paper.pdf_url,
            "doi": paper.doi,
            "journal_ref": paper.journal_ref,
            "comment": paper.comment,
            "status": paper.status,
            "fetched_at": iso_utc(paper.fetched_at),
            "posts": [{
                "id": p.id,
                "source": p.source.title or p.source.handle,
                "published_at": iso_utc(p.published_at),
                "date_precision": p.date_precision,
                "title": p.title,
                "url": p.url,
            } for p in posts],
            "reproduction": _reproduction(repro) if repro else None,
        }


def _reproduction(r: Reproduction) -> dict[str, Any]:
    last = r.runs[-1] if r.runs else None
    return {
        "slug": r.slug,
        "title": r.title,
        "summary": r.summary,
        "measures": r.measures,
        "paper_claims": list(r.paper_claims or []),
        "presets": list(r.presets or []),
        "runs": len(r.runs),
        "last_run": None if last is None else {
            "preset": last.preset, "device": last.device, "status": last.status,
            "started_at": iso_utc(last.started_at), "metrics": dict(last.metrics or {}),
        },
    }
