"""Cross-posts: a post whose text is the same as a post in another source, or a forward that
names its original (``t.me/<channel>/<id>``), points at the original through
``post.copy_of_id``; search shows the original only unless asked for copies.

All SQL here is SQLAlchemy Core, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import Connection, func, or_, select, update

from catalog.models import Post, Source
from catalog.source_identity import find_source_id
from catalog.sqlutil import chunked

P, S = Post.__table__, Source.__table__


def _other_sources_have_posts(conn: Connection, sid: int) -> bool:
    """Whether any source but `sid` holds a post (one indexed look-up per source: there are few)."""
    others = conn.execute(select(S.c.id).where(S.c.id != sid)).scalars().all()
    return any(conn.execute(select(P.c.id).where(P.c.source_id == other).limit(1)).first() is not None
               for other in others)


def link_copies(conn: Connection, posts: Iterable[tuple[int, int, str | None, str | None]]) -> int:
    """Tie posts to their originals when one is a forward or repost of the other; returns links made.

    `posts` are (post id, source id, fingerprint, forwarded post ref) of the posts just
    written. Two rules: a forward that names its original (``channel/id``, from a t.me
    page) found in the catalog; or the same text (`text_fingerprint`) in another source,
    where the original is the post that is not itself a forward, else the earliest.
    """
    made = 0
    fingerprints: set[str] = set()
    sources: set[int] = set()
    for pid, sid, fp, ref in posts:
        sources.add(sid)
        if fp:
            fingerprints.add(fp)
        if ref and "/" in ref:
            channel, ext = ref.rsplit("/", 1)
            origin_source = find_source_id(conn, "telegram", channel)
            if origin_source is not None and origin_source != sid:
                original = conn.execute(select(P.c.id).where(P.c.source_id == origin_source,
                                                             P.c.external_id == ext)).scalar()
                if original is not None:
                    made += conn.execute(update(P).where(P.c.id == pid, or_(
                        P.c.copy_of_id.is_(None), P.c.copy_of_id != original)).values(copy_of_id=original)).rowcount
    if len(sources) == 1 and not _other_sources_have_posts(conn, sources.pop()):
        return made  # one source holds every post: no text can be in two sources
    shared: list[str] = []  # texts that occur in more than one source: usually none or few
    for part in chunked(sorted(fingerprints)):
        shared += conn.execute(select(P.c.fingerprint).where(P.c.fingerprint.in_(part)).group_by(P.c.fingerprint)
                               .having(func.count(func.distinct(P.c.source_id)) > 1)).scalars().all()
    for part in chunked(shared):
        groups: dict[str, list] = {}
        for row in conn.execute(select(P.c.id, P.c.source_id, P.c.fingerprint, P.c.forwarded_from, P.c.published_at,
                                       P.c.copy_of_id).where(P.c.fingerprint.in_(part))):
            groups.setdefault(row.fingerprint, []).append(row)
        for rows in groups.values():
            original = min(rows, key=lambda r: (r.forwarded_from is not None, r.published_at is None,
                                                r.published_at or 0, r.id))
            for r in rows:
                if r.source_id != original.source_id and r.copy_of_id != original.id:
                    conn.execute(update(P).where(P.c.id == r.id).values(copy_of_id=original.id))
                    made += 1
            if original.copy_of_id is not None:
                conn.execute(update(P).where(P.c.id == original.id).values(copy_of_id=None))
    return made
