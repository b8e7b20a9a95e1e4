"""Read-side queries behind `digest show`, `digest tags` and `digest sources`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload

from catalog.errors import DigestError
from catalog.models import Post, PostPaper, PostTag, Source, Tag, iso_utc


def post_dict(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "source": post.source.title or post.source.handle,
        "source_handle": post.source.handle,
        "external_id": post.external_id,
        "url": post.url,
        "title": post.title,
        "published_at": iso_utc(post.published_at),
        "date_precision": post.date_precision,
        "edited_at": iso_utc(post.edited_at),
        "language": post.language,
        "views": post.views,
        "forwarded_from": post.forwarded_from,
        "text": post.text,
        "raw": post.raw,
        "tags": sorted(pt.tag.name for pt in post.tags),
        "arxiv_ids": sorted(pp.paper.arxiv_id for pp in post.papers),
        "papers": [{"arxiv_id": pp.paper.arxiv_id, "title": pp.paper.title}
                   for pp in sorted(post.papers, key=lambda pp: pp.paper.arxiv_id)],  # not the engine's row order
        "links": [{"url": link.url, "kind": link.kind} for link in post.links],
        "extra": post.extra or {},
    }


def get_post(engine: Engine, post_id: int) -> dict[str, Any]:
    with Session(engine) as s:
        post = s.scalar(
            select(Post).where(Post.id == post_id).options(
                selectinload(Post.source), selectinload(Post.tags).selectinload(PostTag.tag),
                selectinload(Post.papers).selectinload(PostPaper.paper), selectinload(Post.links)))
        if post is None:
            raise DigestError(f"no post with id {post_id}")
        return post_dict(post)


def list_tags(engine: Engine) -> list[dict[str, Any]]:
    # Counted per (tag, origin) and summed here: string aggregation differs between engines.
    with Session(engine) as s:
        rows = s.execute(
            select(Tag.name, PostTag.origin, func.count(PostTag.post_id))
            .join(PostTag, PostTag.tag_id == Tag.id).group_by(Tag.name, PostTag.origin)).all()
    tags: dict[str, dict[str, Any]] = {}
    for name, origin, n in rows:
        tag = tags.setdefault(name, {"tag": name, "posts": 0, "origins": []})
        tag["posts"] += n
        tag["origins"].append(origin or "")
    for tag in tags.values():
        tag["origins"].sort()
    return sorted(tags.values(), key=lambda t: (-t["posts"], t["tag"]))


def list_sources(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as s:
        rows = s.execute(
            select(Source, func.count(Post.id), func.min(Post.published_at), func.max(Post.published_at))
            .outerjoin(Post, Post.source_id == Source.id).group_by(Source.id).order_by(Source.kind, Source.handle)
        ).all()
    return [{"id": src.id, "kind": src.kind, "handle": src.handle, "title": src.title, "url": src.url, "posts": n,
             "first": iso_utc(first), "last": iso_utc(last)} for src, n, first, last in rows]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {t: c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() or 0
                for t in ("source", "post", "tag", "paper", "link", "reproduction", "run")}
