"""Search latency: `catalog.search.search` vs a raw FTS5 MATCH on the same catalog.

    python bench/search.py [--posts 100000] [--queries 200] [--db URL]

``--db`` builds the catalog there instead of a temporary SQLite file (e.g. an empty
PostgreSQL database); the raw baseline is then that engine's own one statement
(``tsvector @@ tsquery`` ordered by ``ts_rank``).

Builds a catalog of synthetic posts with our ingest, then times a mix of one-word,
two-word, hyphenated, Russian, English and Chinese queries through both paths.
Prints a table and, last, ``ratio=<ours p50 / raw p50>``.
Targets (issue 3): p50 <= 20 ms at 100k posts, ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import EN_VOCAB, RU_VOCAB, ZH, write_export  # noqa: E402


def queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)

    def en() -> str:  # queries follow the same Zipf law as the text
        return rng.choices(*EN_VOCAB)[0]

    def ru() -> str:
        return rng.choices(*RU_VOCAB)[0]

    makers = [en, ru, lambda: f"{en()} {en()}", lambda: f"{ru()} {ru()}", lambda: f"{en()}-{en()}",
              lambda: rng.choice(ZH) + rng.choice(ZH)]  # 4 Han characters: the FTS path, like the others
    return [rng.choice(makers)() for _ in range(n)]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--db", help="catalog to build and search (a path or URL; must hold no posts yet)")
    args = ap.parse_args()

    from catalog.db import open_db
    from catalog.ingest import ingest_file
    from catalog.search import search
    from catalog.searchtext import match_expression, query_terms

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        engine = open_db(args.db or tmp / "bench.db")
        if args.db:
            from catalog.queries import counts

            if counts(engine)["post"]:
                raise SystemExit(f"bench: {args.db} already holds posts; give an empty catalog")
        ingest_file(engine, write_export(tmp / "export.json", args.posts))
        build_s = time.perf_counter() - t
        qs = queries(args.queries)
        ours, raw = [], []
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            def time_ours(q: str) -> None:
                t = time.perf_counter()
                search(engine, q, limit=args.limit)
                ours.append((time.perf_counter() - t) * 1000)

            def time_raw(q: str) -> None:
                # The baseline: the one SQL statement any FTS5 search needs, fed an already-quoted query.
                expr = match_expression(query_terms(q))
                t = time.perf_counter()
                dbapi.execute("SELECT rowid FROM post_fts WHERE post_fts MATCH ? ORDER BY rank LIMIT ?",
                              (expr, args.limit)).fetchall()
                raw.append((time.perf_counter() - t) * 1000)

            if engine.dialect.name == "postgresql":
                from catalog.search_pg import RANK_NORMALIZATION, RANK_WEIGHTS

                def time_raw(q: str) -> None:  # noqa: F811 - the same one statement, on PostgreSQL
                    words = " ".join(t for ts in query_terms(q) for t in ts)
                    t = time.perf_counter()
                    cur = dbapi.cursor()
                    cur.execute("SELECT post_id FROM post_search, plainto_tsquery('simple', %s) q WHERE doc @@ q"
                                f" ORDER BY ts_rank('{RANK_WEIGHTS}', doc, q, {RANK_NORMALIZATION}) DESC LIMIT %s",
                                (words, args.limit))
                    cur.fetchall()
                    raw.append((time.perf_counter() - t) * 1000)

            for q in qs:  # warm both paths once: each connection has its own page cache; jieba loads once
                time_ours(q)
                time_raw(q)
            ours.clear()
            raw.clear()
            for i, q in enumerate(qs):  # alternate which path runs first, so neither gets a warmer cache
                first, second = (time_ours, time_raw) if i % 2 else (time_raw, time_ours)
                first(q)
                second(q)
        engine.dispose()
    print(f"catalog: {args.posts} posts on {engine.dialect.name} (built in {build_s:.1f} s), {len(qs)} queries,"
          f" limit {args.limit}")
    print(f"{'path':<22}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, xs in (("raw one statement", raw), ("ours (search())", ours)):
        print(f"{name:<22}{percentile(xs, .5):>10.2f}{percentile(xs, .95):>10.2f}{statistics.mean(xs):>10.2f}")
    print(f"ratio={percentile(ours, .5) / percentile(raw, .5):.2f}")


if __name__ == "__main__":
    main()
