"""Search latency: `catalog.search.search` vs a raw FTS5 MATCH on the same catalog.

    python bench/search.py [--posts 100000] [--queries 200] [--db PATH|URL]

``--db`` keeps the catalog there (a path or a PostgreSQL URL): built on the first run,
reused when it already holds posts. On PostgreSQL the raw baseline is that engine's own
one statement (``tsvector @@ tsquery`` ordered by ``ts_rank``).

Builds a catalog of synthetic posts with our ingest (or reuses the one at ``--db``, built
there on the first run), then times a mix of one-word, two-word, hyphenated, Russian,
English and Chinese queries through both paths. Prints p50/p95/p99, the five slowest
queries (with the raw time and how many hits each path found), the tail ``p95/p50``, and,
last, ``ratio=<ours p50 / raw p50>``.
Targets: p50 <= 20 ms at 100k posts, ratio <= 1.5 (issue 3); ours p95 <= 3 x ours p50 (issue 20).
The raw path ranks every match; ours ranks a frequent word's newest ``RANK_WINDOW`` matches
only (catalog.search), which is what removes the tail: compare the two p95 columns.
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
    ap.add_argument("--db", help="keep the catalog here, a path or URL (built if empty, reused if it holds posts)")
    args = ap.parse_args()

    from catalog.db import open_db
    from catalog.ingest import ingest_file
    from catalog.search import search
    from catalog.searchtext import match_expression, parse_query

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        engine = open_db(args.db or tmp / "bench.db")
        from catalog.queries import counts

        reuse = bool(counts(engine)["post"])
        if not reuse:
            ingest_file(engine, write_export(tmp / "export.json", args.posts))
        build_s = time.perf_counter() - t
        with engine.connect() as conn:
            args.posts = conn.exec_driver_sql("SELECT count(*) FROM post").scalar()
        qs = queries(args.queries)
        ours, raw = [], []
        per_query: dict[str, list] = {}  # query -> [ours ms, raw ms, ours hits, raw hits]
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            def time_ours(q: str) -> None:
                t = time.perf_counter()
                hits = search(engine, q, limit=args.limit)
                ours.append((time.perf_counter() - t) * 1000)
                per_query.setdefault(q, [0.0, 0.0, 0, 0])
                per_query[q][0], per_query[q][2] = ours[-1], len(hits)

            def time_raw(q: str) -> None:
                # The baseline: the one SQL statement any FTS5 search needs, fed an already-quoted query.
                expr = match_expression(parse_query(q))
                t = time.perf_counter()
                rows = dbapi.execute("SELECT rowid FROM post_fts WHERE post_fts MATCH ? ORDER BY rank LIMIT ?",
                                     (expr, args.limit)).fetchall()
                raw.append((time.perf_counter() - t) * 1000)
                per_query.setdefault(q, [0.0, 0.0, 0, 0])
                per_query[q][1], per_query[q][3] = raw[-1], len(rows)

            if engine.dialect.name == "postgresql":
                from catalog.search_pg import RANK_NORMALIZATION, RANK_WEIGHTS

                def time_raw(q: str) -> None:  # noqa: F811 - the same one statement, on PostgreSQL
                    words = " ".join(s for term in parse_query(q) for s in term.stems)
                    t = time.perf_counter()
                    cur = dbapi.cursor()
                    cur.execute("SELECT post_id FROM post_search, plainto_tsquery('simple', %s) q WHERE stem_doc @@ q"
                                f" ORDER BY ts_rank('{RANK_WEIGHTS}', stem_doc, q, {RANK_NORMALIZATION}) DESC LIMIT %s",
                                (words, args.limit))
                    rows = cur.fetchall()
                    raw.append((time.perf_counter() - t) * 1000)
                    per_query.setdefault(q, [0.0, 0.0, 0, 0])
                    per_query[q][1], per_query[q][3] = raw[-1], len(rows)

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
    print(f"catalog: {args.posts} posts on {engine.dialect.name} ({'reused' if reuse else 'built'} in {build_s:.1f} s), "
          f"{len(qs)} queries, limit {args.limit}")
    print(f"{'path':<22}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, xs in (("raw one statement", raw), ("ours (search())", ours)):
        print(f"{name:<22}{percentile(xs, .5):>10.2f}{percentile(xs, .95):>10.2f}{percentile(xs, .99):>10.2f}"
              f"{statistics.mean(xs):>10.2f}")
    print("five slowest queries (ours; last timed run of each):")
    print(f"  {'query':<34}{'ours ms':>9}{'raw ms':>9}{'hits':>6}{'raw hits':>9}")
    for q, (o, r, n, rn) in sorted(per_query.items(), key=lambda kv: -kv[1][0])[:5]:
        print(f"  {q!r:<34}{o:>9.2f}{r:>9.2f}{n:>6}{rn:>9}")
    print(f"tail: ours p95/p50 = {percentile(ours, .95) / percentile(ours, .5):.2f} (target <= 3); "
          f"raw p95/p50 = {percentile(raw, .95) / percentile(raw, .5):.2f}")
    print(f"ratio={percentile(ours, .5) / percentile(raw, .5):.2f}")


if __name__ == "__main__":
    main()
