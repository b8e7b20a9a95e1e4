"""Benchmark: what atomic publishing costs an incremental build (issue 31).

    python bench/publish.py [--posts 10000] [--papers 2000] [--tags 500] [--baseline ab0d832]

A build now writes the next generation of the site beside the served one and flips a symlink
(catalog/sitegen/swap.py): it brings the standby generation (the site before the last flip)
up to date, and only the first rebuild, which has no standby yet, hard-links every file of
the served site; before, it wrote the changed files in place. This times, on one synthetic catalog (bench/site.py's) and in the
same run, `digest site build` of this checkout against the `catalog` package of git revision
BASELINE (exported with `git archive`, first on PYTHONPATH): a full build each, a rebuild
with nothing changed (ours: the one that links), and a rebuild after 100 new posts (ours:
from the standby). It also times hard-linking and removing the whole built site alone (what
the first rebuild pays once, and what a build would pay each time without a standby). Prints a table; the last line is ratio=<ours/baseline> for the +100
rebuild.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import io
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import synthetic_records  # noqa: E402
from catalog.db import open_db  # noqa: E402
from catalog.ingest import ingest_records  # noqa: E402
from catalog.related import ensure_related  # noqa: E402
from catalog.sitegen.swap import link_tree, remove_tree  # noqa: E402


def export(rev: str, folder: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "catalog"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def build(db: Path, out: Path, pythonpath: Path | None, *extra: str) -> float:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = ("import sys, catalog; assert catalog.__file__.startswith(sys.argv[1]), catalog.__file__; "
            "sys.argv = ['digest'] + sys.argv[2:]; from catalog.cli import app; app()")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(pythonpath or ROOT), "--db", str(db), "site", "build",
                           "--out", str(out), *extra], env=env, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"build failed ({pythonpath or 'ours'}):\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=2_000)
    ap.add_argument("--tags", type=int, default=500)
    ap.add_argument("--baseline", default="ab0d832", help="git revision whose catalog/ builds in place")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        tmp = Path(tmp)
        base = export(args.baseline, tmp / "baseline")
        db = tmp / "bench.db"
        engine = open_db(db)
        ingest_records(engine, synthetic_records(args.posts, args.papers, args.tags))
        ensure_related(engine)
        rows = []
        sides = (("baseline", base, tmp / "out-base"), ("ours", None, tmp / "out-ours"))
        for name, path, out in sides:
            rows.append((name, "full build", build(db, out, path, "--full")))
        for name, path, out in sides:
            rows.append((name, "rebuild, nothing changed", build(db, out, path)))
        ingest_records(engine, synthetic_records(100, args.papers, args.tags, seed=1, start=args.posts))
        ensure_related(engine)
        for name, path, out in sides:
            rows.append((name, "rebuild, +100 posts", build(db, out, path)))
        site = (tmp / "out-ours" / "site").resolve()
        files = sum(len(f) for _, _, f in os.walk(site))
        t0 = time.perf_counter()
        link_tree(site, tmp / "linked")
        t1 = time.perf_counter()
        remove_tree(tmp / "linked")
        t2 = time.perf_counter()
        rows += [("ours", f"hard-link the site ({files:,} files)", t1 - t0), ("ours", "remove a generation", t2 - t1)]
    print(f"{args.posts:,} posts, {args.papers:,} papers, {args.tags} tags; baseline {args.baseline}")
    print(f"{'side':<9} {'step':<40} {'seconds':>8}")
    for side, step, seconds in rows:
        print(f"{side:<9} {step:<40} {seconds:8.2f}")
    plus = {side: s for side, step, s in rows if step == "rebuild, +100 posts"}
    print(f"ratio={plus['ours'] / plus['baseline']:.3f}")


if __name__ == "__main__":
    main()
