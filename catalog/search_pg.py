"""Full-text search on PostgreSQL: the same results as the SQLite/FTS5 search for the same catalog.

The index is built over the same derived text (`catalog.searchtext.document_text`: NFKC,
casefold, ё→е, Chinese segmented by jieba) and the same Snowball stems of it
(`catalog.stemming`) that SQLite's FTS5 sees, stored in ``post_search``. Generated
``tsvector`` columns split them into the runs of letters and digits FTS5's unicode61
tokenizer would see, with the ``simple`` configuration (no stemming or stop words of
PostgreSQL's own: the stems are ours, the same on both engines), the title weighted A and
the body B, under GIN indexes: ``doc`` (the typed forms) and ``stem_doc`` (the stems).
A term matches ``stem_doc``; a quoted one ``doc``. Ranking is ``ts_rank`` of the stems
plus ``ts_rank`` of the typed forms (as SQLite's bm25 counts the exact columns on top
of the stem ones), a title word worth ten body words, divided by 1 + log(document
length) as bm25 discounts long posts.

A phrase (``self-attention``) must have its words adjacent, which a GIN index cannot
check: it has no positions, so every post holding all the words had its tsvector read
back. ``stem_pairs`` holds each pair of adjacent stems as one lexeme, so a phrase is
first narrowed by its pairs in the index (see `create_stem_index`).

User input never becomes query syntax: `catalog.searchtext.parse_query` reduces it to
letter/digit tokens, and each term reaches PostgreSQL as a bound parameter of
``phraseto_tsquery`` (adjacent words), ``plainto_tsquery`` (Chinese words, ANDed) or
``to_tsquery`` over words of letters and digits only (a phrase held within the title or
within the body). Queries of one or two characters, and Chinese phrases the segmenter
split differently from the document, fall back to substring search (``LIKE``), which
the ``pg_trgm`` GIN indexes on the title, the indexed body and the raw text serve.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, text

from catalog.searchtext import _CJK_RUN, Term, fold
from catalog.stemming import tokens as stem_tokens

# ts_rank weights are {D, C, B, A}: the body is B, the title A, worth ten times more.
RANK_WEIGHTS = "{0, 0, 0.1, 1.0}"
RANK_NORMALIZATION = 1  # rank / (1 + log(length)): long posts are discounted, as bm25 does
# The typed form's share of the rank on top of the stems' (catalog.stem_index.RANK gives
# SQLite's exact columns the stem columns' weights: the typed form counts twice).
EXACT_SHARE = 1.0
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


def create_stem_index(conn: Connection) -> None:
    """Migration step (`catalog.stem_index`): a tsvector of the stems, title A and body B, under a GIN index.

    The stem text is already single-spaced runs of letters and digits, so unlike ``doc``
    it needs no regexp_replace."""
    # Keep the vectors a search reads inline and uncompressed: a row with the texts and three
    # vectors is ~4 kB, over the 2 kB at which PostgreSQL compresses its largest values (the
    # vectors), and decompressing a thousand of them per ranked query tripled its time. The
    # texts (read only by the substring fallback's recheck) move out of line instead.
    conn.exec_driver_sql("ALTER TABLE post_search SET (toast_tuple_target = 4080)")
    for column in ("title", "body", "title_stem", "body_stem"):
        conn.exec_driver_sql(f"ALTER TABLE post_search ALTER COLUMN {column} SET STORAGE EXTERNAL")
    conn.exec_driver_sql("ALTER TABLE post_search ALTER COLUMN doc SET STORAGE MAIN")
    conn.exec_driver_sql(
        "ALTER TABLE post_search ADD COLUMN IF NOT EXISTS stem_doc tsvector GENERATED ALWAYS AS ("
        " setweight(to_tsvector('simple', title_stem), 'A') ||"
        " setweight(to_tsvector('simple', body_stem), 'B')) STORED")
    conn.exec_driver_sql("ALTER TABLE post_search ALTER COLUMN stem_doc SET STORAGE MAIN")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_post_search_stem_doc ON post_search USING gin (stem_doc)")
    # Adjacent stems as one lexeme each ("attent_head"; stems never hold "_"), without positions:
    # a GIN index has no positions, so a phrase of two frequent words had every post holding both
    # read back to check adjacency (p95 122 ms at 100k posts); the pairs narrow that to the posts
    # that really hold them side by side, and the phrase check reads only those.
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION digest_stem_pairs(words text) RETURNS tsvector"
        " LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$"
        " SELECT COALESCE(array_to_tsvector(array_agg(a || '_' || b)), ''::tsvector)"
        " FROM (SELECT string_to_array(words, ' ') AS w) s,"  # each word beside the next: two slices zipped
        "      unnest(s.w[1:cardinality(s.w) - 1], s.w[2:]) AS t(a, b) $$")
    conn.exec_driver_sql(
        "ALTER TABLE post_search ADD COLUMN IF NOT EXISTS stem_pairs tsvector GENERATED ALWAYS AS ("
        " digest_stem_pairs(title_stem) || digest_stem_pairs(body_stem)) STORED")
    conn.exec_driver_sql("ALTER TABLE post_search ALTER COLUMN stem_pairs SET STORAGE MAIN")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_post_search_stem_pairs ON post_search USING gin (stem_pairs)")


def _filters(filters: Any, params: dict[str, Any]) -> str:
    """`catalog.search.Filters.sql` (one definition for both engines), its ``?`` as named binds."""
    where, values = filters.sql()
    numbers = iter(range(len(values)))
    params.update({f"f{n}": value for n, value in enumerate(values)})
    return re.sub(r"\?", lambda _: f":f{next(numbers)}", where)


def _phrase(tokens: tuple[str, ...], chinese: bool, name: str, params: dict[str, Any]) -> str:
    """A tsquery of `tokens` as a bound parameter (no user string is ever parsed as syntax)."""
    words = [w for t in tokens for w in stem_tokens(t)]  # letters and digits only: no tsquery syntax left
    if chinese or len(words) == 1:
        params[name] = " ".join(words)
        # Chinese words are not adjacent in the index (cut_for_search adds sub-words): AND them, as FTS5 does.
        return f"{'plainto_tsquery' if chinese else 'phraseto_tsquery'}('simple', :{name})"
    # The body's positions follow the title's in one tsvector: a phrase must not run from the
    # end of the title into the body (FTS5 matches a phrase within one column), so all its
    # words carry one weight.
    params[name] = " | ".join("(" + " <-> ".join(f"{w}:{weight}" for w in words) + ")" for weight in "AB")
    return f"to_tsquery('simple', :{name})"


def _tsqueries(terms: list[Term], params: dict[str, Any]) -> tuple[str, str, str, str]:
    """(stems to match, exact forms to match, typed forms to rank, stem pairs to narrow by), as SQL.

    The same rules as FTS5 (`catalog.searchtext.match_expression`): a term matches its
    stems, an exact (quoted) term its typed forms; the typed forms of every term add to
    the rank. A phrase of stems must also hold its adjacent pairs (``stem_pairs``): the
    same posts, found in the index instead of by reading each candidate's tsvector. An
    empty part is NULL (and drops out of the match and the rank).
    """
    stems, exact, typed, pairs = [], [], [], []
    for n, term in enumerate(terms):
        typed.append(_phrase(term.tokens, term.chinese, f"t{n}", params))
        if term.exact:
            exact.append(typed[-1])
            continue
        stems.append(_phrase(term.stems, term.chinese, f"s{n}", params))
        words = [w for s in term.stems for w in stem_tokens(s)]
        if not term.chinese and len(words) > 1:
            # letters and digits joined by "_": quoted lexemes, no tsquery syntax possible
            pairs += [f"'{a}_{b}'" for a, b in zip(words, words[1:])]
    if pairs:
        params["pairs"] = " & ".join(dict.fromkeys(pairs))
    return (" && ".join(stems) or "NULL::tsquery", " && ".join(exact) or "NULL::tsquery",
            " || ".join(typed), "CAST(:pairs AS tsquery)" if pairs else "NULL::tsquery")


def _fts_ids(conn: Connection, terms: list[Term], filters: Any, limit: int,
             window: tuple[int, int]) -> list[int]:
    params: dict[str, Any] = {"limit": limit}
    stems, exact, typed, pairs = _tsqueries(terms, params)
    # With the pairs in the index, the phrase is checked on the rows they select (ts_match_vq is
    # @@ as a plain function: no index scan). ANDing in the stems' own GIN scan cost more than the
    # rows it removed: both words of a frequent phrase are in a third of the posts each (30 ms
    # to intersect at 100k posts, where the pairs alone take 1 ms).
    stem_match = "ts_match_vq(s.stem_doc, q.qs)" if not pairs.startswith("NULL") else "s.stem_doc @@ q.qs"
    conditions = [c for c, q in (("s.stem_pairs @@ q.qp", pairs), (stem_match, stems),
                                 ("s.doc @@ q.qe", exact)) if not q.startswith("NULL")]
    tsq = f"(SELECT {stems}, {exact}, {typed}, {pairs}) AS q(qs, qe, qt, qp)"
    match = f", {tsq} WHERE {' AND '.join(conditions)}"
    # ts_rank is zero for an empty query: COALESCE keeps an all-exact query's rank.
    rank = (f"COALESCE(ts_rank('{RANK_WEIGHTS}', s.stem_doc, q.qs, {RANK_NORMALIZATION}), 0)"
            f" + {EXACT_SHARE} * ts_rank('{RANK_WEIGHTS}', s.doc, q.qt, {RANK_NORMALIZATION})")
    if not filters.sql(copies=False)[0]:
        return _newest_ranked(conn, match, rank, filters.include_copies, params, limit, window[0])
    where = _filters(filters, params)
    matches = f"FROM post_search s JOIN post p ON p.id = s.post_id{match}"
    floor = _window_floor(conn, f"FROM post_search s{match}", matches, where, params, window)
    bound = "" if floor is None else " AND s.post_id > :floor"
    sql = f"SELECT p.id {matches}{bound}{where} ORDER BY {rank} DESC, p.id LIMIT :limit"
    return [r[0] for r in conn.execute(text(sql), {**params, "floor": floor})]


def _newest_ranked(conn: Connection, match: str, rank: str, include_copies: bool, params: dict[str, Any],
                   limit: int, rank_window: int) -> list[int]:
    """Without filters: the `rank_window` newest matches, ranked; `limit` ids, best first.

    The same posts as SQLite's window (`catalog.search._fts_ids`: the newest matches that
    are not copies, all of them when there are fewer) in the same order as the ranked
    statement of the filtered path (rank, then id), found without reading every match: a GIN
    index has no order, so "the newest thousand" meant fetching each matching row (a word in
    a tenth of 100k posts: 10k rows) only to sort them by id, and then a second statement
    read the window again to rank it. Here the matches are fetched newest first in spans of
    ids (`_spans`), each row ranked as it is read."""
    copies = "" if include_copies else " AND s.post_id NOT IN (SELECT id FROM post WHERE copy_of_id IS NOT NULL)"
    scored: list[tuple[int, float]] = []
    for upper, lower in _spans(conn, match, params, rank_window, lambda: len(scored)):
        bound = "" if lower is None else " AND s.post_id > :lower"
        sql = (f"SELECT s.post_id, {rank} FROM post_search s{match}{copies} AND s.post_id <= :upper{bound}"
               " ORDER BY s.post_id DESC LIMIT :need")
        scored += conn.execute(text(sql), {**params, "upper": upper, "lower": lower,
                                           "need": rank_window - len(scored)}).all()
    return [pid for pid, _ in sorted(scored, key=lambda r: (-r[1], r[0]))[:limit]]


def _spans(conn: Connection, match: str, params: dict[str, Any], rank_window: int, found):
    """(upper, lower) id bounds to fetch matches in, newest first, until `found()` reaches the
    window; lower None: everything below `upper`.

    The planner's own estimate of the matches sizes the first span (a word in a third of the
    posts: ~4,500 ids for a window of 1,000); the density seen so far sizes the next, with a
    margin. Each span is one statement that the planner serves by the primary key range ANDed
    with the GIN bitmap, so a row is read only when it matches and lies in the span. When the
    planner expects few matches, or a span would reach the oldest post, the rest is fetched
    at once: what a rare word costs anyway (its GIN bitmap is small), and never more than the
    unbounded fetch when the estimate is off (Chinese words that occur together, say)."""
    top = conn.execute(text("SELECT max(post_id) FROM post_search")).scalar()
    if top is None:
        return
    plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM post_search s{match}"), params).scalar()
    expected = plan[0]["Plan"]["Plan Rows"]
    upper, lower = top, top
    density = expected / top
    while True:
        margin = 1.5 * (rank_window - found()) / max(density, 1e-9)
        if expected < 2 * rank_window or lower - margin <= 0:
            yield lower, None  # everything below the spans fetched so far
            return
        upper, lower = lower, int(lower - margin)
        yield upper, lower
        if found() >= rank_window:
            return
        density = max(found(), 1) / (top - lower)


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
    if floor is None:  # (`where` is never empty here: unfiltered searches take _newest_ranked)
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


def ranked_ids(conn: Connection, needle: str, terms: list[Term], filters: Any, limit: int,
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

