"""Benchmark: `digest site build`, first and incremental (the hourly loop), vs a bare `mkdocs build`.

    python bench/site.py [--posts 10000] [--papers 2000 | --own-papers] [--tags 500] [--add 10]
                         [--keep DIR] [--no-bare] [--no-incremental] [--profile FILE]

Builds a synthetic catalog (posts in Russian, English and Chinese with hashtags and
arXiv ids), then times, each in its own process so peak memory is per build:
  ours:  python -m catalog.cli site build --full (generate, mkdocs-material build of the
         nav pages and one shell per folder, every other page stamped into its shell,
         Pagefind search index)
  bare:  python -m mkdocs build of the same number of one-paragraph pages, same theme
         and mkdocs' own search plugin, no generator, no tags
Then the rebuilds a scheduled `digest sync --site` makes, each its own process: two with
nothing changed (the first copies the served generation as hard links, the second brings the
standby generation up to date, as every later build does), and one after `--add` new posts
(default 10). `--own-papers`: every post cites a paper of its own (a paper-review channel; as
many papers as posts). The last line is ratio=<+N posts rebuild / first build>; the bare mkdocs
build of as many trivial pages (same theme, mkdocs' own search) is a row of its own.
The related lists (catalog/related.py: TF-IDF and an SVD over every post and paper) are
catalog state like the arXiv metadata: `digest sync` and `digest related` compute them
when the catalog changed, and a site build does only when nobody did. They are computed
after each ingest here, timed on their own row, so the build times are the site's.
`--keep DIR` keeps the catalog and our built site there (bench/site_search.py can reuse it);
`--no-bare` skips the bare build; `--profile FILE` runs the first build under cProfile.
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


def own_paper_id(i: int) -> str:
    """The arXiv id of post i's own paper (--own-papers): new-style ids growing with i, 5,000 a month."""
    month = i // 5_000
    return f"{20 + month // 12:02d}{month % 12 + 1:02d}.{10_000 + i % 5_000:05d}"


def synthetic_records(posts: int, papers: int, tags: int, seed: int = 0, start: int = 0, own_papers: bool = False):
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
        ids = (own_paper_id(i),) if own_papers else tuple(sorted(set(rng.sample(paper_ids, rng.randint(0, 2)))))
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


def build_row(label: str, wall: float, peak: float, summary: dict) -> tuple[str, str]:
    return (label, f"{wall:.1f} s, peak RSS {peak:.0f} MB (generate {summary['generate_s']:.1f} s, mkdocs "
                   f"{summary['mkdocs_s']:.1f} s, stamp {summary['stamp_s']:.1f} s, search index "
                   f"{summary['search_s']:.1f} s; {summary.get('rendered', 0)} pages rendered, "
                   f"{summary['site_written']} files written)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=2_000)
    ap.add_argument("--own-papers", action="store_true", help="Every post cites a paper of its own (--papers ignored).")
    ap.add_argument("--tags", type=int, default=500)
    ap.add_argument("--add", type=int, default=10, help="New posts before the incremental rebuild.")
    ap.add_argument("--keep", type=Path, help="Keep the catalog (DIR/bench.db) and our build (DIR/ours) here.")
    ap.add_argument("--no-bare", action="store_true", help="Skip the bare mkdocs build.")
    ap.add_argument("--no-incremental", action="store_true", help="Skip the rebuilds.")
    ap.add_argument("--profile", type=Path, help="Run the first build under cProfile, its stats into FILE.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        tmp = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = args.keep.resolve()
        db = tmp / "bench.db"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        ingest_records(open_db(db), synthetic_records(args.posts, args.papers, args.tags, own_papers=args.own_papers))
        ingest_s = time.perf_counter() - t0
        related_s = timed_related(db)
        load_start = os.getloadavg()

        build = ["catalog.cli", "--db", str(db), "site", "build", "--out", str(tmp / "ours"), "--json"]
        first = (["cProfile", "-o", str(args.profile.resolve()), "-m"] if args.profile else []) + build + ["--full"]
        ours_wall, ours_peak, out = timed([*RUN, *first], ROOT)
        summary = json.loads(out[out.index("{"):])
        pages = summary["pages"]
        bare_wall = bare_peak = float("nan")
        if not args.no_bare:
            cfg = bare_project(tmp / "bare", pages)
            bare_wall, bare_peak, _ = timed([*RUN, "mkdocs", "build", "-q", "-f", str(cfg)], tmp / "bare")
        rebuilds = []
        if not args.no_incremental:
            for label in ("no change (1st: hard links of the served site)", "no change (standby generation)"):
                wall, peak, out = timed([*RUN, *build], ROOT)
                rebuilds.append((label, wall, peak, json.loads(out[out.index("{"):])))
            ingest_records(open_db(db), synthetic_records(args.add, args.papers, args.tags, seed=1, start=args.posts,
                                                          own_papers=args.own_papers))
            inc_related_s = timed_related(db)
            wall, peak, out = timed([*RUN, *build], ROOT)
            rebuilds.append((f"+{args.add} posts", wall, peak, json.loads(out[out.index("{"):])))
        load = os.getloadavg()

    papers = f"{args.posts} papers, one per post" if args.own_papers else f"{args.papers} papers"
    rows = [
        ("catalog", f"{args.posts} posts, {papers}, {args.tags} tags (ingest {ingest_s:.1f} s, related lists "
                    f"{related_s:.1f} s" + (f"; after +{args.add} posts {inc_related_s:.1f} s)" if rebuilds else ")")),
        ("pages", str(pages)),
        build_row("ours: first build (--full)", ours_wall, ours_peak, summary),
        *(build_row(f"ours: rebuild, {label}", wall, peak, s) for label, wall, peak, s in rebuilds),
        ("bare mkdocs build", f"{bare_wall:.1f} s, peak RSS {bare_peak:.0f} MB"
                              + (f" (ours/bare {ours_wall / bare_wall:.2f})" if bare_wall == bare_wall else "")),
        ("cpu cores", f"{os.cpu_count()} (load average at the start {load_start[0]:.1f} / {load_start[1]:.1f} / "
                      f"{load_start[2]:.1f}, at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"ratio={rebuilds[-1][1] / ours_wall:.3f}" if rebuilds else "ratio=n/a (--no-incremental)")


if __name__ == "__main__":
    main()
