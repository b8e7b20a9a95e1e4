"""Concurrent writers: N `digest ingest` processes at once vs the same files ingested one after another.

    python bench/concurrent_ingest.py --db URL [--writers 4] [--posts 25000]

Each writer ingests its own channel (a synthetic export of ``--posts`` posts; the
channels share hashtags and arXiv ids, so writers meet on the tag and paper rows).
Both runs start from an empty catalog: ``--db`` names a PostgreSQL server database
(``postgresql+psycopg://…/DB``; the bench creates and drops ``DB_seq`` and ``DB_par``
beside it) or a folder for SQLite files. Prints a table, checks that no post was lost,
and, last, ``ratio=<concurrent / sequential>`` (wall time; lower is better).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.synthetic import export  # noqa: E402

WRITER = "import sys; from catalog.db import open_db; from catalog.ingest import ingest_file; " \
         "print(ingest_file(open_db(sys.argv[1]), sys.argv[2]).posts_new)"


def channel_file(folder: Path, n: int, channel: int) -> Path:
    data = export(n, seed=channel)
    data["id"], data["name"] = 1000 + channel, f"Bench channel {channel}"
    path = folder / f"channel{channel}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def fresh_catalog(base: str, name: str) -> str:
    """An empty catalog target named `name` beside `base` (a new PG database, or a file in a folder)."""
    if "://" not in base:
        path = Path(base) / f"{name}.db"
        path.unlink(missing_ok=True)
        return str(path)
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(base)
    db = f"{url.database}_{name}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")  # a maintenance DB
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        c.exec_driver_sql(f"CREATE DATABASE \"{db}\" TEMPLATE template0 ENCODING 'UTF8'"
                          " LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'")
    admin.dispose()
    return url.set(database=db).render_as_string(hide_password=False)


def run_writers(target: str, files: list[Path], *, concurrent: bool) -> tuple[float, list[int]]:
    from catalog.db import open_db

    open_db(target).dispose()  # the schema first, so the timing is the writing
    t = time.perf_counter()
    cmd = [sys.executable, "-c", WRITER, target]
    if concurrent:
        procs = [subprocess.Popen([*cmd, str(f)], stdout=subprocess.PIPE, cwd=REPO) for f in files]
        outs = [p.communicate()[0] for p in procs]
        codes = [p.returncode for p in procs]
    else:
        done = [subprocess.run([*cmd, str(f)], stdout=subprocess.PIPE, cwd=REPO) for f in files]
        outs, codes = [d.stdout for d in done], [d.returncode for d in done]
    elapsed = time.perf_counter() - t
    if any(codes):
        raise SystemExit(f"bench: a writer failed (exit codes {codes})")
    return elapsed, [int(o.strip()) for o in outs]


def stored_posts(target: str) -> int:
    from catalog.db import open_db
    from catalog.queries import counts

    engine = open_db(target)
    n = counts(engine)["post"]
    engine.dispose()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a PostgreSQL URL, or a folder for SQLite files")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--posts", type=int, default=25_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = [channel_file(Path(tmp), args.posts, c) for c in range(args.writers)]
        seq_target, par_target = fresh_catalog(args.db, "seq"), fresh_catalog(args.db, "par")
        t_seq, new_seq = run_writers(seq_target, files, concurrent=False)
        t_par, new_par = run_writers(par_target, files, concurrent=True)
    total = args.writers * args.posts
    rows = [("one after another", t_seq, sum(new_seq), stored_posts(seq_target)),
            (f"{args.writers} writers at once", t_par, sum(new_par), stored_posts(par_target))]
    print(f"{'path':<22}{'seconds':>10}{'posts/s':>10}{'reported':>10}{'stored':>10}")
    for name, t, reported, stored in rows:
        print(f"{name:<22}{t:>10.1f}{total / t:>10,.0f}{reported:>10}{stored:>10}")
    lost = [name for name, _, reported, stored in rows if stored != total or reported != total]
    print("lost rows: none" if not lost else f"lost rows in: {', '.join(lost)}")
    print(f"ratio={t_par / t_seq:.2f}")
    if lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
