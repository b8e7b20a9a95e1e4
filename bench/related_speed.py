"""Related lists: ours against a baseline revision of catalog/related.py, timed back to back.

    python bench/related_speed.py [--posts 10000] [--papers 2000] [--add 100] [--rounds 2] [--baseline REV]

The baseline is catalog/related.py as of git revision REV (default e2b7f7b: scikit-learn's
TfidfVectorizer, character 3–5-grams), loaded beside ours. A synthetic catalog
(bench/site.py's `synthetic_records`) is built once; each round times the baseline, then
ours, each on a fresh copy of it: a full rebuild (`rebuild_related`), then `--add` more
posts (another seed) and `update_related` (the incremental update). Ingests are not timed.

Quality, from the first round's full rebuilds: our top-5 lists (what a page shows) against
the baseline's, as the mean share of a list the two have in common (overlap@5) and how
often the best neighbour is the same, on the synthetic catalog and on the sample corpus.
For scale, the same figures for the baseline against itself with another SVD seed: above
EXACT_MAX items the lists come from a randomised projection and move that much by chance.
And, a check against a known answer (a post's text is part of the text of the papers it
cites): the share of posts citing a paper whose top-5 papers hold one they cite.

Last line: ``ratio=<ours / baseline wall time, full rebuild + incremental update, best round of each>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.related_incremental import lists  # noqa: E402
from bench.site import synthetic_records  # noqa: E402
from catalog import related as ours  # noqa: E402
from catalog.db import open_db  # noqa: E402
from catalog.demo import sample_corpus  # noqa: E402
from catalog.ingest import ingest_paths, ingest_records  # noqa: E402
from catalog.models import PostPaper  # noqa: E402

SHOWN = 5


def baseline_module(rev: str) -> ModuleType:
    """catalog/related.py as of `rev`, as a module of its own (the rest of `catalog` is today's)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:catalog/related.py"],
                            capture_output=True, text=True, check=True).stdout
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("related_baseline", loader=None))
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:catalog/related.py", "exec"), module.__dict__)
    return module


def by_kind(shown: dict) -> dict[tuple, list[int]]:
    """``{(item, neighbour kind): [neighbour ids]}`` from `lists`."""
    out: dict[tuple, list[int]] = {}
    for item, best in shown.items():
        for kind in ours.KINDS:
            out[item, kind] = [i for k, i in best if k == kind]
    return out


def agreement(reference: dict, other: dict) -> tuple[float, float]:
    """(mean overlap@5, share with the same best neighbour) of `other`'s lists against `reference`'s."""
    ref, new = by_kind(reference), by_kind(other)
    keys = [key for key, best in ref.items() if best]
    overlap = sum(len(set(ref[key]) & set(new.get(key, []))) / len(ref[key]) for key in keys) / len(keys)
    same_best = sum(new.get(key, [])[:1] == ref[key][:1] for key in keys) / len(keys)
    return overlap, same_best


def cited_hits(shown: dict, engine) -> float:
    """Share of the posts citing a paper whose shown papers hold one they cite."""
    cites: dict[int, set[int]] = {}
    with engine.connect() as c:
        for post, paper in c.execute(select(PostPaper.post_id, PostPaper.paper_id)):
            cites.setdefault(post, set()).add(paper)
    papers = by_kind(shown)
    return sum(bool(set(papers.get((("post", post), "paper"), [])) & cited)
               for post, cited in cites.items()) / max(len(cites), 1)


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def run(impl: ModuleType, base: Path, work: Path, add: list) -> tuple[float, float, dict]:
    """Full rebuild, then the additions and an update, on a fresh copy of `base`:
    (full s, update s, lists after the full rebuild)."""
    shutil.copy(base, work)
    engine = open_db(work)
    full_s = timed(impl.rebuild_related, engine)
    shown = lists(engine)
    ingest_records(engine, add)
    update_s = timed(impl.update_related, engine)
    engine.dispose()
    return full_s, update_s, shown


def rebuilt_lists(impl: ModuleType, base: Path, work: Path) -> dict:
    shutil.copy(base, work)
    engine = open_db(work)
    impl.rebuild_related(engine)
    shown = lists(engine)
    engine.dispose()
    return shown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=2_000)
    ap.add_argument("--add", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", default="e2b7f7b", help="git revision of catalog/related.py to compare with")
    args = ap.parse_args()
    old = baseline_module(args.baseline)
    impls = {"baseline": old, "ours": ours}
    with tempfile.TemporaryDirectory(prefix="bench-related-") as tmp:
        tmp = Path(tmp)
        synthetic, sample = tmp / "synthetic.db", tmp / "sample.db"
        ingest_records(open_db(synthetic), synthetic_records(args.posts, args.papers, 500, seed=0))
        ingest_paths(open_db(sample), sample_corpus())
        add = list(synthetic_records(args.add, args.papers, 500, seed=1, start=args.posts))
        for impl in impls.values():  # imports and first-call costs out of the timings
            rebuilt_lists(impl, sample, tmp / "warm.db")

        times: dict[str, list[tuple[float, float]]] = {name: [] for name in impls}
        shown: dict[str, dict] = {}
        print(f"{'round':<6} {'implementation':<10} {'full rebuild s':>15} {f'+{args.add} posts, update s':>22}")
        for n in range(1, args.rounds + 1):
            for name, impl in impls.items():
                full_s, update_s, lists_after = run(impl, synthetic, tmp / f"{name}.db", add)
                times[name].append((full_s, update_s))
                shown.setdefault(name, lists_after)
                print(f"{n:<6} {name:<10} {full_s:>15.1f} {update_s:>22.1f}", flush=True)
        best = {name: (min(f for f, _ in t), min(u for _, u in t)) for name, t in times.items()}
        print(f"{'best':<6} {'ours/base':<10} {best['ours'][0] / best['baseline'][0]:>15.2f} "
              f"{best['ours'][1] / best['baseline'][1]:>22.2f}")

        old.project = partial(old.project, seed=1)  # the baseline once more, only the SVD seed changed
        reseeded = rebuilt_lists(old, synthetic, tmp / "reseeded.db")
        sample_lists = {name: rebuilt_lists(impl, sample, tmp / f"sample-{name}.db") for name, impl in impls.items()}
        reseeded_sample = rebuilt_lists(old, sample, tmp / "sample-reseeded.db")
        engine = open_db(synthetic)
        print()
        print(f"{'top-5 lists vs the baseline':<40} {'overlap@5':>10} {'same best':>10} {'cited paper in top-5':>21}")
        print(f"{'synthetic: baseline':<40} {1:>10.3f} {1:>10.3f} {cited_hits(shown['baseline'], engine):>21.3f}")
        for label, other, other_sample in (("baseline, SVD seed 1", reseeded, reseeded_sample),
                                           ("ours", shown["ours"], sample_lists["ours"])):
            overlap, same = agreement(shown["baseline"], other)
            print(f"{'synthetic: ' + label:<40} {overlap:>10.3f} {same:>10.3f} {cited_hits(other, engine):>21.3f}")
            overlap, same = agreement(sample_lists["baseline"], other_sample)
            print(f"{'sample corpus: ' + label:<40} {overlap:>10.3f} {same:>10.3f}")
    print(f"ratio={sum(best['ours']) / sum(best['baseline']):.3f}")


if __name__ == "__main__":
    main()
