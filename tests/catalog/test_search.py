"""catalog.search: three languages, hostile queries, short queries, filters, ranking."""

from __future__ import annotations

import re

import pytest

from catalog.errors import UsageError
from catalog.ingest import ingest_file
from catalog.search import Filters, parse_date, search
from catalog.searchtext import fold, match_expression, parse_query, query_terms
from support.helpers import message, telegram_export, write_json


def titles(hits):
    return [h.title for h in hits]


@pytest.mark.parametrize("query, expected", [
    ("головы внимания", "Scheduled DropHead: регуляризация трансформеров"),  # Russian, inflected as written
    ("Ёмкая статья", "Напоминание: ResNet"),  # ё folds to е on both sides
    ("scale-shift-invariant", "Weight decay is not what you think"),  # English, hyphenated
    ("interpolation", "Optimus (arXiv:2004.04092) organises sentences"),
    ("注意力", "自注意力机制只需要十五行代码"),  # Chinese, segmented with jieba
    ("后验坍缩", "Optimus:用预训练模型组织句子的隐空间"),
    ("谱正则化", "NVAE:深度层次变分自编码器"),
])
def test_finds_posts_in_three_languages(sample_engine, query, expected):
    hits = search(sample_engine, query)
    assert any(t.startswith(expected) for t in titles(hits)), titles(hits)


HOSTILE = ["self-attention", "GPT-4", "c++", '"', "*", "NEAR(", "'; DROP TABLE post; --", "a OR b", "AND",
           "title:x", "^start", "(", ")", "NOT", "{x}", "\\", "%", "_", "🔥", "\x00", "a\"b'c", "-", "–", "1e-5"]


def expected_ids(engine, query: str) -> set[int]:
    """What a hostile query must find, worked out without FTS5: its words, in order, in the indexed text.

    Every term's words must stand next to each other within the title or within the body
    (an FTS5 phrase); terms may sit in different columns. Queries of one or two
    characters are literal substrings of the title, the indexed text or the raw text.
    (No word of these queries has another form in the sample corpus, so matching stems,
    as the search does, finds the same posts: tests/catalog/test_stemming.py tests the forms.)
    """
    needle = " ".join("".join(ch for ch in query if ch >= " " and ch != "\x7f").split())
    with engine.connect() as c:
        rows = c.exec_driver_sql("SELECT p.id, p.text, s.title, s.body FROM post p"
                                 " JOIN post_search s ON s.post_id = p.id").all()
    if not needle:
        return set()
    if len(needle) <= 2:
        return {pid for pid, text, title, body in rows
                if fold(needle) in title or fold(needle) in body or needle in text}
    terms = query_terms(needle)

    def has_phrase(words: list[str], tokens: list[str]) -> bool:
        return any(words[i:i + len(tokens)] == tokens for i in range(len(words)))

    found = set()
    for pid, _, title, body in rows:
        columns = [re.findall(r"\w+", title), re.findall(r"\w+", body)]
        if terms and all(any(has_phrase(col, t) for col in columns) for t in terms):
            found.add(pid)
    return found


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_find_exactly_the_posts_holding_their_words(sample_engine, query):
    hits = search(sample_engine, query, limit=100)
    assert {h.id for h in hits} == expected_ids(sample_engine, query)
    assert len(hits) == len({h.id for h in hits})


def test_hostile_queries_expect_real_hits_and_real_misses(sample_engine):
    """The oracle above is not vacuous: some hostile queries hit, others have nothing to find."""
    found = {q: len(expected_ids(sample_engine, q)) for q in HOSTILE}
    assert found["GPT-4"] == 1 and found["self-attention"] == 2 and found["c++"] >= 1
    assert found["("] >= 10 and found["_"] >= 1 and found["AND"] >= 1
    assert found['"'] == found["*"] == found["'; DROP TABLE post; --"] == found["\x00"] == 0


def test_hostile_query_finds_the_literal_words(sample_engine):
    hits = search(sample_engine, "GPT-4")
    assert any("GPT-4 class models" in h.snippet for h in hits)
    assert search(sample_engine, "self-attention")[0].title.startswith(("c++ or Python", "Self-attention"))


def test_drop_table_query_leaves_the_catalog(sample_engine):
    search(sample_engine, "'; DROP TABLE post; --")
    with sample_engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM post").scalar() == 29


def test_match_expression_quotes_every_token():
    expr = match_expression(parse_query('NEAR( "x" OR y*'))
    assert expr == ('{title body}: "x" AND ({title body}: "near" OR {title_stem body_stem}: "near")'
                    ' AND ({title body}: "or" OR {title_stem body_stem}: "or")'
                    ' AND ({title body}: "y" OR {title_stem body_stem}: "y")')


@pytest.mark.parametrize("query, expected_fragment", [
    ("BN", "Batch Normalization"),  # 2 Latin letters: substring search
    ("头", "头部丢弃"),  # 1 Han character
    ("β", "циклическое расписание β"),
])
def test_one_and_two_character_queries(sample_engine, query, expected_fragment):
    hits = search(sample_engine, query)
    assert hits and any(expected_fragment in h.snippet or expected_fragment in h.title for h in hits)


def test_percent_and_underscore_are_literal_in_short_queries(sample_engine):
    assert search(sample_engine, "%") == []  # no sample post holds a "%": LIKE's wildcard must not match all
    underscored = search(sample_engine, "_", limit=100)
    assert underscored, "the sample corpus has posts with a literal '_'"
    assert all("_" in h.snippet for h in underscored)
    with sample_engine.connect() as c:
        total = c.exec_driver_sql("SELECT count(*) FROM post").scalar()
    assert len(underscored) < total  # "_" taken as LIKE's any-character would match every post


def test_empty_query_is_a_usage_error(sample_engine):
    with pytest.raises(UsageError):
        search(sample_engine, "   ")


def test_filters(sample_engine):
    assert {h.language for h in search(sample_engine, "drophead", filters=Filters(lang="zh"))} == {"zh"}
    tagged = search(sample_engine, "drophead", filters=Filters(tag="#NLP"))
    assert tagged and all("nlp" in h.tags for h in tagged)
    by_source = search(sample_engine, "drophead", filters=Filters(source="Paper Notes (sample)"))
    assert {h.source for h in by_source} == {"Paper Notes (sample)"}
    early = search(sample_engine, "drophead", filters=Filters(until=parse_date("2020-04-26", end_of_day=True)))
    late = search(sample_engine, "drophead", filters=Filters(since=parse_date("2020-04-27")))
    assert early and late
    assert all(h.published_at.date().isoformat() <= "2020-04-26" for h in early)
    assert all(h.published_at.date().isoformat() >= "2020-04-27" for h in late)
    assert not {h.id for h in early} & {h.id for h in late}


def test_limit(sample_engine):
    assert len(search(sample_engine, "arxiv", limit=2)) == 2
    with pytest.raises(UsageError):
        search(sample_engine, "arxiv", limit=0)


def test_title_match_ranks_above_body_match(engine, tmp_path):
    write_json(tmp_path / "r.json", telegram_export([
        message(1, "Unrelated headline\nthis body mentions transformers once"),
        message(2, "Transformers everywhere\nbody without the word"),
    ]))
    ingest_file(engine, tmp_path / "r.json")
    assert [h.title for h in search(engine, "transformers")][0] == "Transformers everywhere"


def test_hits_carry_tags_arxiv_ids_and_snippet(sample_engine):
    hit = next(h for h in search(sample_engine, "NVAE") if h.language == "en")
    assert "2007.03898" in hit.arxiv_ids
    assert {"vae", "generative"} <= set(hit.tags)
    assert "NVAE" in hit.snippet
    d = hit.as_dict()
    assert {"id", "source", "url", "published_at", "snippet", "tags", "arxiv_ids"} <= set(d)


def test_bad_dates_are_usage_errors():
    with pytest.raises(UsageError):
        parse_date("2020-13-45")
    assert parse_date("2020-04-27", end_of_day=True).hour == 23
