"""The demo as a library function: no CLI knowledge, a report the CLI prints; the same site on both engines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from catalog.demo import DEMO_QUERIES, run_demo


def test_demo_library_does_not_import_the_cli():
    code = "import sys, catalog.demo; print(sorted(m for m in sys.modules if m == 'typer' or m.startswith('catalog.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_demo_offline_returns_what_it_did(engine):
    report = run_demo(engine, build_site=False, offline=True)
    assert report.ingest.posts == 29 and report.ingest.posts_new == 29
    assert report.arxiv.offline and report.arxiv.requests == 0 and report.arxiv.pending
    assert [q for q, _ in report.searches] == list(DEMO_QUERIES)
    assert all(hits for _, hits in report.searches)  # each language of the sample finds something
    assert report.site is None
    again = run_demo(engine, build_site=False, offline=True)
    assert again.ingest.posts_unchanged == 29 and again.ingest.posts_new == 0


# Pagefind writes its filters in hash-map order, which changes from one build to the next (on
# one engine too), and names these files by a hash of their bytes: only their number can match.
_PAGEFIND_HASHED = re.compile(
    r"^(pagefind/(?:shard-\d+/)?filter/\w+?_|pagefind/(?:shard-\d+/)?pagefind\.\w+?_)[0-9a-f]+(\.pf_filter|\.pf_meta)$")
_PAGEFIND_ENTRY = re.compile(r"^pagefind/(?:shard-\d+/)?pagefind-entry\.json$")


def site_files(site: Path) -> dict[str, bytes]:
    """Every file of a built site by its path; for Pagefind's order-dependent files, how many there are."""
    files: dict[str, bytes] = {}
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        rel = path.relative_to(site).as_posix()
        hashed = _PAGEFIND_HASHED.sub(r"\1#\2", rel)
        if hashed != rel:
            files[hashed] = files.get(hashed, b"") + b"+"
        elif _PAGEFIND_ENTRY.match(rel):  # names the hashed meta file
            entry = json.loads(path.read_bytes())
            for language in entry["languages"].values():
                language.pop("hash")
            files[rel] = json.dumps(entry, sort_keys=True).encode()
        else:
            files[rel] = path.read_bytes()
    return files


def demo_site(cli_for, db, folder: Path, monkeypatch) -> dict[str, bytes]:
    """`digest --db DB demo --offline` run in `folder` (it builds into ./build), and the site it built."""
    folder.mkdir()
    monkeypatch.chdir(folder)
    result = cli_for(db)("demo", "--offline")
    assert result.exit_code == 0, result.output
    return site_files(folder / "build" / "site")


def test_demo_builds_the_same_site_on_postgresql_as_on_sqlite(cli_for, db_path, empty_pg_url, tmp_path, monkeypatch):
    """Issue 19: `digest --db postgresql+psycopg://… demo` builds the site the SQLite demo builds,
    byte for byte: any order the database decides (and the two engines decide differently) shows here."""
    on_sqlite = demo_site(cli_for, db_path, tmp_path / "sqlite", monkeypatch)
    on_postgresql = demo_site(cli_for, empty_pg_url, tmp_path / "postgresql", monkeypatch)
    assert sorted(on_postgresql) == sorted(on_sqlite)
    assert sum(name.endswith(".html") for name in on_sqlite) > 50
    differ = [name for name in on_sqlite if on_postgresql[name] != on_sqlite[name]]
    assert differ == [], f"{len(differ)} files differ, first {differ[:5]}"
