"""Benchmark: `digest site build` vs a bare `mkdocs build` of as many trivial pages.

    python bench/site.py [--posts 10000] [--papers 2000] [--tags 500] [--keep DIR] [--no-bare]

Builds a synthetic catalog (posts in Russian, English and Chinese with hashtags and
arXiv ids), then times, each in its own process so peak memory is per build:
  ours:  python -m catalog.cli site build --full (generate, mkdocs-material build of the
         nav pages and one shell per folder, every other page stamped into its shell,
         Pagefind search index)
  bare:  python -m mkdocs build of the same number of one-paragraph pages, same theme
         and mkdocs' own search plugin, no generator, no tags
The related lists (catalog/related.py: TF-IDF and an SVD over every post and paper) are
catalog state like the arXiv metadata: `digest sync` and `digest related` compute them
when the catalog changed, and a site build does only when nobody did. They are computed
after each ingest here, timed on their own row, so the build times are the site's.
Prints a table; the last line is ratio=<ours/bare>. `--keep DIR` keeps the catalog and
our built site there (bench/site_search.py can reuse it); `--no-bare` skips the bare
build (for 100k posts, where only our time and memory are the target).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.db import open_db  # noqa: E402
from catalog.ingest import ingest_records  # noqa: E402
from bench.synthetic import EN_VOCAB, RU_VOCAB  # noqa: E402
from scrapers.records import Link, PostRecord, SourceRecord  # noqa: E402

# 5,000-word vocabularies with Zipf weights (bench/synthetic.py), so the search index has
# the spread of a real one; Chinese from a short list, written without spaces
ZH = ["模型", "训练", "注意力", "自注意力", "变换器", "正则化", "数据集", "论文", "结果", "层", "梯度", "隐变量", "分词"]


def synthetic_records(posts: int, papers: int, tags: int, seed: int = 0, start: int = 0):
    rng = random.Random(seed)
    sources = [SourceRecord("telegram", f"channel{i}", f"Channel {i}") for i in range(5)]
    tag_names = [f"tag{i}" if i % 3 else f"тег{i}" for i in range(tags)]
    paper_ids = [f"{20 + i // 5000:02d}{(i // 400) % 12 + 1:02d}.{10000 + i:05d}" for i in range(papers)]
    t0 = datetime(2019, 1, 1, tzinfo=timezone.utc)
    for i in range(start, start + posts):
        language = rng.choice(["ru", "en", "zh"])
        if language == "zh":
            def words(k: int) -> str:
                return "".join(rng.choice(ZH) for _ in range(k))
        else:
            vocab, weights = RU_VOCAB if language == "ru" else EN_VOCAB

            def words(k: int) -> str:
                return " ".join(rng.choices(vocab, weights, k=k))
        body = "\n\n".join(words(rng.randint(20, 60)) for _ in range(3))
        ids = tuple(sorted(set(rng.sample(paper_ids, rng.randint(0, 2)))))
        hashtags = tuple(sorted(set(rng.sample(tag_names, rng.randint(1, 4)))))
        yield PostRecord(
            source=sources[i % len(sources)], external_id=str(i), published_at=t0 + timedelta(hours=7 * i),
            title=words(6), text=body + "\n" + " ".join("#" + t for t in hashtags),
            hashtags=hashtags, arxiv_ids=ids, links=tuple(Link(f"https://arxiv.org/abs/{a}", "arxiv") for a in ids),
            language=language)


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process; the RSS is the larger of the
    process's own and of its largest child (Pagefind)."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    peaks = re.findall(r"peak_rss_mb=([0-9.]+)", err)
    peak = max(map(float, peaks)) if peaks else float("nan")
    return wall, peak, out


# Each build runs as the child of a small launcher that reports the child's peak RSS (its own
# or its largest descendant's, Pagefind). Linux carries a process's RSS high-water mark across
# fork and exec, so a build forked straight from this process (which holds the ingested
# catalog) would report this process's size; the launcher's own child starts small.
LAUNCH = ("import os, sys\n"
          "pid = os.spawnv(os.P_NOWAIT, sys.argv[1], sys.argv[1:])\n"
          "_, status, usage = os.wait4(pid, 0)\n"
          "print('peak_rss_mb=%.1f' % (usage.ru_maxrss / 1024), file=sys.stderr)\n"
          "sys.exit(os.waitstatus_to_exitcode(status))")
RUN = (sys.executable, "-c", LAUNCH, sys.executable, "-m")


def timed_related(db: Path) -> float:
    from catalog.related import ensure_related

    t0 = time.perf_counter()
    ensure_related(open_db(db))
    return time.perf_counter() - t0


def bare_project(folder: Path, pages: int) -> Path:
    docs = folder / "docs"
    (docs / "p").mkdir(parents=True, exist_ok=True)
    (docs / "index.md").write_text("# Home\n\nA trivial site.\n")
    for i in range(pages):
        (docs / "p" / f"page-{i}.md").write_text(f"# Page {i}\n\nTrivial page number {i}.\n")
    cfg = folder / "mkdocs.yml"
    cfg.write_text("site_name: bare\ntheme:\n  name: material\n  font: false\nplugins:\n  - search\n"
                   "nav:\n  - Home: index.md\nnot_in_nav: |\n  /p/\n")
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=2_000)
    ap.add_argument("--tags", type=int, default=500)
    ap.add_argument("--keep", type=Path, help="Keep the catalog (DIR/bench.db) and our build (DIR/ours) here.")
    ap.add_argument("--no-bare", action="store_true", help="Skip the bare mkdocs build (no ratio).")
    ap.add_argument("--no-incremental", action="store_true", help="Skip the rebuild after 100 new posts.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        tmp = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = args.keep.resolve()
        db = tmp / "bench.db"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        ingest_records(open_db(db), synthetic_records(args.posts, args.papers, args.tags))
        ingest_s = time.perf_counter() - t0
        related_s = timed_related(db)

        ours_wall, ours_peak, out = timed([*RUN, "catalog.cli", "--db", str(db), "site", "build",
                                           "--out", str(tmp / "ours"), "--full", "--json"], ROOT)
        summary = json.loads(out[out.index("{"):])
        pages = summary["pages"]
        bare_wall = bare_peak = float("nan")
        if not args.no_bare:
            cfg = bare_project(tmp / "bare", pages)
            bare_wall, bare_peak, _ = timed([*RUN, "mkdocs", "build", "-q", "-f", str(cfg)],
                                            tmp / "bare")
        inc = None
        if not args.no_incremental:  # a rebuild after 100 new posts: only changed files are written
            ingest_records(open_db(db), synthetic_records(100, args.papers, args.tags, seed=1, start=args.posts))
            inc_related_s = timed_related(db)
            inc_wall, inc_peak, out = timed([*RUN, "catalog.cli", "--db", str(db), "site", "build",
                                             "--out", str(tmp / "ours"), "--incremental", "--json"], ROOT)
            inc = json.loads(out[out.index("{"):])
        load = os.getloadavg()

    rows = [
        ("catalog", f"{args.posts} posts, {args.papers} papers, {args.tags} tags (ingest {ingest_s:.1f} s, "
                    f"related lists {related_s:.1f} s" + (f"; after +100 posts {inc_related_s:.1f} s)" if inc else ")")),
        ("pages", str(pages)),
        ("ours: generate", f"{summary['generate_s']:.1f} s"),
        ("ours: mkdocs build", f"{summary['mkdocs_s']:.1f} s"),
        ("ours: stamp pages", f"{summary['stamp_s']:.1f} s ({summary['site_written']} files written)"),
        ("ours: search index", f"{summary.get('search_s', 0):.1f} s (Pagefind)"),
        ("ours: total (process)", f"{ours_wall:.1f} s, peak RSS {ours_peak:.0f} MB"),
        ("bare mkdocs build", f"{bare_wall:.1f} s, peak RSS {bare_peak:.0f} MB"),
        ("cpu cores", f"{os.cpu_count()} (load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})"),
    ]
    if inc:
        rows.insert(-2, ("ours: +100 posts, --incremental",
                         f"{inc_wall:.1f} s, peak RSS {inc_peak:.0f} MB (generate {inc['generate_s']:.1f} s, "
                         f"mkdocs {inc['mkdocs_s']:.1f} s, stamp {inc['stamp_s']:.1f} s, search index "
                         f"{inc['search_s']:.1f} s; {inc['site_written']} files rewritten)"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"ratio={ours_wall / bare_wall:.3f}" if bare_wall == bare_wall else "ratio=n/a (--no-bare)")


if __name__ == "__main__":
    main()
