"""catalog.search's bounded ranking of frequent terms (issue 20: search tail latency).

A small RANK_WINDOW stands in for the real one, so a 60-post catalog has "frequent"
terms. Expected results are computed independently, straight from FTS5's bm25.

The tests that compare with FTS5's own bm25 run on SQLite; PostgreSQL applies the same
window (catalog.search_pg) and ranks it with ts_rank, so there the test is that both
engines return the same posts for a frequent word, with and without a filter.
"""

from __future__ import annotations

import random

import pytest

import catalog.search as search_module
from catalog.db import open_db
from catalog.ingest import ingest_file
from catalog.search import Filters, search
from catalog.searchtext import match_expression, parse_query
from catalog.stem_index import RANK
from support.helpers import message, telegram_export, write_json

WINDOW = 5
POSTS = 60


@pytest.fixture
def synthetic_engine(db_path, tmp_path):
    """The synthetic catalog on SQLite: these tests compare with FTS5's own bm25."""
    engine = open_db(db_path)
    build_synthetic(engine, tmp_path)
    yield engine
    engine.dispose()


def build_synthetic(engine, tmp_path) -> None:
    """60 posts: "model" in all, "dropout" in every third, "rarity" in three; #even on even ids."""
    rng = random.Random(20)
    filler = ["attention", "layer", "batch", "norm", "gradient", "loss", "token", "head"]
    messages = []
    for i in range(1, POSTS + 1):
        title = " ".join(rng.choices(filler, k=rng.randint(1, 4)) + (["model"] if i % 4 == 0 else []))
        words = rng.choices(filler, k=rng.randint(3, 40)) + ["model"] * rng.randint(1, 4)
        if i % 3 == 0:
            words += ["dropout"] * rng.randint(1, 3)
        if i in (7, 31, 52):
            words.append("rarity")
        rng.shuffle(words)
        tag = " #even" if i % 2 == 0 else ""
        messages.append(message(i, f"{title}\n{' '.join(words)}{tag}", date=f"2020-04-{1 + i % 28:02d}T10:00:00"))
    ingest_file(engine, write_json(tmp_path / "synthetic.json", telegram_export(messages)))


def scored_matches(engine, query: str) -> list[tuple[int, float]]:
    """(post id, bm25 as the catalog ranks it) of every match, newest (highest id) first."""
    with engine.connect() as c:
        return c.exec_driver_sql(
            f"SELECT rowid, {RANK.replace('bm25(', 'bm25(post_fts, ')} FROM post_fts WHERE post_fts MATCH ?"
            " ORDER BY rowid DESC",
            (match_expression(parse_query(query)),)).fetchall()


def unbounded(engine, query: str, **kw) -> list[dict]:
    """What search() returned before the window existed: every match ranked."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_module, "RANK_WINDOW", 10**9)
        return [h.as_dict() for h in search(engine, query, **kw)]


@pytest.fixture
def small_window(monkeypatch):
    monkeypatch.setattr(search_module, "RANK_WINDOW", WINDOW)
    monkeypatch.setattr(search_module, "FILTER_SCAN", 4 * WINDOW)


@pytest.mark.parametrize("query", ["rarity", "rarity model", "nosuchword"])
def test_queries_within_the_window_are_unchanged(synthetic_engine, small_window, query):
    assert len(scored_matches(synthetic_engine, query)) <= WINDOW
    hits = [h.as_dict() for h in search(synthetic_engine, query)]
    assert hits == unbounded(synthetic_engine, query)
    # ... and equal to the plain FTS5 statement every search ran before (ids and order).
    with synthetic_engine.connect() as c:
        plain = [r[0] for r in c.exec_driver_sql(
            "SELECT rowid FROM post_fts WHERE post_fts MATCH ? ORDER BY rank LIMIT 20",
            (match_expression(parse_query(query)),))]
    assert [h["id"] for h in hits] == plain


@pytest.mark.parametrize("query", ["drophead", "голова", "NVAE", "arxiv", "注意力", "self-attention", "BN"])
def test_sample_corpus_results_are_unchanged(sample_engine, query):
    # The sample catalog is far below the real window: every query ranks all its matches.
    assert [h.as_dict() for h in search(sample_engine, query)] == unbounded(sample_engine, query)
    f = Filters(lang="en")
    assert [h.as_dict() for h in search(sample_engine, query, filters=f)] == unbounded(sample_engine, query, filters=f)


@pytest.mark.parametrize("query", ["model", "dropout", "model dropout"])
def test_frequent_query_ranks_its_newest_matches_by_bm25(synthetic_engine, small_window, query):
    matches = scored_matches(synthetic_engine, query)
    assert len(matches) > WINDOW
    window = sorted(matches[:WINDOW], key=lambda m: m[1])  # bm25: lower is better
    assert [h.id for h in search(synthetic_engine, query)] == [pid for pid, _ in window]
    assert [h.id for h in search(synthetic_engine, query, limit=2)] == [pid for pid, _ in window][:2]
    # The window really changes something here: the unbounded best lies outside it.
    assert unbounded(synthetic_engine, query)[0]["id"] not in {pid for pid, _ in matches[:WINDOW]}


def test_filtered_frequent_query_ranks_the_newest_matches_that_pass(synthetic_engine, small_window):
    hits = search(synthetic_engine, "model", filters=Filters(tag="even"))
    newest_even = [m for m in scored_matches(synthetic_engine, "model") if m[0] % 2 == 0][:WINDOW]
    assert [h.id for h in hits] == [pid for pid, _ in sorted(newest_even, key=lambda m: m[1])]
    assert all("even" in h.tags for h in hits)


def test_filter_that_keeps_few_of_the_newest_matches_ranks_them_all(synthetic_engine, small_window):
    # Published on the 1st or 2nd: ids 1, 28, 29, 56, 57; only two among the newest FILTER_SCAN.
    f = Filters(since=search_module.parse_date("2020-04-01"), until=search_module.parse_date("2020-04-02",
                                                                                             end_of_day=True))
    hits = [h.as_dict() for h in search(synthetic_engine, "model", filters=f)]
    assert sorted(h["id"] for h in hits) == [1, 28, 29, 56, 57]
    assert hits == unbounded(synthetic_engine, "model", filters=f)
    scores = dict(scored_matches(synthetic_engine, "model"))
    assert [h["id"] for h in hits] == sorted((h["id"] for h in hits), key=scores.get)


@pytest.mark.parametrize("query, filters", [("model", None), ("model dropout", None), ("model", Filters(tag="even")),
                                            ("rarity", None)])
def test_postgresql_ranks_the_same_window(synthetic_engine, small_window, pg_url, tmp_path, query, filters):
    pg = open_db(pg_url)
    try:
        build_synthetic(pg, tmp_path)
        lite_ids = {h.id for h in search(synthetic_engine, query, filters=filters)}
        pg_ids = {h.id for h in search(pg, query, filters=filters)}
    finally:
        pg.dispose()
    assert pg_ids == lite_ids
    newest = [pid for pid, _ in scored_matches(synthetic_engine, query) if filters is None or pid % 2 == 0]
    assert lite_ids == set(newest[:WINDOW])


def _oracle_window(pg, query: str, window: int, limit: int, include_copies: bool = False) -> list[int]:
    """What catalog.search_pg must return without filters, by the plainest SQL: every match with
    its rank, the `window` newest (that are not copies), best rank first, then id."""
    from sqlalchemy import text

    from catalog.search_pg import _tsqueries, EXACT_SHARE, RANK_NORMALIZATION, RANK_WEIGHTS

    params: dict = {}
    stems, exact, typed, pairs = _tsqueries(parse_query(query), params)
    match = " AND ".join(c for c, q in (("s.stem_pairs @@ q.qp", pairs), ("s.stem_doc @@ q.qs", stems),
                                        ("s.doc @@ q.qe", exact)) if not q.startswith("NULL"))
    rank = (f"COALESCE(ts_rank('{RANK_WEIGHTS}', s.stem_doc, q.qs, {RANK_NORMALIZATION}), 0)"
            f" + {EXACT_SHARE} * ts_rank('{RANK_WEIGHTS}', s.doc, q.qt, {RANK_NORMALIZATION})")
    with pg.connect() as c:
        rows = c.execute(text(f"SELECT s.post_id, {rank} FROM post_search s JOIN post p ON p.id = s.post_id,"
                              f" (SELECT {stems}, {exact}, {typed}, {pairs}) AS q(qs, qe, qt, qp)"
                              f" WHERE {match}{'' if include_copies else ' AND p.copy_of_id IS NULL'}"),
                         params).all()
    newest = sorted(rows, key=lambda r: -r[0])[:window]
    return [pid for pid, _ in sorted(newest, key=lambda r: (-r[1], r[0]))][:limit]


def test_postgresql_window_is_fetched_in_spans_with_the_same_posts_and_order(pg_url, tmp_path, monkeypatch):
    """The unfiltered path fetches the newest matches in spans of ids sized by estimates
    (catalog.search_pg._spans); whatever the spans, the ids and their order are those of
    ranking the `window` newest matches outright."""
    from sqlalchemy import event

    pg = open_db(pg_url)
    spans_per_call = []
    try:
        build_synthetic(pg, tmp_path)
        # 60 newer posts where "skewed" is dense in the older part and sparse in the newest, so the
        # first span (sized by the overall density) falls short and a second one is needed.
        later = [message(POSTS + i, f"post {i}" + (" skewed" if i <= 20 or i == 60 else ""),
                         date="2020-05-01T10:00:00") for i in range(1, 61)]
        ingest_file(pg, write_json(tmp_path / "later.json", telegram_export(later)))
        with pg.begin() as c:
            c.exec_driver_sql("ANALYZE post_search")  # as autovacuum would: the estimate sizes the first span
            # Copies among the newest matches (as catalog.source_copies links a forward): left out of the window.
            c.exec_driver_sql("UPDATE post SET copy_of_id = 1 WHERE id IN (57, 60, 80, 119, 120)")

        @event.listens_for(pg, "before_cursor_execute")
        def count(conn, cursor, statement, params, context, executemany):
            if "s.post_id <= " in statement:
                spans_per_call[-1] += 1

        for window in (2, 3, 5, 8, 13, 1000):
            monkeypatch.setattr(search_module, "RANK_WINDOW", window)
            for query in ("model", "dropout", "attention", "model dropout", "layer head", "batch-norm",
                          "rarity", '"loss" token', "nosuchword", "skewed", "post skewed"):
                for limit, copies in ((1, False), (4, True), (20, False), (20, True)):
                    spans_per_call.append(0)
                    got = [h.id for h in search(pg, query, limit=limit, filters=Filters(include_copies=copies))]
                    assert got == _oracle_window(pg, query, window, limit, copies), (query, window, limit, copies)
    finally:
        pg.dispose()
    # The cases above really take the spans: one, several, and the unbounded fetch alone.
    assert max(spans_per_call) >= 2 and 1 in spans_per_call
