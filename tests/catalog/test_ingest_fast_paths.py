"""Every speed-up of ingest (issue 20) gives exactly what the plain path gives.

The fast paths: rjieba for the search text, a forked parser process, byte-counted
scripts in language detection, compact pickling of records between processes. Each
test runs the plain path and the fast one on the sample corpus plus a synthetic
export (ru/en/zh) and compares a full dump of the catalog.
"""

from __future__ import annotations

import pickle
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import inspect

from bench.synthetic import export, write_export
from catalog import ingest_parser, searchtext
from catalog.db import open_db
from catalog.ingest import ingest_paths
from scrapers import normalize
from scrapers.records import Link, PostRecord, SourceRecord

CLOCK_COLUMNS = {"ingested_at", "updated_at", "created_at", "fetched_at", "synced_at"}  # "now" at write time


def full_dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table, without write-time clocks, as ((column, value), ...) in a stable order.

    The tables are the engine's own list, less SQLite's FTS5 index tables (the index of
    post_search; PostgreSQL's is a column of post_search itself, compared with the rest).
    """
    out = {}
    with engine.connect() as c:
        for table in sorted(t for t in inspect(c).get_table_names() if not t.startswith("post_fts")):
            cur = c.exec_driver_sql(f"SELECT * FROM {table}")
            keep = [(i, col) for i, col in enumerate(cur.keys()) if col not in CLOCK_COLUMNS]
            out[table] = sorted((tuple((col, row[i]) for i, col in keep) for row in cur), key=repr)
    return out


def reference_script_counts(body: str) -> dict[str, int]:
    """What detect_language counted before: the lengths of each script's regex matches."""
    return {lang: sum(map(len, rx.findall(body))) * normalize._WEIGHT.get(lang, 1)
            for lang, rx in normalize._SCRIPTS.items()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample_files):
    big = write_export(tmp_path_factory.mktemp("export") / "synthetic.json", 1500, seed=3)
    return [*sample_files, big]


def _ingest(target, files) -> dict[str, list[tuple]]:
    engine = open_db(target)
    try:
        stats = ingest_paths(engine, files)
        assert stats.posts > 1500
        return full_dump(engine)
    finally:
        engine.dispose()


def test_fast_paths_build_the_same_catalog_as_the_plain_ones(fresh_target, corpus, monkeypatch):
    pytest.importorskip("rjieba")
    # plain: Python jieba, regex script counts, parsing in this process
    with monkeypatch.context() as m:
        m.setattr(searchtext, "_loaded", searchtext._load("jieba"))
        m.setattr(normalize, "script_counts", reference_script_counts)
        m.setenv("DIGEST_PARALLEL_PARSE", "0")
        plain = _ingest(fresh_target(), corpus)
    # fast: rjieba, byte counts, every file (even the small samples) parsed by the forked child
    monkeypatch.setattr(searchtext, "_loaded", searchtext._load("rjieba"))
    monkeypatch.setattr(ingest_parser, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_parser.os, "cpu_count", lambda: 2)
    fast = _ingest(fresh_target(), corpus)
    assert plain["post"] and plain["post_search"] and plain["link"]
    assert any("模型" in dict(row)["body"] for row in plain["post_search"])  # Chinese went through the segmenter
    for table in plain:
        assert fast[table] == plain[table], table


def test_script_counts_match_the_regex_counts_on_the_corpus():
    texts = [m["text"] for m in export(3000, seed=9)["messages"]]
    texts += ["", "abc", "Модель — это «слой» 2020", "نموذج model", "注意力机制 attention", "ёЁ ӿ Ѐ", "\ud800x"]
    for text in texts:
        assert normalize.script_counts(text) == reference_script_counts(text), text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFFFF), max_size=80))
def test_script_counts_match_the_regex_counts_on_any_text(text):
    assert normalize.script_counts(text) == reference_script_counts(text)


def test_records_survive_the_trip_between_processes():
    src = SourceRecord(kind="telegram", handle="channel7", title="Bench", channel_id=7)
    rec = PostRecord(source=src, external_id="5", published_at=datetime(2021, 3, 4, tzinfo=timezone.utc),
                     text="t", raw="{}", title="t", hashtags=("nlp",), arxiv_ids=("2004.13342",),
                     arxiv_versions=(("2004.13342", 2),), links=(Link("https://arxiv.org/abs/2004.13342", "arxiv"),),
                     language="en", views=3, extra=(("author", "x"),))
    back = pickle.loads(pickle.dumps([rec, rec], protocol=pickle.HIGHEST_PROTOCOL))
    assert back == [rec, rec] and back[0].links[0].kind == "arxiv" and back[0].source == src


REFERENCE_CANDIDATE = re.compile(r"\d{4}\.\d{4}|/\d{7}")  # the arXiv candidate scan as first written


def _same_candidates(text: str) -> bool:
    return [m.span() for m in normalize._CANDIDATE.finditer(text)] == \
        [m.span() for m in REFERENCE_CANDIDATE.finditer(text)]


def test_arxiv_candidates_match_the_plain_pattern_on_the_corpus():
    texts = [m["text"] for m in export(2000, seed=11)["messages"]]
    texts += ["12345.67890.1234 /1234567 x/12345678 ١٢٣٤.٥٦٧٨ arXiv:2004.13342v2 hep-th/9901001 1.2004.13"]
    assert all(_same_candidates(t) for t in texts)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789./v ٣a"), max_size=60))
def test_arxiv_candidates_match_the_plain_pattern_on_any_text(text):
    assert _same_candidates(text)
