"""Full-text search on PostgreSQL: the same results as the SQLite/FTS5 search for the same catalog.

The index is built over the same derived text (`catalog.searchtext.document_text`: NFKC,
casefold, ё→е, Chinese segmented by jieba) that SQLite's FTS5 sees, stored in
``post_search``. A generated ``tsvector`` column splits it into the runs of letters and
digits FTS5's unicode61 tokenizer would see, with the ``simple`` configuration (no
stemming, no stop words: no language favoured), the title weighted A and the body B,
under a GIN index. Ranking is ``ts_rank`` with a title word worth ten body words, as
SQLite's ``bm25(10, 1)``, divided by 1 + log(document length) as bm25 discounts long
posts (on the sample corpus this gives SQLite's exact order for 19 of 20 queries and
the same first hit for all 20; without it, 7 and 11).

User input never becomes query syntax: `catalog.searchtext.query_terms` reduces it to
letter/digit tokens, and each term reaches PostgreSQL as a bound parameter of
``phraseto_tsquery`` (adjacent words) or ``plainto_tsquery`` (Chinese words, ANDed).
Queries of one or two characters, and Chinese phrases the segmenter split differently
from the document, fall back to substring search (``LIKE``), which the ``pg_trgm`` GIN
indexes on the title, the indexed body and the raw text serve.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, text

from catalog.searchtext import _CJK_RUN, fold

# ts_rank weights are {D, C, B, A}: the body is B, the title A, worth ten times more.
RANK_WEIGHTS = "{0, 0, 0.1, 1.0}"
RANK_NORMALIZATION = 1  # rank / (1 + log(length)): long posts are discounted, as bm25 does
_SEP, _PAIR = "\x1f", "\x1e"


def create_search_index(conn: Connection) -> None:
    """Migration step for PostgreSQL: tsvector + GIN over post_search, trigram indexes for substrings."""
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # a trusted extension since PostgreSQL 13
    conn.exec_driver_sql(
        "ALTER TABLE post_search ADD COLUMN IF NOT EXISTS doc tsvector GENERATED ALWAYS AS ("
        " setweight(to_tsvector('simple', regexp_replace(title, '[^[:alnum:]]+', ' ', 'g')), 'A') ||"
        " setweight(to_tsvector('simple', regexp_replace(body, '[^[:alnum:]]+', ' ', 'g')), 'B')) STORED")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_post_search_doc ON post_search USING gin (doc)")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_post_search_title_trgm ON post_search USING gin (title gin_trgm_ops)")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_post_search_body_trgm ON post_search USING gin (body gin_trgm_ops)")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_post_text_trgm ON post USING gin (text gin_trgm_ops)")


def _filters(filters: Any, params: dict[str, Any]) -> str:
    """`catalog.search.Filters.sql` (one definition for both engines), its ``?`` as named binds."""
    where, values = filters.sql()
    numbers = iter(range(len(values)))
    params.update({f"f{n}": value for n, value in enumerate(values)})
    return re.sub(r"\?", lambda _: f":f{next(numbers)}", where)


def _tsquery(terms: list[list[str]], params: dict[str, Any]) -> str:
    """One tsquery from the terms, every word a bound parameter (no user string is ever parsed as syntax)."""
    parts = []
    for n, tokens in enumerate(terms):
        params[f"t{n}"] = " ".join(t.replace("_", " ") for t in tokens)
        # Chinese words are not adjacent in the index (cut_for_search adds sub-words): AND them, as FTS5 does.
        fn = "plainto_tsquery" if any(_CJK_RUN.search(t) for t in tokens) else "phraseto_tsquery"
        parts.append(f"{fn}('simple', :t{n})")
    return " && ".join(parts)


def _fts_ids(conn: Connection, terms: list[list[str]], filters: Any, limit: int,
             window: tuple[int, int]) -> list[int]:
    params: dict[str, Any] = {"limit": limit}
    query = _tsquery(terms, params)
    where = _filters(filters, params)
    match = f", ({'SELECT ' + query}) AS q(q) WHERE s.doc @@ q.q"
    matches = f"FROM post_search s JOIN post p ON p.id = s.post_id{match}"
    floor = _window_floor(conn, f"FROM post_search s{match}", matches, where, params, window)
    bound = "" if floor is None else " AND s.post_id > :floor"
    sql = (f"SELECT p.id {matches}{bound}{where}"
           f" ORDER BY ts_rank('{RANK_WEIGHTS}', s.doc, q.q, {RANK_NORMALIZATION}) DESC, p.id LIMIT :limit")
    return [r[0] for r in conn.execute(text(sql), {**params, "floor": floor})]


def _window_floor(conn: Connection, alone: str, matches: str, where: str, params: dict[str, Any],
                  window: tuple[int, int]) -> int | None:
    """The post id just below the `RANK_WINDOW` newest matches, or None: rank them all; the same
    rule as SQLite's (`catalog.search._window_floor`), so both engines return the same posts for a
    frequent word, and ts_rank reads a thousand documents instead of every match.

    `alone` selects the matches from post_search only, `matches` joins post for `where`;
    `window` is (RANK_WINDOW, FILTER_SCAN), passed in by `catalog.search`, which owns them."""
    rank_window, filter_scan = window

    def newest(source: str, extra: str, offset: int, values: dict[str, Any]) -> int | None:
        sql = f"SELECT s.post_id {source}{extra} ORDER BY s.post_id DESC LIMIT 1 OFFSET :offset"
        return conn.execute(text(sql), {**values, "offset": offset}).scalar()

    # Without the join the planner walks post_search backwards by id and stops at the offset
    # (a frequent word is dense, so that is a few thousand rows), or takes the GIN index for a rare one.
    floor = newest(alone, "", rank_window, params)
    if floor is None or not where:
        return floor
    scan_floor = newest(alone, "", filter_scan, params)
    scan = "" if scan_floor is None else " AND s.post_id > :scan_floor"
    return newest(matches, f"{scan}{where}", rank_window, {**params, "scan_floor": scan_floor})


def _like_pattern(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _substring_ids(conn: Connection, needle: str, filters: Any, limit: int) -> list[int]:
    params: dict[str, Any] = {"folded": _like_pattern(fold(needle)), "raw": _like_pattern(needle), "limit": limit}
    where = _filters(filters, params)
    sql = ("SELECT p.id FROM post p JOIN post_search s ON s.post_id = p.id"
           " WHERE (s.title LIKE :folded ESCAPE '\\' OR s.body LIKE :folded ESCAPE '\\' OR p.text LIKE :raw ESCAPE '\\')"
           f"{where} ORDER BY p.published_at DESC NULLS LAST, p.id DESC LIMIT :limit")
    return [r[0] for r in conn.execute(text(sql), params)]


def ranked_ids(conn: Connection, needle: str, terms: list[list[str]], filters: Any, limit: int,
               window: tuple[int, int]) -> list[int]:
    """Post ids best first, by the same rules as the SQLite search (see `catalog.search.search`);
    `window` is (RANK_WINDOW, FILTER_SCAN)."""
    if len(needle) <= 2:
        return _substring_ids(conn, needle, filters, limit)
    if not terms:
        return []
    ranked = _fts_ids(conn, terms, filters, limit, window)
    if not ranked and _CJK_RUN.search(needle):
        ranked = _substring_ids(conn, needle, filters, limit)
    return ranked


def hit_rows(conn: Connection, ranked: list[int]) -> dict[int, tuple]:
    """The rows `catalog.search._hits` turns into hits, in one query (string_agg for SQLite's group_concat)."""
    if not ranked:
        return {}
    sql = (
        "SELECT p.id, COALESCE(NULLIF(s.title, ''), s.handle), p.url, p.published_at, p.title, p.text, p.language,"
        " (SELECT string_agg(t.name, :sep ORDER BY t.name) FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
        "   WHERE pt.post_id = p.id),"
        " (SELECT string_agg(pa.arxiv_id || :pair || COALESCE(pa.title, ''), :sep ORDER BY pa.arxiv_id)"
        "   FROM post_paper pp JOIN paper pa ON pa.id = pp.paper_id WHERE pp.post_id = p.id)"
        " FROM post p JOIN source s ON s.id = p.source_id WHERE p.id = ANY(:ids)")
    rows = conn.execute(text(sql), {"sep": _SEP, "pair": _PAIR, "ids": list(ranked)})
    return {r[0]: tuple(r) for r in rows}

