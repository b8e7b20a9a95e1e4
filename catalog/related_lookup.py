"""Reading the stored related lists: one item's neighbours (`related`, for `digest related`)
and every item's (`related_map`, for the site). `catalog.related` computes and stores them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from catalog.errors import DigestError, UsageError
from catalog.models import Paper, Post, Related, Source, iso_utc
from catalog.related import KINDS


def resolve_item(engine: Engine, ident: str) -> tuple[str, int]:
    """A post id (``42``) or an arXiv id (``2004.13342``, ``arXiv:…``) as (kind, row id)."""
    ident = ident.strip()
    with Session(engine) as s:
        if ident.isdigit():
            if s.get(Post, int(ident)) is None:
                raise DigestError(f"no post with id {ident}")
            return "post", int(ident)
        from catalog.papers import parse_paper_id

        arxiv_id = parse_paper_id(ident)
        pid = s.scalar(select(Paper.id).where(Paper.arxiv_id == arxiv_id))
        if pid is None:
            raise DigestError(f"no paper {arxiv_id} in the catalog")
        return "paper", pid


def related(engine: Engine, ident: str, *, kinds: tuple[str, ...] = KINDS, limit: int = 5) -> list[dict[str, Any]]:
    """The stored neighbours of a post or paper, best first per kind (posts, then papers)."""
    for kind in kinds:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}: use post or paper")
    item_kind, item_id = resolve_item(engine, ident)
    out: list[dict[str, Any]] = []
    with Session(engine) as s:
        for kind in kinds:
            rows = s.execute(select(Related.other_id, Related.score, Related.rank)
                             .where(Related.item_kind == item_kind, Related.item_id == item_id,
                                    Related.other_kind == kind, Related.rank <= limit)
                             .order_by(Related.rank)).all()
            ids = [r.other_id for r in rows]
            if kind == "post":
                info = {p.id: {"id": p.id, "title": p.title or _first_line(p.text), "source": src_title,
                               "published_at": iso_utc(p.published_at), "url": p.url}
                        for p, src_title in s.execute(select(Post, func.coalesce(func.nullif(Source.title, ""),
                                                                                   Source.handle))
                                                      .join(Source, Source.id == Post.source_id)
                                                      .where(Post.id.in_(ids)))} if ids else {}
            else:
                info = {p.id: {"arxiv_id": p.arxiv_id, "title": p.title, "primary_category": p.primary_category}
                        for p in s.scalars(select(Paper).where(Paper.id.in_(ids)))} if ids else {}
            out += [{"kind": kind, "rank": r.rank, "score": r.score, **info[r.other_id]}
                    for r in rows if r.other_id in info]
    return out


def _first_line(text: str | None, limit: int = 90) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "…"


def related_map(engine: Engine, limit: int = 5) -> dict[tuple[str, int], list[tuple[str, int, float]]]:
    """Every item's neighbours as ``{(kind, id): [(other_kind, other_id, score), …]}`` (for the site)."""
    out: dict[tuple[str, int], list[tuple[str, int, float]]] = {}
    with engine.connect() as c:
        for r in c.execute(select(Related).where(Related.rank <= limit)
                           .order_by(Related.item_kind, Related.item_id, Related.other_kind, Related.rank)):
            out.setdefault((r.item_kind, r.item_id), []).append((r.other_kind, r.other_id, r.score))
    return out
