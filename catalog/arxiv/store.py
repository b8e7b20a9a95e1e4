"""Writing arXiv metadata into the catalog: paper rows, category tags, the posts that link them.

Each function takes an open connection and runs inside the caller's transaction, so a
batch is stored whole or not at all.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

from sqlalchemy import Connection

from catalog.arxiv.meta import PaperMeta, category_tag
from catalog.models import PaperStatus, utcnow
from catalog.search import reindex_posts
from catalog.sqlutil import chunked, placeholders, select_in
from catalog.tagging import retag_posts

_UPSERT = (
    "INSERT INTO paper(arxiv_id, version, title, authors, abstract, primary_category, categories, published,"
    " updated, pdf_url, doi, journal_ref, comment, status, fetched_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(arxiv_id) DO UPDATE SET version=excluded.version, title=excluded.title,"
    " authors=excluded.authors, abstract=excluded.abstract, primary_category=excluded.primary_category,"
    " categories=excluded.categories, published=excluded.published, updated=excluded.updated,"
    " pdf_url=excluded.pdf_url, doi=excluded.doi, journal_ref=excluded.journal_ref, comment=excluded.comment,"
    " status=excluded.status, fetched_at=excluded.fetched_at")

# A paper we once had metadata for keeps it when a refresh comes back empty-handed.
_MARK_MISSING = (
    "INSERT INTO paper(arxiv_id, authors, categories, status, fetched_at) VALUES (?, '[]', '[]', ?, ?)"
    " ON CONFLICT(arxiv_id) DO UPDATE SET fetched_at=excluded.fetched_at,"
    " status=CASE WHEN paper.title IS NULL THEN excluded.status ELSE paper.status END")


def _sql_time(value: datetime | None) -> str | None:
    """What sqlite3's default datetime adapter would store, without its per-value call overhead."""
    return None if value is None else value.isoformat(" ")


def store_papers(conn: Connection, found: list[PaperMeta],
                 missing: Iterable[tuple[str, PaperStatus]] = ()) -> list[int]:
    """Upsert fetched papers and mark `missing` ids ``(arxiv_id, status)``; returns the posts touched.

    Category tags are rewritten for these papers and for the posts linking them, and those
    posts' search rows are rebuilt (their text now includes the paper's title and abstract).
    """
    now = _sql_time(utcnow())
    if found:
        conn.exec_driver_sql(_UPSERT, [
            (m.arxiv_id, m.version, m.title, json.dumps(m.authors, ensure_ascii=False), m.abstract,
             m.primary_category, json.dumps(m.categories), _sql_time(m.published), _sql_time(m.updated), m.pdf_url,
             m.doi, m.journal_ref, m.comment, m.status.value, now) for m in found])
    missing = [(arxiv_id, PaperStatus(status).value, now) for arxiv_id, status in missing]
    if missing:
        conn.exec_driver_sql(_MARK_MISSING, missing)
    if not found:
        return []
    paper_ids = dict(select_in(conn, "SELECT arxiv_id, id FROM paper WHERE arxiv_id IN", [m.arxiv_id for m in found]))
    tag_of = {c: category_tag(c) for m in found for c in m.categories}
    names = sorted(set(tag_of.values()))
    if names:
        conn.exec_driver_sql("INSERT OR IGNORE INTO tag(name) VALUES (?)", [(n,) for n in names])
    tag_ids = dict(select_in(conn, "SELECT name, id FROM tag WHERE name IN", names)) if names else {}
    pids = list(paper_ids.values())
    for part in chunked(pids):
        conn.exec_driver_sql(f"DELETE FROM paper_tag WHERE origin='arxiv-category' AND paper_id IN ({placeholders(part)})",
                             tuple(part))
    rows = {(paper_ids[m.arxiv_id], tag_ids[tag_of[c]]) for m in found for c in m.categories}
    if rows:
        conn.exec_driver_sql("INSERT OR IGNORE INTO paper_tag(paper_id, tag_id, origin) VALUES (?, ?, 'arxiv-category')",
                             sorted(rows))
    posts = [r[0] for r in select_in(conn, "SELECT DISTINCT post_id FROM post_paper WHERE paper_id IN", pids)]
    if posts:
        retag_posts(conn, posts)
        reindex_posts(conn, posts)
    return posts


def pending_ids(conn: Connection, *, refresh: bool = False) -> list[str]:
    """Ids still without metadata (every id with `refresh`), sorted."""
    if refresh:
        return [r[0] for r in conn.exec_driver_sql("SELECT arxiv_id FROM paper ORDER BY arxiv_id")]
    return [r[0] for r in conn.exec_driver_sql("SELECT arxiv_id FROM paper WHERE status = ? ORDER BY arxiv_id",
                                               (PaperStatus.PENDING.value,))]


def record_ids(conn: Connection, ids: Iterable[str]) -> None:
    """Make sure each id has a paper row (new ones ``pending``); existing rows are left alone."""
    conn.exec_driver_sql("INSERT OR IGNORE INTO paper(arxiv_id, authors, categories, status) VALUES (?, '[]', '[]', ?)",
                         [(i, PaperStatus.PENDING.value) for i in ids])


def with_status(conn: Connection, ids: list[str], *, pending: bool) -> list[str]:
    """Those of `ids` that are still pending (`pending=True`) or already answered (False)."""
    op = "=" if pending else "!="
    return [r[0] for r in select_in(
        conn, f"SELECT arxiv_id FROM paper WHERE status {op} '{PaperStatus.PENDING.value}' AND arxiv_id IN", ids)]
