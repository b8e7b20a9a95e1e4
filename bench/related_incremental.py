"""Related lists after adding a few posts: incremental update vs full rebuild.

    python bench/related_incremental.py [--posts 10000] [--papers 2000] [--add 100]

A synthetic catalog (bench/site.py's `synthetic_records`) gets a full rebuild, then
`--add` more posts (another seed, so new text and links to the same papers) and an
update: `update_related` (incremental when safe) on one copy of the catalog,
`rebuild_related` on another. Prints the wall times and, for the items that were there
before, how many top-5 lists (what a site page shows: up to 5 posts and 5 papers) each
way changed; then how often a new post's best post and best paper are the full
rebuild's. The last line is ``ratio=<old items' pages changed, incremental / full rebuild>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import synthetic_records  # noqa: E402
from catalog.db import open_db  # noqa: E402
from catalog.ingest import ingest_records  # noqa: E402
from catalog.related import rebuild_related, update_related  # noqa: E402
from catalog.related_lookup import related_map  # noqa: E402

SHOWN = 5


def lists(engine) -> dict[tuple[str, int], list[tuple[str, int]]]:
    """Each item's shown neighbours, without scores (the page shows none)."""
    return {item: [(kind, i) for kind, i, _ in best] for item, best in related_map(engine, limit=SHOWN).items()}


def timed(fn, engine) -> tuple[float, dict]:
    t = time.perf_counter()
    stats = fn(engine)
    return time.perf_counter() - t, stats


def changed(before: dict, after: dict) -> dict[str, int]:
    """Items whose shown list changed, by the item's kind and by the kind of neighbour that changed."""
    counts = {"post": 0, "paper": 0, "in posts": 0, "in papers": 0}
    for item, best in before.items():
        now = after.get(item, [])
        counts[item[0]] += now != best
        for kind in ("post", "paper"):
            counts[f"in {kind}s"] += [o for o in now if o[0] == kind] != [o for o in best if o[0] == kind]
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=2_000)
    ap.add_argument("--add", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inc_db, full_db = Path(tmp) / "incremental.db", Path(tmp) / "full.db"
        ingest_records(open_db(inc_db), synthetic_records(args.posts, args.papers, 500, seed=0))
        engine = open_db(inc_db)
        full_s, stats = timed(rebuild_related, engine)
        print(f"full rebuild, {stats['posts']} posts + {stats['papers']} papers: {full_s:.1f} s")
        before = lists(engine)
        ingest_records(engine, synthetic_records(args.add, args.papers, 500, seed=1, start=args.posts))
        engine.dispose()
        shutil.copy(inc_db, full_db)
        engine, other = open_db(inc_db), open_db(full_db)
        inc_s, inc = timed(update_related, engine)
        again_s, _ = timed(rebuild_related, other)
        after_inc, after_full = lists(engine), lists(other)
        print(f"+{args.add} posts, update_related ({inc['mode']}, {inc['fresh']} fresh items, "
              f"{inc['lists_changed']} items' stored lists rewritten): {inc_s:.1f} s")
        print(f"+{args.add} posts, full rebuild: {again_s:.1f} s")
        pages = {}
        for name, after in (("incremental", after_inc), ("full rebuild", after_full)):
            counts = changed(before, after)
            pages[name] = counts["post"] + counts["paper"]
            print(f"old items whose top-{SHOWN} changed, {name}: {counts['post']} posts, {counts['paper']} papers "
                  f"(of {sum(k == 'post' for k, _ in before)} posts, {sum(k == 'paper' for k, _ in before)} papers; "
                  f"{counts['in posts']} changed in their posts, {counts['in papers']} in their papers)")
        new = [item for item in after_full if item not in before and item[0] == "post"]
        for name, after in (("incremental", after_inc), ("full rebuild", after_full)):
            entered = sum(any(o not in before for o in after[item]) for item in before)
            print(f"old items whose top-{SHOWN} holds a new item, {name}: {entered}")
        for kind in ("post", "paper"):
            same = sum(next((o for o in after_inc.get(item, []) if o[0] == kind), None)
                       == next((o for o in after_full[item] if o[0] == kind), None) for item in new)
            print(f"new posts whose best {kind} is the full rebuild's: {same} of {len(new)}")
    print(f"ratio={pages['incremental'] / max(pages['full rebuild'], 1):.3f}")


if __name__ == "__main__":
    main()
