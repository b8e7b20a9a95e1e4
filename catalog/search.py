"""Full-text search over the catalog (FTS5 + bm25), safe for any user string.

Every user term is reduced to letters and digits and quoted before it reaches MATCH
(see `catalog.searchtext`), so `GPT-4`, `c++`, `"`, `*` or `NEAR(` can never raise.
A term matches every form of its words (their Snowball stems, `catalog.stemming`), and
a post holding the typed form ranks above one holding another form; a phrase in double
quotes matches its typed forms only.
Queries of one or two characters, and Chinese phrases the segmenter split
differently from the document, fall back to substring search.

Frequent terms are ranked over a bounded window: FTS5 computes bm25 for *every* row a
query matches before it can sort, so a word found in half the catalog (~50k rows at
100k posts) took ~0.3-1 s while counting its matches takes ~2 ms. When a query
(with its filters) matches more than `RANK_WINDOW` posts, bm25 ranks only the
`RANK_WINDOW` most recently added matches (highest post id); older matches of such a
query are not returned. With filters, the window is the `RANK_WINDOW` newest matches
that pass them, used only when that many pass among the newest `FILTER_SCAN` matches
(else all matches are ranked, as before). A query with at most `RANK_WINDOW` matches
runs exactly the statement it always did, so its results are unchanged. bm25's
statistics (idf, mean lengths) still come from the whole catalog, so scores inside
the window are the ones the unbounded ranking would give.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Connection, Engine

from catalog.errors import UsageError
from catalog.models import as_utc
from catalog.searchtext import _CJK_RUN, document_text, fold, match_expression, parse_query
from catalog.stemming import stem_text
from catalog.sqlutil import chunked, placeholders, select_in
from scrapers.normalize import normalize_hashtag

# bm25 with a word in the title counting as much as ten in the body: configured as
# the FTS5 table's rank function by a migration (catalog.db), so "ORDER BY rank" uses it.
SNIPPET_CHARS = 160
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# How many matches a frequent query ranks (see the module docstring). bm25 over 1,000
# rows costs a few ms; finding the window's lower bound (stepping 1,000 rowids newest
# first, no bm25) well under one.
RANK_WINDOW = 1000
FILTER_SCAN = 8 * RANK_WINDOW


@dataclass
class Filters:
    tag: str | None = None
    source: str | None = None
    lang: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    has_reproduction: bool | None = None
    include_copies: bool = False  # forwards/reposts of a post in another source (catalog.source_copies)

    def sql(self, *, copies: bool = True) -> tuple[str, list[Any]]:
        """WHERE fragments over alias ``p`` (post) and their ``?`` parameters, for both engines."""
        where, params = [], []
        if self.tag:
            where.append("EXISTS (SELECT 1 FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
                         " WHERE pt.post_id = p.id AND t.name = ?)")
            params.append(normalize_hashtag(self.tag))
        if self.source:
            # lower() on both engines (on SQLite it folds ASCII letters only, as COLLATE NOCASE did)
            where.append("p.source_id IN (SELECT id FROM source WHERE lower(handle) = lower(?)"
                         " OR lower(title) = lower(?) OR CAST(id AS TEXT) = ?"
                         " UNION SELECT source_id FROM source_alias WHERE lower(handle) = lower(?))")
            params += [self.source.lstrip("@")] * 4
        if self.lang:
            where.append("p.language = ?")
            params.append(self.lang.lower())
        if self.since:
            where.append("p.published_at >= ?")
            params.append(self.since.replace(tzinfo=None))
        if self.until:
            where.append("p.published_at <= ?")
            params.append(self.until.replace(tzinfo=None))
        if self.has_reproduction is not None:
            where.append(("" if self.has_reproduction else "NOT ") +
                         "EXISTS (SELECT 1 FROM post_paper pp JOIN reproduction r ON r.paper_id = pp.paper_id"
                         " WHERE pp.post_id = p.id)")
        if copies and not self.include_copies:
            where.append("p.copy_of_id IS NULL")
        return "".join(f" AND {w}" for w in where), params


@dataclass
class Hit:
    id: int
    source: str
    url: str
    published_at: datetime | None
    title: str
    snippet: str
    language: str | None
    rank: int  # 1 = best match (bm25, title weighted); substring matches: newest first
    tags: list[str] = field(default_factory=list)
    arxiv_ids: list[str] = field(default_factory=list)
    paper_titles: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["published_at"] = self.published_at.isoformat() if self.published_at else None
        return d


def parse_date(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """``2020-04-27`` or an ISO datetime; a bare date as `until` means the end of that day."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"bad date {value!r}: use YYYY-MM-DD or an ISO datetime") from None
    if end_of_day and len(value) <= 10:
        dt = dt.replace(hour=23, minute=59, second=59)
    return as_utc(dt)


def _like_pattern(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def _fts_ids(conn: Connection, match: str, filters: Filters, limit: int) -> list[int]:
    where, params = filters.sql(copies=False)
    if not where:  # the common case: let FTS5 rank and cut without touching the post table
        # Selecting `rank` too would make FTS5 compute bm25 a second time per row. Copies
        # (forwards of a listed post) are left out by rowid, without a join: on 20k posts
        # this measured p50 1.4 ms against 2.1 ms for over-fetching and dropping them.
        copies = ("" if filters.include_copies else
                  " AND rowid NOT IN (SELECT id FROM post WHERE copy_of_id IS NOT NULL)")
        floor = _window_floor(conn, match, copies)
        # With a floor, FTS5 takes "rowid > ?" with MATCH and computes bm25 only inside the window.
        bound, bound_params = ("", []) if floor is None else (" AND rowid > ?", [floor])
        sql = f"SELECT rowid FROM post_fts WHERE post_fts MATCH ?{bound}{copies} ORDER BY rank LIMIT ?"
        return [r[0] for r in conn.exec_driver_sql(sql, (match, *bound_params, limit))]
    where, params = filters.sql()
    floor = _window_floor(conn, match, "", where, params)
    bound, bound_params = ("", []) if floor is None else (" AND post_fts.rowid > ?", [floor])
    sql = (f"SELECT p.id FROM post_fts JOIN post p ON p.id = post_fts.rowid"
           f" WHERE post_fts MATCH ?{bound}{where} ORDER BY post_fts.rank LIMIT ?")
    return [r[0] for r in conn.exec_driver_sql(sql, (match, *bound_params, *params, limit))]


def _window_floor(conn: Connection, match: str, fts_where: str, where: str = "",
                  params: list[Any] | None = None) -> int | None:
    """The post id just below the `RANK_WINDOW` newest matches, or None: rank them all.

    `fts_where` is a condition on `rowid` alone; `where` one over the joined post ``p``.
    FTS5 walks a doclist in rowid order without scoring, so each probe costs a step per
    row it passes, not a bm25. With `where`, only the newest `FILTER_SCAN` matches are
    checked: a filter that keeps too few of them gets the full ranking as before,
    rather than a probe as slow as that ranking.
    """
    newest = f"SELECT rowid FROM post_fts WHERE post_fts MATCH ?{fts_where} ORDER BY rowid DESC LIMIT 1 OFFSET ?"
    floor = conn.exec_driver_sql(newest, (match, RANK_WINDOW)).scalar()
    if floor is None or not where:
        return floor
    scan_floor = conn.exec_driver_sql(newest, (match, FILTER_SCAN)).scalar()
    scan, scan_params = ("", []) if scan_floor is None else (" AND post_fts.rowid > ?", [scan_floor])
    sql = (f"SELECT p.id FROM post_fts JOIN post p ON p.id = post_fts.rowid WHERE post_fts MATCH ?{scan}{where}"
           " ORDER BY post_fts.rowid DESC LIMIT 1 OFFSET ?")
    return conn.exec_driver_sql(sql, (match, *scan_params, *(params or []), RANK_WINDOW)).scalar()


def _substring_ids(conn: Connection, needle: str, filters: Filters, limit: int) -> list[int]:
    where, params = filters.sql()
    folded = fold(needle)
    sql = ("SELECT p.id FROM post p JOIN post_search s ON s.post_id = p.id"
           " WHERE (s.title LIKE ? ESCAPE '\\' OR s.body LIKE ? ESCAPE '\\' OR p.text LIKE ? ESCAPE '\\')"
           f"{where} ORDER BY p.published_at DESC LIMIT ?")
    pats = (_like_pattern(folded), _like_pattern(folded), _like_pattern(needle))
    return [r[0] for r in conn.exec_driver_sql(sql, (*pats, *params, limit))]


def snippet(text: str, needles: Iterable[str], width: int = SNIPPET_CHARS) -> str:
    """A window of the original text around the first needle found, on one line."""
    flat = " ".join(text.split())
    low = fold(flat)
    positions = [low.find(fold(n)) for n in needles if n]
    positions = [p for p in positions if p >= 0]
    start = max(0, min(positions) - width // 3) if positions else 0
    piece = flat[start:start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(flat) else "")


def search(engine: Engine, query: str, *, filters: Filters | None = None, limit: int = 20) -> list[Hit]:
    """Posts matching `query`, best first (bm25, title weighted)."""
    filters = filters or Filters()
    if limit < 1:
        raise UsageError("--limit must be at least 1")
    if not query.split():
        raise UsageError("empty query: give a word to search for")
    # Control characters never occur in stored text; a NUL would even cut a LIKE pattern short.
    needle = " ".join(_CONTROL.sub(" ", query).split())
    if not needle:
        return []
    terms = parse_query(needle)
    tokens = [t for term in terms for t in term.tokens]
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # its own index and SQL, the same rules: catalog.search_pg
            from catalog import search_pg

            # The window is passed, not imported by search_pg: no cycle, and one owner of the numbers.
            ranked = search_pg.ranked_ids(conn, needle, terms, filters, limit, (RANK_WINDOW, FILTER_SCAN))
        elif len(needle) <= 2:
            ranked = _substring_ids(conn, needle, filters, limit)
        elif not terms:
            return []  # nothing searchable left (only punctuation): no hits, no error
        else:
            ranked = _fts_ids(conn, match_expression(terms), filters, limit)
            if not ranked and _CJK_RUN.search(needle):
                ranked = _substring_ids(conn, needle, filters, limit)
            if not ranked and not _each_term_indexed(conn, terms) and _every_token_stored(conn, tokens):
                _check_index(conn)
        return _hits(conn, ranked, tokens or [needle])


def _each_term_indexed(conn: Connection, terms: list) -> bool:
    """Whether the index finds every term on its own: then no hits is the truth (the terms are
    never together, or the filters exclude them) and no scan or check is needed. Each probe
    is one FTS5 lookup with LIMIT 1, so a multi-word query costs milliseconds, not a scan."""
    probe = "SELECT 1 FROM post_fts WHERE post_fts MATCH ? LIMIT 1"
    return len(terms) > 1 and all(conn.exec_driver_sql(probe, (match_expression([t]),)).first() is not None
                                  for t in terms)


def _every_token_stored(conn: Connection, tokens: list[str]) -> bool:
    """Whether each token occurs somewhere in the stored search text (a plain scan, not the index).

    All tokens are ANDed, so when one occurs nowhere, no hits is the truth and the
    index need not be checked; a scan for the longest (rarest) token first settles
    most such queries in one pass over ``post_search``.
    """
    # instr(): a byte comparison, several times faster than LIKE's per-character folding
    # (the stored text and the tokens are folded already).
    sql = "SELECT 1 FROM post_search WHERE instr(body, ?) > 0 OR instr(title, ?) > 0 LIMIT 1"
    for token in sorted(set(tokens), key=len, reverse=True):
        if conn.exec_driver_sql(sql, (token, token)).first() is None:
            return False
    return True


def _check_index(conn: Connection) -> None:
    """No hits for words that are stored: make sure the full-text index is whole, so corruption
    is never an empty result.

    A damaged FTS5 segment reads as "no such term" without an error; its own integrity
    check (tenths of a second on tens of thousands of posts; run only when a scan found
    every word stored but the index found no post) tells the two apart. It needs the write
    lock for a moment: while a writer holds it, or on a read-only file, the check is
    skipped rather than waited for.
    """
    from sqlalchemy.exc import DBAPIError

    from catalog.dburl import busy_timeout_ms
    from catalog.dbfaults import CORRUPT, db_fault, fault_kind, target_of

    conn.exec_driver_sql("PRAGMA busy_timeout=200")
    try:
        conn.exec_driver_sql("INSERT INTO post_fts(post_fts, rank) VALUES ('integrity-check', 0)")
    except DBAPIError as exc:
        if fault_kind(exc) == CORRUPT:
            raise db_fault(exc, target_of(conn.engine), doing="in its full-text index") from exc
    finally:
        conn.rollback()
        conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_timeout_ms()}")


_SEP, _PAIR = "\x1f", "\x1e"  # separators that never occur in tags or arXiv ids


def _hits(conn: Connection, ranked: list[int], needles: list[str]) -> list[Hit]:
    """Hydrate ranked ids in ONE query (post, source, tags and papers via group_concat)."""
    if not ranked:
        return []
    ids = tuple(ranked)
    if conn.dialect.name == "postgresql":
        from catalog import search_pg

        rows = search_pg.hit_rows(conn, ranked)
    else:
        rows = {r[0]: r for r in conn.exec_driver_sql(
            "SELECT p.id, COALESCE(NULLIF(s.title, ''), s.handle), p.url, p.published_at, p.title, p.text, p.language,"
            f" (SELECT group_concat(t.name, '{_SEP}') FROM (SELECT t.name FROM post_tag pt JOIN tag t"
            "   ON t.id = pt.tag_id WHERE pt.post_id = p.id ORDER BY t.name) t),"
            f" (SELECT group_concat(x, '{_SEP}') FROM (SELECT pa.arxiv_id || '{_PAIR}' || COALESCE(pa.title, '') AS x"
            "   FROM post_paper pp JOIN paper pa ON pa.id = pp.paper_id WHERE pp.post_id = p.id ORDER BY pa.arxiv_id))"
            f" FROM post p JOIN source s ON s.id = p.source_id WHERE p.id IN ({placeholders(ids)})", ids)}
    hits = []
    for position, pid in enumerate(ranked, 1):
        _, source, url, published, title, text, lang, tags, papers = rows[pid]
        published = datetime.fromisoformat(published) if isinstance(published, str) else published
        linked = dict(p.split(_PAIR, 1) for p in papers.split(_SEP)) if papers else {}
        hits.append(Hit(pid, source, url, as_utc(published), title, snippet(text, needles), lang, position,
                        tags.split(_SEP) if tags else [], list(linked), {k: v for k, v in linked.items() if v}))
    return hits


def linked_paper_texts(conn: Connection, post_ids: list[int]) -> dict[int, str]:
    """Title and abstract of the papers with metadata that each post links (for its search text)."""
    texts: dict[int, list[str]] = {}
    for pid, title, abstract in select_in(
            conn, "SELECT pp.post_id, pa.title, pa.abstract FROM post_paper pp JOIN paper pa ON pa.id = pp.paper_id"
                  " WHERE pa.title IS NOT NULL AND pp.post_id IN", post_ids):
        texts.setdefault(pid, []).append(f"{title}\n{abstract or ''}")
    return {k: "\n".join(v) for k, v in texts.items()}


SEARCH_COLUMNS = "title, body, title_stem, body_stem"


def search_row(post_id: int, title: str, text: str, paper_text: str | None) -> tuple[str, str, str, str, int]:
    """(title, body, title_stem, body_stem, post_id) as stored in ``post_search`` (`SEARCH_COLUMNS`, id last)."""
    body = document_text(text + ("\n" + paper_text if paper_text else ""))
    title = document_text(title)
    return title, body, stem_text(title), stem_text(body), post_id


def reindex_posts(conn: Connection, post_ids: Iterable[int]) -> int:
    """Rebuild the search text of `post_ids` (after their papers gained metadata)."""
    ids = list(dict.fromkeys(post_ids))
    done = 0
    for part in chunked(ids):
        extra = linked_paper_texts(conn, part)
        rows = [search_row(pid, title, text, extra.get(pid)) for pid, title, text in
                select_in(conn, "SELECT id, title, text FROM post WHERE id IN", part)]
        if rows:
            conn.exec_driver_sql(
                "UPDATE post_search SET title=?, body=?, title_stem=?, body_stem=? WHERE post_id=?", rows)
        done += len(rows)
    return done
