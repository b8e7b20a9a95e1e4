"""Detection, the real samples end to end, and hostile input for every parser."""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.ingest import ingest_paths
from catalog.search import Filters, search
from support.helpers import dump, message, seed, shared_path, telegram_export, write_json
from scrapers import formats
from scrapers.errors import ParseError
from test_blog_listing import LISTING, TEXT as BLOG_TEXT
from test_hashtag_dump import DUMP as HASHTAG_DUMP
from test_mirror_page import PAGE as MIRROR_PAGE
from test_archive_text import DUMP as ARCHIVE_DUMP
from test_telegram_html import EXPORT as HTML_EXPORT
from test_tme_preview import PAGE as TME_PAGE

SAMPLES = {
    "telegram-json": json.dumps(telegram_export([message(1, "hello #nlp https://arxiv.org/abs/2004.13342")])),
    "telegram-html": HTML_EXPORT,
    "tme-preview": TME_PAGE,
    "blog-listing": BLOG_TEXT,
    "mirror-page": MIRROR_PAGE,
    "archive-text": ARCHIVE_DUMP,
    "hashtag-dump": HASHTAG_DUMP,
}


def test_every_format_is_registered_and_described():
    assert set(formats.names()) == set(SAMPLES)
    assert all(desc for _, desc in formats.describe())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_detection_by_content_not_name(tmp_path, name):
    path = tmp_path / "misleading.json"  # the name says JSON whatever the content is
    path.write_text(SAMPLES[name], encoding="utf-8")
    assert formats.detect(path).NAME == name
    assert list(formats.read(path))
    assert list(formats.read(path, format=name)) == list(formats.read(path))


def test_blog_html_detected(tmp_path):
    path = tmp_path / "index.html"
    path.write_text(LISTING, encoding="utf-8")
    assert formats.detect(path).NAME == "blog-listing"


def test_unknown_format_names_the_formats_tried(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just a shopping list\nmilk\neggs\n", encoding="utf-8")
    with pytest.raises(ParseError) as err:
        formats.detect(path)
    assert all(n in str(err.value) for n in formats.names()) and "--format" in str(err.value)
    with pytest.raises(KeyError, match="unknown format 'nope'"):
        formats.read(path, format="nope")


# ------------------------------------------------------------ the real samples

SEED_COUNTS = {"000": 11, "001": 1, "002": 6, "003": 8, "004": 11}


def test_every_seed_ingests_once_and_is_searchable(engine):
    seeds = [seed(p) for p in SEED_COUNTS]
    stats = ingest_paths(engine, seeds)
    assert stats.files == 5 and stats.posts_new == sum(SEED_COUNTS.values())
    before = dump(engine)
    again = ingest_paths(engine, seeds)
    assert again.posts_new == again.posts_updated == 0 and dump(engine) == before

    def titles(query, **f):
        return [h.title for h in search(engine, query, filters=Filters(**f) if f else None)]

    assert any("DropHead" in t for t in titles("регуляризация"))  # Russian
    assert any("NVAE" in t for t in titles("变分自编码器") + titles("生成的图像"))  # Chinese
    assert any(t.startswith("Optimus") for t in titles("latent space"))  # English
    assert any(t.startswith("Optimus") for t in titles("vae", tag="bert"))  # by hashtag
    assert len(search(engine, "transformer", filters=Filters(tag="nlp"), limit=50)) >= 5
    with engine.connect() as c:
        per_source = dict(c.exec_driver_sql(
            "SELECT s.kind || ':' || s.handle, count(*) FROM post p JOIN source s ON s.id = p.source_id"
            " GROUP BY 1").all())
    assert per_source["telegram:gonzo_ML"] == 1 and per_source["blog:kexue.fm"] == 8


def test_seed_cli_ingest_zero_errors(cli):
    folder = shared_path("seeds")
    result = cli("ingest", str(folder), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["posts_new"] == sum(SEED_COUNTS.values())


def test_fixture_export_streams_like_json_load():
    from scrapers import telegram_json

    path = shared_path("fixtures", "telegram", "uponthepathofsalaf_result.json")
    streamed = list(telegram_json.parse_file(path))
    # A decoded export has no raw text to digest: the digests are the only difference.
    assert all(r.raw_digest for r in streamed) and len({r.raw_digest for r in streamed}) == len(streamed)
    assert [replace(r, raw_digest="") for r in streamed] == list(telegram_json.parse_export(json.loads(path.read_bytes())))
    assert len(streamed) == 208


# ------------------------------------------------------------ hostile input

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(path: Path, name: str | None) -> None:
    """Either records come out, or ParseError naming the file; nothing else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for record in formats.read(path, format=name):
                assert record.external_id
        except ParseError as exc:
            assert str(path) in str(exc)


@FUZZ
@given(data=st.binary(max_size=2000), name=st.sampled_from([None, *SAMPLES]))
def test_random_bytes(tmp_path, data, name):
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    _check(path, name)


@FUZZ
@given(name=st.sampled_from(sorted(SAMPLES)), cut=st.floats(0, 1), encoding=st.sampled_from(
    ["utf-8", "utf-16", "cp1251", "gb18030", "latin-1"]))
def test_truncated_and_wrongly_encoded(tmp_path, name, cut, encoding):
    data = SAMPLES[name].encode(encoding, errors="replace")
    path = tmp_path / "input.txt"
    path.write_bytes(data[: int(len(data) * cut)])
    _check(path, name)
    _check(path, None) if path.stat().st_size else None


@FUZZ
@given(name=st.sampled_from(["telegram-html", "tme-preview", "blog-listing"]), seed_=st.integers(0, 10_000))
def test_html_with_elements_missing(tmp_path, name, seed_):
    rng = random.Random(seed_)
    html = SAMPLES[name] if name != "blog-listing" else LISTING
    # drop a random share of closing and opening tags
    pieces = html.split("<")
    kept = [p for i, p in enumerate(pieces) if i == 0 or rng.random() > 0.3]
    path = tmp_path / "page.html"
    path.write_text("<".join(kept), encoding="utf-8")
    _check(path, name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_ten_megabyte_single_line(tmp_path, name):
    path = tmp_path / "long.txt"
    path.write_bytes(SAMPLES[name].encode()[:200] + b"x" * (10 * 1024 * 1024) + b"\n")
    _check(path, name)


def test_deeply_nested_json(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"name": "x", "id": 1, "messages": [' + "[" * 100_000 + "]" * 100_000 + "]}")
    with pytest.raises(ParseError, match=r"deep\.json .*(nested too deeply|message #0)"):
        list(formats.read(path))


def test_bad_file_changes_nothing_and_cli_prints_one_line(catalog_cli, engine, tmp_path):
    good = write_json(tmp_path / "good.json", telegram_export([message(1, "kept #nlp")]))
    assert catalog_cli("ingest", str(good)).exit_code == 0
    before = dump(engine)
    bad = tmp_path / "bad.json"
    text = json.dumps(telegram_export([message(i, f"post {i}") for i in range(2, 500)]))
    bad.write_text(text[: len(text) // 2])
    result = catalog_cli("ingest", str(bad))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "bad.json" in result.stderr and "Traceback" not in result.output
    assert dump(engine) == before
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("nothing recognisable here\n")
    result = catalog_cli("ingest", str(unknown))
    assert result.exit_code == 1 and "tried: telegram-json" in result.stderr


def test_nul_characters_are_dropped_alike_on_both_engines(engine, tmp_path):
    """A PostgreSQL text value cannot hold NUL: a post carrying some is stored without them, on SQLite too."""
    export = telegram_export([message(1, "before\x00after #nlp https://example.org/a\x00b")])
    path = write_json(tmp_path / "nul.json", export)  # JSON escapes it as \u0000
    assert ingest_paths(engine, [path]).posts_new == 1
    with engine.connect() as c:
        text, url = c.exec_driver_sql("SELECT p.text, l.url FROM post p JOIN link l ON l.post_id = p.id").one()
    assert (text, url) == ("beforeafter #nlp https://example.org/ab", "https://example.org/ab")
    assert ingest_paths(engine, [path]).posts_unchanged == 1


def test_cli_formats_listing(cli):
    result = cli("ingest", "--formats")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == formats.names()
