"""Related-papers quality and cost.

    python bench/related.py                       # quality only (seconds)
    python bench/related.py --posts 100000 --papers 20000   # plus the cost at scale

Quality: a labelled set of 48 well-known papers (bench/data/related_labelled.json:
titles, one-line summaries written by us, real arXiv primary categories) goes into a
fresh catalog; `catalog.related.rebuild_related` stores each paper's neighbours, and
precision@5 is the share of a paper's five nearest papers that have its primary
category. Baselines measured in the same run: random neighbours (the expectation,
exact) and the same TF-IDF over titles only.

Cost: a synthetic catalog of N posts citing M papers (ru/en/zh text, as
bench/synthetic.py) is ingested, then one `rebuild_related` is timed in a child
process whose peak RSS is read from the OS. Target (issue 17): 100k posts + 20k
papers in <= 5 min and <= 2 GB on 2 cores.

The last line is ``ratio=<ours p@5 / title-only p@5>`` (higher is better).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELLED = ROOT / "bench" / "data" / "related_labelled.json"
AT = 5


def labelled() -> list[dict]:
    return json.loads(LABELLED.read_text(encoding="utf-8"))["papers"]


def precision(neighbours: dict[str, list[str]], cats: dict[str, str]) -> float:
    hits = [sum(cats[o] == cats[p] for o in others[:AT]) / AT for p, others in neighbours.items()]
    return sum(hits) / len(hits)


def random_expectation(cats: dict[str, str]) -> float:
    """Exact expected precision@k of neighbours drawn uniformly from the other papers."""
    counts = Counter(cats.values())
    n = len(cats)
    return sum((counts[c] - 1) / (n - 1) for c in cats.values()) / n


def ours(papers: list[dict], folder: Path) -> dict[str, list[str]]:
    """Neighbours as the product computes and stores them."""
    from sqlalchemy.orm import Session

    from catalog.db import open_db
    from catalog.models import Paper
    from catalog.related import rebuild_related
    from catalog.related_lookup import related

    engine = open_db(folder / "labelled.db")
    with Session(engine) as s, s.begin():
        for p in papers:
            s.add(Paper(arxiv_id=p["id"], title=p["title"], abstract=p["summary"], primary_category=p["cat"],
                        categories=[p["cat"]], status="ok", authors=[], published=datetime(2020, 1, 1)))
    rebuild_related(engine)
    return {p["id"]: [r["arxiv_id"] for r in related(engine, p["id"], kinds=("paper",), limit=AT)]
            for p in papers}


def title_only(papers: list[dict]) -> dict[str, list[str]]:
    from catalog.similarity import top_k, vectorize
    from catalog.searchtext import document_text

    matrix = vectorize([document_text(p["title"]) for p in papers])
    ids = [p["id"] for p in papers]
    return {ids[row]: [ids[o] for o, _ in best] for row, kind, best in top_k(matrix, 0, AT) if kind == "paper"}


def quality(folder: Path) -> tuple[float, float, float]:
    papers = labelled()
    cats = {p["id"]: p["cat"] for p in papers}
    return random_expectation(cats), precision(title_only(papers), cats), precision(ours(papers, folder), cats)


# ------------------------------------------------------------------ cost at scale

def synthetic_export(path: Path, posts: int, papers: int, seed: int = 0) -> None:
    from bench.synthetic import post_text

    rng = random.Random(seed)
    pool = [f"{rng.randint(15, 24):02d}{rng.randint(1, 12):02d}.{i:05d}" for i in range(papers)]
    messages = []
    for i in range(1, posts + 1):
        text = post_text(rng, i).rsplit("\n", 2)[0]  # drop the generator's own random arXiv link
        cited = " ".join(f"arxiv.org/abs/{rng.choice(pool)}" for _ in range(rng.randint(1, 2)))
        text = f"{text}\n{cited}"
        messages.append({"id": i, "type": "message", "date": "2021-03-04T05:06:07",
                         "date_unixtime": str(1614834367 + i * 60), "from": "Bench", "from_id": "channel7",
                         "text": text, "text_entities": [{"type": "plain", "text": text}]})
    path.write_text(json.dumps({"name": "Bench", "type": "public_channel", "id": 7, "messages": messages},
                               ensure_ascii=False), encoding="utf-8")


_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from catalog.db import open_db
from catalog.related import rebuild_related
engine = open_db({db!r})
t = time.perf_counter()
stats = rebuild_related(engine)
stats["seconds"] = time.perf_counter() - t
print(json.dumps(stats))
"""


def cost(folder: Path, posts: int, papers: int) -> dict:
    from catalog.db import open_db
    from catalog.ingest import ingest_paths

    export = folder / "synthetic.json"
    synthetic_export(export, posts, papers)
    db = folder / "scale.db"
    t = time.perf_counter()
    ingest_paths(open_db(db), [export])
    ingest_s = time.perf_counter() - t
    out = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT), db=str(db))],
                         capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stats["ingest_s"] = ingest_s
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=0, help="also time a rebuild over this many synthetic posts")
    ap.add_argument("--papers", type=int, default=20000, help="papers those posts cite (with --posts)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rand, titles, full = quality(folder)
        print(f"{'neighbours of 48 labelled papers':<44} {'precision@5':>12}")
        print(f"{'random (expectation)':<44} {rand:>12.3f}")
        print(f"{'TF-IDF, titles only':<44} {titles:>12.3f}")
        print(f"{'ours: TF-IDF words+chars, title+abstract':<44} {full:>12.3f}")
        if args.posts:
            stats = cost(folder, args.posts, args.papers)
            print()
            print(f"{'scale':<44} {'value':>12}")
            print(f"{'items compared (posts + papers)':<44} {stats['posts']:>6} + {stats['papers']}")
            print(f"{'neighbours stored':<44} {stats['pairs']:>12}")
            print(f"{'rebuild_related wall time (s)':<44} {stats['seconds']:>12.1f}")
            print(f"{'rebuild_related peak RSS (MB)':<44} {stats['peak_rss_mb']:>12.0f}")
            print(f"{'(ingest of the synthetic export, s)':<44} {stats['ingest_s']:>12.1f}")
    print(f"ratio={full / titles:.2f}")


if __name__ == "__main__":
    main()
