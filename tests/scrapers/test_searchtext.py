"""The fast segmenter (rjieba) must index and query exactly as Python jieba does."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.synthetic import export, post_text
from catalog import searchtext
from catalog.searchtext import _CJK_RUN, document_text, fold, query_terms
from scrapers import formats

SAMPLES = sorted((Path(searchtext.__file__).parent / "sample").glob("*.json"))

pytest.importorskip("rjieba")


@pytest.fixture(scope="module")
def segmenters():
    return searchtext._load("jieba"), searchtext._load("rjieba")


def _texts() -> list[str]:
    """Titles and bodies of the sample corpus and of a synthetic export (5% of it Chinese)."""
    out = []
    for path in SAMPLES:
        for rec in formats.read(path):
            out += [rec.title, rec.text]
    out += [m["text"] for m in export(2000)["messages"]]
    return out


def test_the_corpus_has_chinese_to_compare():
    chinese = [t for t in _texts() if _CJK_RUN.search(t)]
    assert len(chinese) >= 100
    assert any(p.name == "papers_zh.json" for p in SAMPLES)


def test_rjieba_indexes_every_text_as_jieba_does(segmenters):
    reference, fast = segmenters
    for text in _texts():
        assert document_text(text, segmenter=fast) == document_text(text, segmenter=reference), text


def test_rjieba_reads_every_query_as_jieba_does(segmenters):
    reference, fast = segmenters
    # queries: every Chinese run of the corpus whole, and random slices of them (which cut words)
    rng = random.Random(5)
    runs = sorted({run for t in _texts() for run in _CJK_RUN.findall(fold(t))})
    queries = runs + [r[a:a + rng.randint(2, 8)] for r in runs for a in [rng.randrange(len(r))]]
    queries += [post_text(rng, i) for i in range(50)]
    for q in queries:
        assert query_terms(q, segmenter=fast) == query_terms(q, segmenter=reference), q


def test_the_default_segmenter_is_rjieba():
    import rjieba

    assert searchtext._segmenter() is rjieba
