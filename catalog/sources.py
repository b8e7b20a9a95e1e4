"""One source per channel, whatever route its posts came by; forwards tied to their originals.

A Telegram channel reaches the catalog by three routes with three keys: a JSON export
(``channel<id>``), an HTML export (``export:<chat name>``) and its public page (the
username). Each key a source has answered to is kept in ``source_alias``, so a later
input by any route lands in the same source (`resolve_source`).

Two sources are merged automatically only when it is certain they are one channel:

* they carry the same Telegram channel id (JSON exports name it), or
* `SAME_TEXT_MIN` or more message ids carry the same text in both (compared by
  `text_fingerprint`, so whitespace and markup differences between readers do not
  count), and those agreeing ids are at least `SAME_TEXT_SHARE` of the ids whose texts
  both sides have. Telegram numbers messages per channel, so two channels share ids
  all the time, but never the same text under the same ids.

Anything less certain is left to `digest sources merge KEEP OTHER` (`merge_sources`)
and `digest sources alias SOURCE @username` (`add_alias`). A merge moves the posts,
folds posts with the same message id into one (keeping the richest record: the
highest view count, the latest edit, every link, tag and paper) and cannot be undone
except by re-ingesting, hence ``--dry-run``.

Cross-posts: a post whose text is the same as a post in another source, or a forward
that names its original (``t.me/<channel>/<id>``), points at the original through
``post.copy_of_id``; search shows the original only unless asked for copies.

All SQL here is SQLAlchemy Core, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from sqlalchemy import Connection, bindparam, delete, func, insert, inspect, or_, select, text, update

from catalog.errors import DigestError
from catalog.models import Follow, Link, Post, PostPaper, PostTag, Source, SourceAlias, utcnow
from catalog.sqlutil import chunked
from scrapers.records import SourceRecord

SAME_TEXT_MIN = 3  # message ids with the same text before two sources are one channel
SAME_TEXT_SHARE = 0.8  # ...and at least this share of the ids both have texts for
FINGERPRINT_MIN_CHARS = 24  # shorter texts ("👍", "Link") say nothing about identity
_SAMPLE = 2000  # ids of one input compared with other sources (the newest)

S, P, A = Source.__table__, Post.__table__, SourceAlias.__table__
_NOT_WORD = re.compile(r"\W+")
_CHANNEL_ID_HANDLE = re.compile(r"^channel(\d+)$")
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,63}$")


# ---------------------------------------------------------------- text identity

def text_fingerprint(value: str | None) -> str | None:
    """A hash of the text's letters and digits, case-folded; None when there are too few.

    Readers differ in whitespace, line breaks and the brackets around links, never in
    the words, so this is what "the same text" means across routes.
    """
    if not value:
        return None
    letters = _NOT_WORD.sub("", unicodedata.normalize("NFKC", value).casefold())
    if len(letters) < FINGERPRINT_MIN_CHARS:
        return None
    return hashlib.sha1(letters.encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------- schema (a migration)

def add_source_identity_schema(conn: Connection) -> None:
    """The migration behind this module: new tables and columns, fingerprints backfilled.

    A fresh catalog already has them (the first migration creates the current models),
    so each piece is added only when missing.
    """
    from catalog.models import Base

    have = inspect(conn)
    tables = set(have.get_table_names())
    for table in (SourceAlias.__table__, Follow.__table__):
        if table.name not in tables:
            table.create(conn)
    columns = {
        "source": {c["name"] for c in have.get_columns("source")},
        "post": {c["name"] for c in have.get_columns("post")},
    }
    for table, column, ddl in (("source", "channel_id", "BIGINT"), ("post", "fingerprint", "VARCHAR(40)"),
                               ("post", "copy_of_id", "INTEGER")):
        if column not in columns[table]:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
            # the model's own Index object: a new one would join the metadata and be created twice later
            next(i for i in Base.metadata.tables[table].indexes if [c.name for c in i.columns] == [column]).create(conn)
    _backfill_fingerprints(conn)
    for sid, handle in conn.execute(select(S.c.id, S.c.handle).where(S.c.channel_id.is_(None))).all():
        m = _CHANNEL_ID_HANDLE.match(handle)
        if m:
            conn.execute(update(S).where(S.c.id == sid).values(channel_id=int(m.group(1))))


def _backfill_fingerprints(conn: Connection) -> None:
    rows = conn.execute(select(P.c.id, P.c.text).where(P.c.fingerprint.is_(None))).all()
    values = [{"pid": pid, "fp": fp} for pid, body in rows if (fp := text_fingerprint(body))]
    for part in chunked(values):
        conn.execute(update(P).where(P.c.id == bindparam("pid")).values(fingerprint=bindparam("fp")), part)


# ---------------------------------------------------------------- finding a source

def _public_username(kind: str, handle: str) -> bool:
    return kind == "telegram" and bool(_USERNAME.match(handle)) and not _CHANNEL_ID_HANDLE.match(handle)


def _handle_match(column, handle: str, kind: str):
    # Telegram usernames are case-insensitive (t.me/Gonzo_ML is t.me/gonzo_ml).
    return func.lower(column) == handle.lower() if kind == "telegram" else column == handle


def find_source_id(conn: Connection, kind: str, handle: str, channel_id: int | None = None) -> int | None:
    """The source a route's key belongs to: its own row, an alias, or the same channel id."""
    sid = conn.execute(select(S.c.id).where(S.c.kind == kind, _handle_match(S.c.handle, handle, kind))
                       .order_by(S.c.id)).scalar()
    if sid is None:
        sid = conn.execute(select(A.c.source_id).where(A.c.kind == kind, _handle_match(A.c.handle, handle, kind))
                           .order_by(A.c.id)).scalar()
    if sid is None and channel_id is not None:
        sid = conn.execute(select(S.c.id).where(S.c.channel_id == channel_id).order_by(S.c.id)).scalar()
    return sid


def resolve_source(conn: Connection, src: SourceRecord) -> int:
    """The id of the source `src` lands in (created when no route of it is known yet)."""
    return resolve_or_create(conn, src)[0]


def resolve_or_create(conn: Connection, src: SourceRecord) -> tuple[int, bool]:
    """(source id, whether it was just created) for the route `src`."""
    sid = find_source_id(conn, src.kind, src.handle, src.channel_id)
    if sid is None:
        return conn.execute(insert(S).values(kind=src.kind, handle=src.handle, title=src.title, url=src.url,
                                             channel_id=src.channel_id, created_at=utcnow())
                            ).inserted_primary_key[0], True
    row = conn.execute(select(S.c.kind, S.c.handle, S.c.title, S.c.url, S.c.channel_id).where(S.c.id == sid)).one()
    changes: dict[str, Any] = {}
    if src.channel_id is not None and row.channel_id is None:
        changes["channel_id"] = src.channel_id
    if (row.kind, row.handle.lower()) == (src.kind, src.handle.lower()):  # the source's own route: keep it current
        if src.title and src.title != row.title:
            changes["title"] = src.title
        if src.url and src.url != row.url:
            changes["url"] = src.url
    else:  # another route: fill only what the source lacks
        if src.title and not row.title:
            changes["title"] = src.title
        if src.url and not row.url:
            changes["url"] = src.url
    if changes:
        conn.execute(update(S).where(S.c.id == sid).values(**changes))
    return sid, False


def source_by_ref(conn: Connection, ref: str) -> int:
    """A source named on the command line: its id, handle, ``@username``, alias or URL."""
    value = ref.strip()
    if value.isdigit() and conn.execute(select(S.c.id).where(S.c.id == int(value))).scalar() is not None:
        return int(value)
    handle = _username(value) if (value.startswith("@") or "t.me/" in value) else value
    for kind in ("telegram", None):
        query = select(S.c.id).where(_handle_match(S.c.handle, handle, "telegram")).order_by(S.c.id)
        sid = conn.execute(query.where(S.c.kind == kind) if kind else query).scalar()
        if sid is None:
            alias_q = select(A.c.source_id).where(_handle_match(A.c.handle, handle, "telegram")).order_by(A.c.id)
            sid = conn.execute(alias_q.where(A.c.kind == kind) if kind else alias_q).scalar()
        if sid is not None:
            return sid
    sid = conn.execute(select(S.c.id).where(func.lower(S.c.title) == value.lower())).scalars().all()
    if len(sid) == 1:
        return sid[0]
    raise DigestError(f"no source {ref!r} (see `digest sources` for ids and handles)")


def _username(value: str) -> str:
    from scrapers.fetch import FetchError, channel_url

    try:
        return channel_url(value)[1]
    except FetchError:
        raise DigestError(f"not a channel: {value!r} (expected @username or https://t.me/s/<username>)") from None


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


def _source_info(conn: Connection, sid: int) -> dict[str, Any]:
    row = conn.execute(select(S.c.id, S.c.kind, S.c.handle, S.c.title, S.c.channel_id).where(S.c.id == sid)).one()
    return dict(row._mapping)


def _post_count(conn: Connection, sid: int) -> int:
    return conn.execute(select(func.count()).select_from(P).where(P.c.source_id == sid)).scalar() or 0


def merge_sources(conn: Connection, keep: int, other: int, *, automatic: str = "") -> MergeReport:
    """Move every post of `other` into `keep` and make `other`'s keys aliases of `keep`.

    Runs on the caller's transaction (a dry run rolls it back). Posts with the same
    message id become one: `_fold` keeps the richest of the two records.
    """
    if keep == other:
        raise DigestError("KEEP and OTHER are the same source")
    report = MergeReport(keep=_source_info(conn, keep), other=_source_info(conn, other),
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
            P.c.forwarded_from, P.c.extra, P.c.fingerprint, P.c.published_at)
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


def add_alias(conn: Connection, source_ref: str, target: str) -> dict[str, Any]:
    """Tie `target` (``@username`` or a t.me URL) to a source, so its page lands there."""
    sid = source_by_ref(conn, source_ref)
    handle = _username(target)
    owner = find_source_id(conn, "telegram", handle)
    if owner == sid:
        raise DigestError(f"@{handle} already belongs to source {sid}")
    if owner is not None:
        raise DigestError(f"@{handle} is already source {owner}: merge the two with "
                          f"`digest sources merge {sid} {owner}`")
    conn.execute(insert(A).values(kind="telegram", handle=handle, source_id=sid))
    return {"source": _source_info(conn, sid), "alias": f"@{handle}"}


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
        return (not _public_username(kind, handle), sid)

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


# ---------------------------------------------------------------- cross-posts

def link_copies(conn: Connection, posts: Iterable[tuple[int, int, str | None, str | None]]) -> int:
    """Tie posts to their originals when one is a forward or repost of the other; returns links made.

    `posts` are (post id, source id, fingerprint, forwarded post ref) of the posts just
    written. Two rules: a forward that names its original (``channel/id``, from a t.me
    page) found in the catalog; or the same text (`text_fingerprint`) in another source,
    where the original is the post that is not itself a forward, else the earliest.
    """
    made = 0
    fingerprints: set[str] = set()
    for pid, sid, fp, ref in posts:
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


def list_aliases(conn: Connection) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for sid, handle in conn.execute(select(A.c.source_id, A.c.handle).order_by(A.c.id)):
        out.setdefault(sid, []).append(handle)
    return out


__all__ = ["MergeReport", "SAME_TEXT_MIN", "SAME_TEXT_SHARE", "add_alias", "adopt_route", "resolve_or_create",
           "same_text_sources", "find_source_id", "link_copies",
           "merge_same_channels", "merge_sources", "resolve_source", "same_channel_candidates",
           "source_by_ref", "text_fingerprint"]


# ---------------------------------------------------------------- what the commands call

def source_rows(engine) -> list[dict[str, Any]]:
    """`digest sources`: one row per source with its post count, dates, channel id and aliases."""
    from catalog.queries import list_sources

    with engine.connect() as conn:
        aliases = list_aliases(conn)
        ids = dict(conn.execute(select(S.c.id, S.c.channel_id)).all())
        copies = dict(conn.execute(select(P.c.source_id, func.count()).where(P.c.copy_of_id.is_not(None))
                                   .group_by(P.c.source_id)).all())
    return [r | {"channel_id": ids.get(r["id"]), "aliases": aliases.get(r["id"], []),
                 "copies": copies.get(r["id"], 0)} for r in list_sources(engine)]


def merge(engine, keep_ref: str, other_ref: str, *, dry_run: bool = False) -> MergeReport:
    """`digest sources merge`: one transaction, rolled back when `dry_run`."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            keep, other = source_by_ref(conn, keep_ref), source_by_ref(conn, other_ref)
            report = merge_sources(conn, keep, other)
            report.dry_run = dry_run
        except BaseException:
            trans.rollback()
            raise
        if dry_run:
            trans.rollback()
        else:
            trans.commit()
    return report


def alias(engine, source_ref: str, target: str) -> dict[str, Any]:
    """`digest sources alias`: one transaction."""
    with engine.begin() as conn:
        return add_alias(conn, source_ref, target)
