"""The demo as a library function: no CLI knowledge, a report the CLI prints."""

from __future__ import annotations

import subprocess
import sys

from catalog.db import open_db
from catalog.demo import DEMO_QUERIES, run_demo


def test_demo_library_does_not_import_the_cli():
    code = "import sys, catalog.demo; print(sorted(m for m in sys.modules if m == 'typer' or m.startswith('catalog.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_demo_offline_returns_what_it_did(tmp_path):
    engine = open_db(tmp_path / "demo.db")
    report = run_demo(engine, build_site=False, offline=True)
    assert report.ingest.posts == 29 and report.ingest.posts_new == 29
    assert report.arxiv.offline and report.arxiv.requests == 0 and report.arxiv.pending
    assert [q for q, _ in report.searches] == list(DEMO_QUERIES)
    assert all(hits for _, hits in report.searches)  # each language of the sample finds something
    assert report.site is None
    again = run_demo(engine, build_site=False, offline=True)
    assert again.ingest.posts_unchanged == 29 and again.ingest.posts_new == 0
    engine.dispose()
