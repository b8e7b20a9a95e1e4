"""Search that understands word forms (issue 30): Snowball stems on both engines, typed forms first,
quoted phrases exact, and the migration that gives an existing catalog its stems.

Expected post sets come from the indexed text itself, read with regular expressions
written here for each word family (not from the stemmer), and the stems in the unit
tests are the ones the Snowball rules give, written out by hand.
"""

from __future__ import annotations

import re

import pytest

from catalog.db import open_db
from catalog.ingest import ingest_file, ingest_paths
from catalog.search import search
from catalog.searchtext import document_text, match_expression, parse_query
from catalog.stemming import stem_text
from support.helpers import message, telegram_export, write_json

# The issue's table: a reader's query, and every form of the word it means.
DEMO = [
    ("регуляризация", r"регуляризаци\w*"),
    ("регуляризации", r"регуляризаци\w*"),
    ("трансформеров", r"трансформер\w*"),
    ("трансформер", r"трансформер\w*"),
    ("heads", r"\bheads?\b"),
    ("head", r"\bheads?\b"),
]


def posts_with(engine, pattern: str) -> set[int]:
    """Posts whose indexed title or body holds a word of the family `pattern` describes."""
    with engine.connect() as c:
        rows = c.exec_driver_sql("SELECT post_id, title, body FROM post_search").all()
    return {pid for pid, title, body in rows if re.search(pattern, title) or re.search(pattern, body)}


def ids(engine, query: str, **kw) -> list[int]:
    return [h.id for h in search(engine, query, limit=100, **kw)]


@pytest.mark.parametrize("query, family", DEMO)
def test_the_issue_table_finds_every_form(sample_engine, query, family):
    expected = posts_with(sample_engine, family)
    assert set(ids(sample_engine, query)) == expected


def test_the_issue_table_has_real_hits(sample_engine):
    # Before stemming: регуляризации, трансформер and head found nothing; регуляризация 4 posts.
    assert len(posts_with(sample_engine, DEMO[0][1])) >= 4
    assert len(posts_with(sample_engine, DEMO[2][1])) >= 2
    assert len(posts_with(sample_engine, DEMO[4][1])) >= 1
    with sample_engine.connect() as c:  # and the inflected forms are really absent as typed
        bodies = " ".join(r[0] + " " + r[1] for r in c.exec_driver_sql("SELECT title, body FROM post_search"))
    assert not re.search(r"\bhead\b", bodies)
    assert not re.search(r"\bтрансформер\b", bodies)


def _pairs(engine, tmp_path, pairs: list[tuple[str, str]]) -> dict[str, int]:
    messages = [message(i, f"{title}\n{body}") for i, (title, body) in enumerate(pairs, 1)]
    ingest_file(engine, write_json(tmp_path / "forms.json", telegram_export(messages)))
    return {title: i for i, (title, _) in enumerate(pairs, 1)}


def test_the_typed_form_ranks_first_at_equal_relevance(engine, tmp_path):
    posts = _pairs(engine, tmp_path, [
        ("Регуляризация моделей", "Заметка о весах"), ("Регуляризации моделей", "Заметка о весах"),
        ("Multi-head attention", "a short note"), ("Multi-heads attention", "a short note"),
    ])
    for typed in ("Регуляризация моделей", "Регуляризации моделей", "Multi-head attention", "Multi-heads attention"):
        word = typed.split()[0].lower()
        found = ids(engine, word)
        assert len(found) == 2, (word, found)  # both forms match ...
        assert found[0] == posts[typed], word  # ... the typed one first


def test_quoted_phrases_stay_exact(engine, tmp_path):
    posts = _pairs(engine, tmp_path, [
        ("Attention heads pruned", "x"), ("Attention head pruned", "x"), ("Heads of attention", "x"),
    ])
    assert set(ids(engine, "attention heads")) == set(posts.values())  # unquoted: any form, any order
    assert ids(engine, '"attention heads"') == [posts["Attention heads pruned"]]  # adjacent, as typed
    assert set(ids(engine, '"heads"')) == {posts["Attention heads pruned"], posts["Heads of attention"]}
    assert ids(engine, '"head" pruned') == [posts["Attention head pruned"]]


def test_a_hyphenated_phrase_matches_adjacent_stems_only(engine, tmp_path):
    # PostgreSQL narrows a phrase by its adjacent stem pairs before checking positions:
    # the same posts as FTS5's phrase, and the words must be side by side, in one column.
    posts = _pairs(engine, tmp_path, [
        ("Attention heads pruned", "x"), ("Attention head pruned", "x"), ("Heads of attention", "x"),
        ("Pruned attention", "elsewhere the heads"),
    ])
    both = {posts["Attention heads pruned"], posts["Attention head pruned"]}
    assert set(ids(engine, "attention-heads")) == both
    assert set(ids(engine, "attention-head")) == both
    assert set(ids(engine, "heads-pruned")) == both
    assert ids(engine, "pruned-attention-head") == []


def test_yo_and_ye_are_one_letter_in_every_form(engine, tmp_path):
    posts = _pairs(engine, tmp_path, [("Ёмкая статья", "о свёртках"), ("Другая заметка", "про сверточные сети")])
    assert ids(engine, "емкие") == [posts["Ёмкая статья"]]
    assert ids(engine, "свёртки") == [posts["Ёмкая статья"]]


def test_short_and_chinese_queries_are_as_before(sample_engine):
    # One or two characters: a substring of the indexed or raw text, never a stem.
    with sample_engine.connect() as c:
        rows = c.exec_driver_sql("SELECT p.id, p.text, s.title, s.body FROM post p"
                                 " JOIN post_search s ON s.post_id = p.id").all()
    assert set(ids(sample_engine, "he")) == {pid for pid, text, title, body in rows
                                             if "he" in title or "he" in body or "he" in text}
    # Chinese: its segmentation, untouched by the stemmer.
    assert set(ids(sample_engine, "注意力")) == posts_with(sample_engine, "注意力") != set()


@pytest.mark.parametrize("text, stems", [
    ("регуляризации трансформеров", "регуляризац трансформер"),
    ("головы внимания", "голов вниман"),
    ("attention heads learned", "attent head learn"),
    ("gpt4 bert_base 2004 04092", "gpt4 bert base 2004 04092"),  # digits stay; "_" splits as both indexes do
    ("自注意力机制", "自 注意 注意力 机制"),  # Chinese keeps its segmentation (cut_for_search), unstemmed
    ("transformerы", "transformы"),  # a mixed token: each run in its own language
])
def test_stems_by_script(text, stems):
    assert stem_text(document_text(text)) == stems


def test_match_expression_ors_the_typed_form_over_the_stems():
    assert match_expression(parse_query('NEAR( "Heads" y*')) == (
        '{title body}: "heads"'
        ' AND ({title body}: "near" OR {title_stem body_stem}: "near")'
        ' AND ({title body}: "y" OR {title_stem body_stem}: "y")')
    assert match_expression(parse_query("self-attention")) == (
        '({title body}: ("self" + "attention") OR {title_stem body_stem}: ("self" + "attent"))')


def _as_before_stems(conn) -> None:
    """Put a catalog back as the release before the stems left it (migrations 1-6), its rows kept."""
    from catalog.db import MIGRATIONS

    if conn.dialect.name == "sqlite":
        for trigger in ("post_search_ad", "post_search_au"):
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
        conn.exec_driver_sql("DROP TABLE post_fts")
        conn.exec_driver_sql("ALTER TABLE post_search DROP COLUMN title_stem")
        conn.exec_driver_sql("ALTER TABLE post_search DROP COLUMN body_stem")
        for step in MIGRATIONS[1:4]:  # the two-column FTS5 table, its rank, no insert trigger
            step(conn)
        conn.exec_driver_sql("INSERT INTO post_fts(post_fts) VALUES ('rebuild')")
    else:
        conn.exec_driver_sql("ALTER TABLE post_search DROP COLUMN stem_pairs, DROP COLUMN stem_doc,"
                             " DROP COLUMN title_stem, DROP COLUMN body_stem")
        conn.exec_driver_sql("DROP FUNCTION digest_stem_pairs(text)")
    conn.exec_driver_sql("UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def test_migration_gives_an_existing_catalog_its_stems(db_target, sample_files):
    engine = open_db(db_target)
    ingest_paths(engine, sample_files)
    fresh = {q: ids(engine, q) for q, _ in DEMO}
    with engine.begin() as c:
        _as_before_stems(c)
        before = c.exec_driver_sql("SELECT count(*) FROM post_search").scalar()
    engine.dispose()
    engine = open_db(db_target)  # runs the stem migration
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM post_search WHERE title_stem <> ''").scalar() == before
        assert {q: ids(engine, q) for q, _ in DEMO} == fresh
        assert set(ids(engine, "регуляризации")) == posts_with(engine, DEMO[1][1])
    finally:
        engine.dispose()
