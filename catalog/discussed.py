"""Most-discussed papers: ranked by how many distinct sources and posts discuss them.

A paper two channels wrote about outranks one a single channel mentioned five times
(`by="sources"`, the default); `by="posts"` ranks by post count first. "Recent" is
measured against the newest post in the catalog, not the wall clock, so a catalog
built from an old export still has a meaningful "last 30 days".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from catalog.errors import UsageError
from catalog.models import Paper, Post, PostPaper, Reproduction, iso_utc, to_naive_utc

RANKINGS = ("sources", "posts")


def newest_post_time(engine: Engine) -> datetime | None:
    with engine.connect() as c:
        return c.execute(select(func.max(Post.published_at))).scalar()


def top_papers(engine: Engine, *, since: datetime | None = None, by: str = "sources",
               limit: int = 20) -> list[dict[str, Any]]:
    """Papers ranked by distinct sources and posts discussing them (posts since `since`, if given)."""
    if by not in RANKINGS:
        raise UsageError(f"unknown ranking {by!r}: use one of {', '.join(RANKINGS)}")
    sources = func.count(func.distinct(Post.source_id)).label("sources")
    posts = func.count(func.distinct(Post.id)).label("posts")
    last = func.max(Post.published_at).label("last_post")
    q = (select(Paper.arxiv_id, Paper.title, Paper.primary_category, Paper.status, sources, posts, last,
                func.max(Reproduction.slug).label("reproduction"))
         .join(PostPaper, PostPaper.paper_id == Paper.id)
         .join(Post, Post.id == PostPaper.post_id)
         .outerjoin(Reproduction, Reproduction.paper_id == Paper.id)
         .group_by(Paper.id, Paper.arxiv_id, Paper.title, Paper.primary_category, Paper.status))
    if since is not None:
        q = q.where(Post.published_at >= to_naive_utc(since))
    order = (sources, posts) if by == "sources" else (posts, sources)
    # papers discussed only in undated posts after the others, on both engines (NULL sorts differently)
    q = q.order_by(order[0].desc(), order[1].desc(), last.is_(None), last.desc(), Paper.arxiv_id).limit(limit)
    with engine.connect() as c:
        rows = c.execute(q).all()
    return [{"rank": i, "arxiv_id": r.arxiv_id, "title": r.title, "primary_category": r.primary_category,
             "status": r.status, "sources": r.sources, "posts": r.posts, "last_post": iso_utc(r.last_post),
             "reproduction": r.reproduction}
            for i, r in enumerate(rows, start=1)]


def recent_window(engine: Engine, days: int = 30) -> datetime | None:
    """The start of the last `days` days before the newest post (None for an empty catalog)."""
    newest = newest_post_time(engine)
    return None if newest is None else newest - timedelta(days=days)
