"""Ingest throughput: `catalog.ingest` against the sqlite-utils CLI a user would pick instead.

    python bench/ingest.py [--posts 100000] [--db URL]

The same synthetic Telegram export goes three ways:

- ours: `catalog.ingest` (new posts), then the same file again (unchanged: re-ingest);
- sqlite-utils: what a user of that tool does with an export: pull the messages out (id, date,
  channel, text; here a small Python step, where a user would reach for jq), pipe them as
  newline-delimited JSON into ``sqlite-utils insert``, then ``sqlite-utils enable-fts`` on
  the text. Timed end to end, both processes of the pipe included;
- the raw baseline, for reference only: json.load + one executemany + an FTS5 rebuild.

``--db`` puts our side on that catalog instead of a temporary SQLite file (e.g. an empty
PostgreSQL database, ``postgresql+psycopg://…``); the other two stay SQLite.

Prints a table and, last, ``ratio=<ours/sqlite-utils>`` (wall time of the new-post ingest;
lower is better). Targets (issue 33): ratio <= 1.5; >= 10,000 new posts/s at 100k posts;
>= 50,000 posts/s for a re-ingest of the unchanged export.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic import write_export  # noqa: E402


def baseline(path: Path, db: Path) -> int:
    """The least a tool must do: read the JSON, insert text rows, index them with FTS5."""
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE post(id INTEGER PRIMARY KEY, ext TEXT, date TEXT, text TEXT)")
    con.execute("CREATE VIRTUAL TABLE post_fts USING fts5(text, content='post', content_rowid='id')")
    rows = [(m["id"], str(m["id"]), m["date"], m["text"]) for m in data["messages"] if m.get("type") == "message"]
    with con:
        con.executemany("INSERT INTO post(id, ext, date, text) VALUES (?,?,?,?)", rows)
        con.execute("INSERT INTO post_fts(post_fts) VALUES ('rebuild')")
    con.close()
    return len(rows)


# What a user's jq step would do: the messages as newline-delimited JSON, with the channel.
_EXTRACT = """
import json, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
out = sys.stdout
for m in data["messages"]:
    if m.get("type") == "message":
        text = m["text"] if isinstance(m["text"], str) else "".join(
            t if isinstance(t, str) else t.get("text", "") for t in m["text"])
        out.write(json.dumps({"id": m["id"], "date": m["date"], "channel": data["name"], "text": text},
                             ensure_ascii=False) + "\\n")
"""


def sqlite_utils_cli() -> str:
    exe = Path(sys.executable).with_name("sqlite-utils")
    found = str(exe) if exe.exists() else shutil.which("sqlite-utils")
    if not found:
        raise SystemExit("bench: the sqlite-utils CLI is missing (pip install -e '.[dev]')")
    return found


def sqlite_utils(path: Path, db: Path) -> int:
    """``extract | sqlite-utils insert db messages - --nl --pk id`` then ``sqlite-utils enable-fts db messages text``."""
    cli = sqlite_utils_cli()
    extract = subprocess.Popen([sys.executable, "-c", _EXTRACT, str(path)], stdout=subprocess.PIPE)
    subprocess.run([cli, "insert", str(db), "messages", "-", "--nl", "--pk", "id"], stdin=extract.stdout,
                   check=True)
    extract.stdout.close()
    if extract.wait() != 0:
        raise SystemExit("bench: the extract step failed")
    subprocess.run([cli, "enable-fts", str(db), "messages", "text", "--fts5"], check=True)
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'post'").fetchone()[0]
    con.close()
    return n


def ours(path: Path, db: Path | str) -> int:
    from catalog.db import open_db
    from catalog.ingest import ingest_file

    engine = open_db(db)
    stats = ingest_file(engine, path)
    engine.dispose()
    return stats.posts


def _engine_name(target) -> str:
    from catalog.db import catalog_url

    return catalog_url(target).get_backend_name()


def _require_empty(target) -> None:
    from catalog.db import open_db
    from catalog.queries import counts

    engine = open_db(target)
    try:
        if counts(engine)["post"]:
            raise SystemExit(f"bench: {target} already holds posts; give an empty catalog")
    finally:
        engine.dispose()


def timed(fn, *args) -> tuple[float, int]:
    t = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--db", help="catalog for our side (a path or URL; must hold no posts yet)")
    args = ap.parse_args()
    import catalog.ingest  # noqa: F401  (import cost is not ingest cost)
    from catalog.searchtext import _segmenter

    _segmenter()  # the segmenter's dictionary load is a one-off start-up cost, not per-post work
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = write_export(tmp / "export.json", args.posts)
        size_mb = src.stat().st_size / 1e6
        t_base, n_base = timed(baseline, src, tmp / "base.db")
        t_su, n_su = timed(sqlite_utils, src, tmp / "sqlite-utils.db")
        target = args.db or tmp / "ours.db"
        _require_empty(target)
        t_ours, n_ours = timed(ours, src, target)
        t_again, _ = timed(ours, src, target)
    print(f"{'path':<28}{'posts':>10}{'seconds':>10}{'posts/s':>12}")
    print(f"{'sqlite-utils insert+fts':<28}{n_su:>10}{t_su:>10.2f}{n_su / t_su:>12,.0f}")
    print(f"{'baseline (json+executemany)':<28}{n_base:>10}{t_base:>10.2f}{n_base / t_base:>12,.0f}")
    print(f"{'ours: ingest (new)':<28}{n_ours:>10}{t_ours:>10.2f}{n_ours / t_ours:>12,.0f}")
    print(f"{'ours: re-ingest (unchanged)':<28}{n_ours:>10}{t_again:>10.2f}{n_ours / t_again:>12,.0f}")
    print(f"input: {size_mb:.1f} MB; ours on {_engine_name(target)}")
    print(f"ours/baseline={t_ours / t_base:.2f} (reference only)")
    print(f"ratio={t_ours / t_su:.2f}")


if __name__ == "__main__":
    main()
