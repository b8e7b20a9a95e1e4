"""The cost of "corruption is never an empty result": a search with no hits on SQLite.

    python bench/empty_search.py [--posts 5000 20000] [--queries 20]

A search that finds nothing scans the stored text for its words and, when every word is
there, runs FTS5's integrity check on the index (catalog.search), so a damaged index is
an error rather than "no posts match". This builds catalogs of synthetic posts and times,
with the guard (ours) and with it switched off (the baseline, the same run): a word that
occurs nowhere (the scan settles it), two stored words that never meet in one post (the
integrity check runs), and a query with hits (never guarded). Prints a table and, last,
``ratio=<ours / baseline>`` for the absent word on the largest catalog.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()

    import catalog.search as search_mod
    from bench.synthetic import write_export
    from catalog.db import open_db
    from catalog.ingest import ingest_paths

    print(f"{'posts':>7} {'absent word':>23} {'words never together':>25} {'with hits':>10}")
    print(f"{'':>7} {'ours':>10} {'baseline':>12} {'ours':>10} {'baseline':>14}")
    ratio = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.posts:
            engine = open_db(Path(tmp) / f"c{n}.db")
            ingest_paths(engine, [write_export(Path(tmp) / f"e{n}.json", n)])
            row = []
            for query in ("зззззз", "модель 模型"):
                assert not search_mod.search(engine, query)
                ours = _median_ms(lambda: search_mod.search(engine, query), args.queries)
                guard = search_mod._every_token_stored
                search_mod._every_token_stored = lambda conn, tokens: False
                try:
                    base = _median_ms(lambda: search_mod.search(engine, query), args.queries)
                finally:
                    search_mod._every_token_stored = guard
                row += [ours, base]
            hits = _median_ms(lambda: search_mod.search(engine, "модель"), args.queries)
            print(f"{n:>7} {row[0]:>7.1f} ms {row[1]:>9.2f} ms {row[2]:>7.1f} ms {row[3]:>11.2f} ms {hits:>7.1f} ms")
            ratio = row[0] / row[1]
            engine.dispose()
    print(f"ratio={ratio:.1f}")


if __name__ == "__main__":
    main()
