"""Which source a route's key belongs to: one source per channel, whatever route its posts came by.

A Telegram channel reaches the catalog by three routes with three keys: a JSON export
(``channel<id>``), an HTML export (``export:<chat name>``) and its public page (the
username). Each key a source has answered to is kept in ``source_alias``, so a later
input by any route lands in the same source (`resolve_source`); `digest sources alias
SOURCE @username` (`add_alias`) ties one by hand. What "the same text" means across
routes is `text_fingerprint`.

All SQL here is SQLAlchemy Core, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from catalog.errors import DigestError
from catalog.models import Source, SourceAlias, utcnow
from scrapers.records import SourceRecord

FINGERPRINT_MIN_CHARS = 24  # shorter texts ("👍", "Link") say nothing about identity

S, A = Source.__table__, SourceAlias.__table__
_NOT_WORD = re.compile(r"\W+")
CHANNEL_ID_HANDLE = re.compile(r"^channel(\d+)$")  # a JSON export's key: the channel id
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


# ---------------------------------------------------------------- finding a source

def public_username(kind: str, handle: str) -> bool:
    return kind == "telegram" and bool(_USERNAME.match(handle)) and not CHANNEL_ID_HANDLE.match(handle)


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


# ---------------------------------------------------------------- aliases

def source_info(conn: Connection, sid: int) -> dict[str, Any]:
    row = conn.execute(select(S.c.id, S.c.kind, S.c.handle, S.c.title, S.c.channel_id).where(S.c.id == sid)).one()
    return dict(row._mapping)


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
    return {"source": source_info(conn, sid), "alias": f"@{handle}"}


def list_aliases(conn: Connection) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for sid, handle in conn.execute(select(A.c.source_id, A.c.handle).order_by(A.c.id)):
        out.setdefault(sid, []).append(handle)
    return out
