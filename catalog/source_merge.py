"""Merging two sources into one: by hand (`merge_sources`), or automatically when it is
certain they are one channel (`adopt_route`, `merge_same_channels`):

* they carry the same Telegram channel id (JSON exports name it), or
* `SAME_TEXT_MIN` or more message ids carry the same text in both (compared by
  `text_fingerprint`, so whitespace and markup differences between readers do not
  count), and those agreeing ids are at least `SAME_TEXT_SHARE` of the ids whose texts
  both sides have. Telegram numbers messages per channel, so two channels share ids
  all the time, but never the same text under the same ids.

Anything less certain is left to `digest sources merge KEEP OTHER`. A merge moves the
posts, folds posts with the same message id into one (keeping the richest record: the
highest view count, the latest edit, every link, tag and paper) and cannot be undone
except by re-ingesting, hence ``--dry-run``.

All SQL here is SQLAlchemy Core, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from sqlalchemy import Connection, delete, func, insert, select, text, update

from catalog.errors import DigestError
from catalog.models import Link, Post, PostPaper, PostTag, Source, SourceAlias
from catalog.source_identity import public_username, source_info
from catalog.sqlutil import chunked

SAME_TEXT_MIN = 3  # message ids with the same text before two sources are one channel
SAME_TEXT_SHARE = 0.8  # ...and at least this share of the ids both have texts for
_SAMPLE = 2000  # ids of one input compared with other sources (the newest)

S, P, A = Source.__table__, Post.__table__, SourceAlias.__table__


# ---------------------------------------------------------------- merging

@dataclass
class MergeReport:
    keep: dict[str, Any]
    other: dict[str, Any]
    posts_before: dict[str, int]
    moved: int = 0  # posts only OTHER had, now in KEEP
    folded: int = 0  # posts both had (same message id), now one
    enriched: int = 0  # of those, how many took something from OTHER's record
    posts_after: int = 0
    aliases: list[str] = field(default_factory=list)
    dry_run: bool = False
    automatic: str = ""  # why an automatic merge happened ("" for a command's)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _post_count(conn: Connection, sid: int) -> int:
    return conn.execute(select(func.count()).select_from(P).where(P.c.source_id == sid)).scalar() or 0


def merge_sources(conn: Connection, keep: int, other: int, *, automatic: str = "") -> MergeReport:
    """Move every post of `other` into `keep` and make `other`'s keys aliases of `keep`.

    Runs on the caller's transaction (a dry run rolls it back). Posts with the same
    message id become one: `_fold` keeps the richest of the two records.
    """
    if keep == other:
        raise DigestError("KEEP and OTHER are the same source")
    report = MergeReport(keep=source_info(conn, keep), other=source_info(conn, other),
                         posts_before={"keep": _post_count(conn, keep), "other": _post_count(conn, other)},
                         automatic=automatic)
    theirs = dict(conn.execute(select(P.c.external_id, P.c.id).where(P.c.source_id == other).order_by(P.c.id)).all())
    ours: dict[str, int] = {}
    for part in chunked(list(theirs)):
        ours.update(conn.execute(select(P.c.external_id, P.c.id).where(
            P.c.source_id == keep, P.c.external_id.in_(part))).all())
    movers = [pid for ext, pid in theirs.items() if ext not in ours]
    for part in chunked(movers):
        conn.execute(update(P).where(P.c.id.in_(part)).values(source_id=keep))
    reindex = []
    for ext, ours_id in ours.items():
        if _fold(conn, ours_id, theirs[ext]):
            report.enriched += 1
            reindex.append(ours_id)
    report.moved, report.folded = len(movers), len(ours)
    if reindex:
        from catalog.search import reindex_posts

        reindex_posts(conn, reindex)
    # every key OTHER answered to now leads to KEEP
    conn.execute(update(A).where(A.c.source_id == other).values(source_id=keep))
    o = report.other
    conn.execute(insert(A).values(kind=o["kind"], handle=o["handle"], source_id=keep))
    k = report.keep
    fill = {"channel_id": o["channel_id"]} if k["channel_id"] is None and o["channel_id"] is not None else {}
    if not k["title"] and o["title"]:
        fill["title"] = o["title"]
    conn.execute(delete(S).where(S.c.id == other))
    if fill:
        conn.execute(update(S).where(S.c.id == keep).values(**fill))
    report.aliases = [f"{kind}:{handle}" for kind, handle in
                      conn.execute(select(A.c.kind, A.c.handle).where(A.c.source_id == keep).order_by(A.c.id))]
    report.posts_after = _post_count(conn, keep)
    return report


def _fold(conn: Connection, ours: int, theirs: int) -> bool:
    """Fold post `theirs` into `ours` (same message id): the richest record wins, field by field.

    Views: the higher count. Edits: the record edited later brings its text. Links,
    tags and papers: the union. Returns whether `ours` gained anything.
    """
    cols = (P.c.text, P.c.title, P.c.raw, P.c.url, P.c.views, P.c.edited_at, P.c.content_hash, P.c.language,
            P.c.forwarded_from, P.c.extra, P.c.fingerprint, P.c.published_at, P.c.raw_digest)
    a = conn.execute(select(*cols).where(P.c.id == ours)).one()._mapping
    b = conn.execute(select(*cols).where(P.c.id == theirs)).one()._mapping
    changes: dict[str, Any] = {}
    if b["views"] is not None and (a["views"] is None or b["views"] > a["views"]):
        changes["views"] = b["views"]
    newer_edit = b["edited_at"] is not None and (a["edited_at"] is None or b["edited_at"] > a["edited_at"])
    if newer_edit or (not a["text"] and b["text"]):
        for c in ("text", "title", "raw", "content_hash", "language", "fingerprint", "edited_at"):
            if b[c] is not None:
                changes[c] = b[c]
        changes["raw_digest"] = b["raw_digest"]  # the raw message the text now comes from
    for c in ("url", "forwarded_from", "published_at", "language"):
        if not a[c] and b[c] and c not in changes:
            changes[c] = b[c]
    extra_a, extra_b = _as_dict(a["extra"]), _as_dict(b["extra"])
    if any(k not in extra_a for k in extra_b):
        changes["extra"] = extra_b | extra_a
    if changes:
        conn.execute(update(P).where(P.c.id == ours).values(**changes))
    gained = bool(changes) | _union_children(conn, ours, theirs)
    # whatever pointed at the folded post as its original now points at the kept one
    conn.execute(update(P).where(P.c.copy_of_id == theirs).values(copy_of_id=ours))
    _delete_posts(conn, [theirs])
    return gained


def _as_dict(value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def _union_children(conn: Connection, ours: int, theirs: int) -> bool:
    """Give `ours` the links, tags and papers only `theirs` has."""
    L, PT, PP = Link.__table__, PostTag.__table__, PostPaper.__table__
    gained = False
    have = [u for (u,) in conn.execute(select(L.c.url).where(L.c.post_id == ours).order_by(L.c.position))]
    extra_links = [(u, k) for u, k in conn.execute(select(L.c.url, L.c.kind).where(L.c.post_id == theirs)
                                                   .order_by(L.c.position)) if u not in have]
    if extra_links:
        conn.execute(insert(L), [{"post_id": ours, "position": len(have) + i, "url": u, "kind": k}
                                 for i, (u, k) in enumerate(extra_links)])
        gained = True
    tags = {t for (t,) in conn.execute(select(PT.c.tag_id).where(PT.c.post_id == ours))}
    new_tags = [(t, o) for t, o in conn.execute(select(PT.c.tag_id, PT.c.origin).where(PT.c.post_id == theirs))
                if t not in tags]
    if new_tags:
        conn.execute(insert(PT), [{"post_id": ours, "tag_id": t, "origin": o} for t, o in new_tags])
        gained = True
    papers = {p for (p,) in conn.execute(select(PP.c.paper_id).where(PP.c.post_id == ours))}
    new_papers = [p for (p,) in conn.execute(select(PP.c.paper_id).where(PP.c.post_id == theirs)) if p not in papers]
    if new_papers:
        conn.execute(insert(PP), [{"post_id": ours, "paper_id": p} for p in new_papers])
        gained = True
    return gained


def _delete_posts(conn: Connection, ids: list[int]) -> None:
    """Delete posts and their rows (explicitly: not every engine cascades the search rows)."""
    for table in (Link.__table__, PostTag.__table__, PostPaper.__table__):
        conn.execute(delete(table).where(table.c.post_id.in_(ids)))
    conn.execute(text("DELETE FROM post_search WHERE post_id IN ("
                      + ",".join(str(int(i)) for i in ids) + ")"))
    conn.execute(update(P).where(P.c.copy_of_id.in_(ids)).values(copy_of_id=None))
    conn.execute(delete(P).where(P.c.id.in_(ids)))


# ---------------------------------------------------------------- automatic merges

def same_channel_candidates(conn: Connection, sid: int, external_ids: Iterable[str]) -> list[tuple[int, str]]:
    """Other sources certain to be the channel `sid` is, with the rule that made it certain."""
    me = conn.execute(select(S.c.kind, S.c.channel_id).where(S.c.id == sid)).one()
    if me.kind != "telegram":
        return []
    found: list[tuple[int, str]] = []
    if me.channel_id is not None:
        for (other,) in conn.execute(select(S.c.id).where(S.c.channel_id == me.channel_id, S.c.id != sid)
                                     .order_by(S.c.id)):
            found.append((other, f"same Telegram channel id {me.channel_id}"))
    ids = list(dict.fromkeys(external_ids))[-_SAMPLE:]
    mine: dict[str, str] = {}
    for part in chunked(ids):
        mine.update((e, fp) for e, fp in conn.execute(select(P.c.external_id, P.c.fingerprint).where(
            P.c.source_id == sid, P.c.external_id.in_(part), P.c.fingerprint.is_not(None))))
    known = {o for o, _ in found}
    return found + [(o, why) for o, why in same_text_sources(conn, sid, mine) if o not in known]


def same_text_sources(conn: Connection, sid: int, texts: dict[str, str]) -> list[tuple[int, str]]:
    """Telegram sources other than `sid` whose posts carry the same texts under the same ids.

    `texts` maps message id -> `text_fingerprint`. The rule: at least `SAME_TEXT_MIN`
    ids agree, and they are at least `SAME_TEXT_SHARE` of the ids both sides have texts for.
    """
    agree: dict[int, int] = {}
    disagree: dict[int, int] = {}
    for part in chunked(list(texts)[-_SAMPLE:]):
        for other, ext, fp in conn.execute(
                select(P.c.source_id, P.c.external_id, P.c.fingerprint).join(S, S.c.id == P.c.source_id)
                .where(S.c.kind == "telegram", P.c.source_id != sid, P.c.external_id.in_(part),
                       P.c.fingerprint.is_not(None))):
            bucket = agree if fp == texts[ext] else disagree
            bucket[other] = bucket.get(other, 0) + 1
    found = []
    for other, n in sorted(agree.items()):
        share = n / (n + disagree.get(other, 0))
        if n >= SAME_TEXT_MIN and share >= SAME_TEXT_SHARE:
            found.append((other, f"{n} message ids carry the same text ({share:.0%} of those compared)"))
    return found


def _keep_first(conn: Connection, a: int, b: int) -> tuple[int, int]:
    """(keep, other): the public username wins (it is the channel's name), then the older source."""
    def rank(sid: int) -> tuple:
        kind, handle = conn.execute(select(S.c.kind, S.c.handle).where(S.c.id == sid)).one()
        return (not public_username(kind, handle), sid)

    return (a, b) if rank(a) <= rank(b) else (b, a)


def adopt_route(conn: Connection, sid: int, texts: dict[str, str]) -> MergeReport | None:
    """Before a new route's first posts are written: join it to the channel it certainly is.

    `sid` is the source just created for the route (no posts yet) and `texts` its first
    records' message id -> fingerprint. Its posts then land in the existing source as
    another route of known posts (nothing new, nothing doubled).
    """
    if conn.execute(select(S.c.kind).where(S.c.id == sid)).scalar() != "telegram":
        return None
    for other, why in same_text_sources(conn, sid, texts):
        keep, drop = _keep_first(conn, sid, other)
        return merge_sources(conn, keep, drop, automatic=why)
    return None


def merge_same_channels(conn: Connection, touched: dict[int, list[str]]) -> list[MergeReport]:
    """Merge each source touched by an input with every source certain to be the same channel."""
    reports = []
    pending = dict(touched)
    while pending:
        sid, ids = pending.popitem()
        if conn.execute(select(S.c.id).where(S.c.id == sid)).scalar() is None:
            continue  # merged away already
        for other, why in same_channel_candidates(conn, sid, ids):
            keep, drop = _keep_first(conn, sid, other)
            reports.append(merge_sources(conn, keep, drop, automatic=why))
            if drop == sid:
                sid = keep
    return reports
