"""Discovery: BibTeX, most-discussed, Atom/RSS feeds, related items — library, CLI and site."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Paper, Post, PostPaper

HOSTILE_TITLE = 'Evil <script>alert(1)</script> {braces} 100% \\input{/etc/passwd} & $x_1^2$ #tag ~home'


def set_metadata(engine, arxiv_id: str, **fields) -> None:
    with Session(engine) as s, s.begin():
        paper = s.scalars(select(Paper).where(Paper.arxiv_id == arxiv_id)).one()
        defaults = dict(status="ok", published=datetime(2020, 4, 27), primary_category="cs.CL",
                        categories=["cs.CL", "cs.LG"], fetched_at=datetime(2026, 1, 1))
        for key, value in {**defaults, **fields}.items():
            setattr(paper, key, value)


@pytest.fixture
def papers_engine(sample_engine):
    set_metadata(sample_engine, "2004.13342", title="Scheduled DropHead: A Regularization Method for "
                 "Transformer Models", authors=["Wangchunshu Zhou", "Tao Ge", "Ke Xu", "Furu Wei", "Ming Zhou"],
                 doi="10.18653/v1/2020.findings-emnlp.178", journal_ref="Findings of EMNLP 2020")
    set_metadata(sample_engine, "1706.03762", title="Attention Is All You Need",
                 authors=["Ashish Vaswani", "Noam Shazeer"], published=datetime(2017, 6, 12))
    set_metadata(sample_engine, "2007.03898", title=HOSTILE_TITLE, authors=["Jörg Müller-Lüdenscheidt"],
                 published=datetime(2020, 7, 8), primary_category="stat.ML")
    return sample_engine


# ------------------------------------------------------------------ BibTeX

def parse_bib(text: str):
    import bibtexparser

    return bibtexparser.loads(text)


def test_bibtex_entry_is_arxiv_style_and_parses_back(papers_engine):
    from catalog.bibtex import bibliography

    text, skipped = bibliography(papers_engine, ["2004.13342", "1706.03762"])
    assert skipped == []
    db = parse_bib(text)
    by_key = db.entries_dict
    assert set(by_key) == {"zhou2020scheduled", "vaswani2017attention"}
    e = by_key["zhou2020scheduled"]
    assert e["ENTRYTYPE"] == "misc"
    assert e["eprint"] == "2004.13342" and e["archiveprefix"] == "arXiv" and e["primaryclass"] == "cs.CL"
    assert e["doi"] == "10.18653/v1/2020.findings-emnlp.178"
    assert e["journal"] == "Findings of EMNLP 2020"
    assert e["year"] == "2020"
    assert e["author"].split(" and ") == ["Wangchunshu Zhou", "Tao Ge", "Ke Xu", "Furu Wei", "Ming Zhou"]
    assert e["title"] == "{Scheduled DropHead: A Regularization Method for Transformer Models}"
    assert "doi" not in by_key["vaswani2017attention"]


def test_bibtex_escapes_latex_specials_so_the_title_survives(papers_engine):
    from catalog.bibtex import bibliography

    text, _ = bibliography(papers_engine, ["2007.03898"])
    entry = parse_bib(text).entries[0]
    # every special is escaped, so braces stay balanced and nothing is a command
    for raw, escaped in (("{braces}", r"\{braces\}"), ("100%", r"100\%"), ("\\input", r"\textbackslash{}input"),
                         ("& $x_1^2$", r"\& \$x\_1\^{}2\$"), ("#tag", r"\#tag"), ("~home", r"\~{}home")):
        assert escaped in entry["title"], raw
    assert entry["ID"] == "mullerludenscheidt2020evil"  # ASCII key from a hyphenated name with umlauts


def test_bibtex_keys_are_unique_and_do_not_depend_on_the_selection(papers_engine):
    from catalog.bibtex import bibliography

    # a second paper whose base key collides with Vaswani 2017 "Attention …"
    set_metadata(papers_engine, "1810.04805", title="Attention, once more", authors=["Someone Vaswani"],
                 published=datetime(2017, 1, 1))
    alone, _ = bibliography(papers_engine, ["1706.03762"])
    both, _ = bibliography(papers_engine, ["1810.04805", "1706.03762"])
    keys_alone = [e["ID"] for e in parse_bib(alone).entries]
    keys_both = [e["ID"] for e in parse_bib(both).entries]
    assert keys_alone == ["vaswani2017attention:1706.03762"]
    assert sorted(keys_both) == ["vaswani2017attention:1706.03762", "vaswani2017attention:1810.04805"]


def test_cli_bibtex_for_one_paper_and_a_selection(papers_engine, catalog_cli):
    r = catalog_cli("paper", "arXiv:2004.13342v2", "--bibtex")
    assert r.exit_code == 0, r.output
    assert [e["ID"] for e in parse_bib(r.stdout).entries] == ["zhou2020scheduled"]

    r = catalog_cli("papers", "--bibtex")
    assert r.exit_code == 0, r.output
    assert {e["eprint"] for e in parse_bib(r.stdout).entries} == {"2004.13342", "1706.03762", "2007.03898"}
    assert "without metadata left out" in r.stderr

    r = catalog_cli("paper", "1502.03167", "--bibtex")  # known id, no metadata yet
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "arxiv sync" in r.stderr


# ------------------------------------------------------------------ most discussed

def expected_counts(engine, since: datetime | None = None) -> dict[str, tuple[int, int]]:
    """Distinct sources and posts per paper, counted in Python from the rows."""
    with Session(engine) as s:
        rows = s.execute(select(Paper.arxiv_id, Post.source_id, Post.id, Post.published_at)
                         .join(PostPaper, PostPaper.paper_id == Paper.id)
                         .join(Post, Post.id == PostPaper.post_id)).all()
    out: dict[str, tuple[set, set]] = {}
    for aid, source_id, post_id, published in rows:
        if since is None or (published and published >= since.replace(tzinfo=None)):
            srcs, posts = out.setdefault(aid, (set(), set()))
            srcs.add(source_id)
            posts.add(post_id)
    return {aid: (len(s), len(p)) for aid, (s, p) in out.items()}


def test_top_papers_counts_distinct_sources_and_posts(sample_engine):
    from catalog.discussed import top_papers

    rows = top_papers(sample_engine, limit=100)
    expected = expected_counts(sample_engine)
    assert len(rows) == len(expected) > 5
    assert {r["arxiv_id"]: (r["sources"], r["posts"]) for r in rows} == expected
    keys = [(r["sources"], r["posts"]) for r in rows]
    assert keys == sorted(keys, reverse=True)  # sources first, then posts
    assert rows[0]["sources"] == 3  # the sample corpus has papers discussed by all three channels

    by_posts = top_papers(sample_engine, by="posts", limit=100)
    assert [(r["posts"], r["sources"]) for r in by_posts] == sorted(
        [(r["posts"], r["sources"]) for r in by_posts], reverse=True)


def test_top_papers_since_counts_only_recent_posts(sample_engine):
    from catalog.discussed import recent_window, top_papers

    since = datetime(2020, 5, 5, tzinfo=timezone.utc)
    rows = top_papers(sample_engine, since=since, limit=100)
    assert {r["arxiv_id"]: (r["sources"], r["posts"]) for r in rows} == expected_counts(sample_engine, since)
    assert 0 < len(rows) < len(top_papers(sample_engine, limit=100))
    with sample_engine.connect() as c:
        newest = c.execute(select(func.max(Post.published_at))).scalar()
    assert (newest - recent_window(sample_engine, 30)).days == 30


def test_cli_top(sample_engine, catalog_cli):
    r = catalog_cli("papers", "--top", "--limit", "3", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["rank"] for row in rows] == [1, 2, 3]
    r = catalog_cli("papers", "--top", "--by", "views")
    assert r.exit_code == 2 and "unknown ranking" in r.stderr
    r = catalog_cli("papers", "--since", "2020-01-01")
    assert r.exit_code == 2 and "--top" in r.stderr
    r = catalog_cli("papers", "--top", "--since", "yesterday")
    assert r.exit_code == 2 and "bad date" in r.stderr


# ------------------------------------------------------------------ feeds

@pytest.fixture
def hostile_engine(papers_engine):
    from catalog.ingest import ingest_records
    from scrapers.records import PostRecord, SourceRecord

    src = SourceRecord(kind="telegram", handle="evil_channel", title="Evil <b>channel</b> & co",
                       url="https://t.me/evil_channel")
    ingest_records(papers_engine, [PostRecord(
        source=src, external_id="7", published_at=datetime(2020, 6, 1, 12, tzinfo=timezone.utc),
        title=HOSTILE_TITLE, text=HOSTILE_TITLE + "\x00\x07 control characters \ufffe end",
        hashtags=("<b>tag</b>",), arxiv_ids=("2004.13342",), language="en")])
    return papers_engine


def load_feeds(engine, limit=50):
    from catalog.feeds import catalog_feeds
    from catalog.sitegen.catalogview import Catalog

    return catalog_feeds(Catalog(engine, {}), limit=limit)


def test_every_feed_is_valid_atom_with_escaped_text(hostile_engine):
    import feedparser

    from catalog.feeds import atom_xml, rss_xml

    feeds = load_feeds(hostile_engine)
    kinds = {f.key.split("/")[0] for f in feeds}
    assert kinds == {"all", "source", "tag", "paper"}
    for feed in feeds:
        for data in (atom_xml(feed), rss_xml(feed)):
            parsed = feedparser.parse(data)
            assert not parsed.bozo, (feed.path, parsed.get("bozo_exception"))
            assert len(parsed.entries) == len(feed.posts)
    site_wide = next(f for f in feeds if f.key == "all")
    parsed = feedparser.parse(atom_xml(site_wide))
    evil = next(e for e in parsed.entries if "evil_channel" in e.id)
    assert evil.title == HOSTILE_TITLE  # the characters, as text: nothing was interpreted
    assert "<script>" not in atom_xml(site_wide).decode()
    assert evil.author == "Evil <b>channel</b> & co"
    assert {t.term for t in evil.tags} == {"<b>tag</b>"}
    assert "arXiv: 2004.13342" in evil.summary and "control characters" in evil.summary
    assert any(link.href == "https://arxiv.org/abs/2004.13342" for link in evil.links)


def test_feed_entries_are_limited_newest_first_and_stable(hostile_engine):
    import feedparser

    from catalog.feeds import atom_xml

    first = {f.path: atom_xml(f) for f in load_feeds(hostile_engine, limit=4)}
    again = {f.path: atom_xml(f) for f in load_feeds(hostile_engine, limit=4)}
    assert first == again  # rebuilding an unchanged catalog writes identical feeds
    parsed = feedparser.parse(first["feeds/all.atom.xml"])
    assert len(parsed.entries) == 4
    dates = [e.published_parsed for e in parsed.entries]
    assert dates == sorted(dates, reverse=True)
    assert parsed.entries[0].id.startswith("tag:paper-digest,2026:post/telegram:evil_channel:7")
    paper_feed = feedparser.parse(first[next(p for p in first if p.startswith("feeds/papers/2004-13342"))])
    assert paper_feed.entries and all("2004.13342" in e.summary for e in paper_feed.entries)


def test_cli_feed(hostile_engine, catalog_cli):
    import feedparser

    r = catalog_cli("feed", "--tag", "nlp", "--site-url", "https://digest.example")
    assert r.exit_code == 0, r.output
    parsed = feedparser.parse(r.stdout_bytes)
    assert not parsed.bozo and parsed.entries
    assert all(e.link.startswith("https://digest.example/posts/") for e in parsed.entries)
    r = catalog_cli("feed", "--rss")
    assert r.exit_code == 0 and feedparser.parse(r.stdout_bytes).version == "rss20"
    r = catalog_cli("feed", "--tag", "no-such-tag")
    assert r.exit_code == 1 and "no feed for tag" in r.stderr
    r = catalog_cli("feed", "--tag", "nlp", "--source", "x")
    assert r.exit_code == 2


# ------------------------------------------------------------------ related

def post_id_by_title(engine, needle: str) -> int:
    with Session(engine) as s:
        return s.scalars(select(Post.id).where(Post.title.contains(needle)).order_by(Post.id)).first()


def test_related_finds_the_same_paper_discussed_in_other_languages(sample_engine):
    from catalog.related import rebuild_related
    from catalog.related_lookup import related

    stats = rebuild_related(sample_engine)
    assert stats["items"] == stats["posts"] + stats["papers"] and stats["pairs"] > 0
    en = post_id_by_title(sample_engine, "Paper of the day: Scheduled DropHead")
    zh = post_id_by_title(sample_engine, "Scheduled DropHead:Transformer的正则化方法")
    assert en and zh
    posts = related(sample_engine, str(en), kinds=("post",), limit=3)
    assert zh in [p["id"] for p in posts]
    assert en not in [p["id"] for p in posts]  # never its own neighbour
    scores = [p["score"] for p in posts]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1.0001 for s in scores)
    papers = related(sample_engine, str(en), kinds=("paper",), limit=1)
    assert papers[0]["arxiv_id"] == "2004.13342"


ODD_TEXTS = ["", "a", "aaaa aaaa aa", "x\u3000y  z\t\nw", "İstanbul ΟΔΟΣ σοφός", "self-attention gpt-4 (2004.13342),",
             "внимание внимания", "注意力 自注意力 模型"]  # short words, Unicode spaces, lower() that changes length


def test_tfidf_halves_are_scikit_learns_bit_for_bit(sample_engine):
    """`vectorize` counts terms per distinct token; each half must still be exactly the matrix of
    scikit-learn's TfidfVectorizer: values, and the order of entries within a row (sums follow it),
    also where `max_features` cuts among terms of equal frequency, and for other n-gram ranges."""
    from functools import partial

    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from catalog.related import load_corpus
    from catalog.similarity import (CHAR_NGRAMS, MAX_DF, WORD_TOKEN, _count_matrix, _ids, _tfidf_half, char_terms,
                                    word_terms)

    texts = load_corpus(sample_engine).texts + ODD_TEXTS
    ids = _ids()
    doc_tokens = _count_matrix((text.lower().split() for text in texts), ids, len(texts))
    analyzers = [(word_terms, dict(analyzer="word", token_pattern=WORD_TOKEN.pattern))]
    analyzers += [(partial(char_terms, ngrams=n), dict(analyzer="char_wb", ngram_range=n))
                  for n in sorted({CHAR_NGRAMS, (3, 5)})]
    for terms, options in analyzers:
        for min_df, max_features in ((1, 1 << 18), (2, 1 << 18), (1, 300)):
            ours = _tfidf_half(doc_tokens, list(ids), terms, min_df=min_df, max_features=max_features)
            theirs = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, min_df=min_df, max_df=MAX_DF,
                                     max_features=max_features, **options).fit_transform(texts)
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (options, min_df)
            for part in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(ours, part), getattr(theirs, part)), (options, min_df, part)


def test_character_ngrams_let_inflected_russian_words_meet():
    """Pairs sharing no word form, only stems: each text's nearest is its pair (the character half)."""
    from catalog.similarity import top_k, vectorize
    from catalog.searchtext import document_text

    pairs = [("Головы внимания трансформера", "голова внимание трансформеры"),
             ("Квантовых кубитов коррекцию", "квантовые кубиты коррекция"),
             ("Роботов захватами манипуляторов", "робот захват манипулятор")]
    texts = [document_text(text) for pair in pairs for text in pair]
    nearest = {row: best[0][0] for row, kind, best in top_k(vectorize(texts), len(texts), 1)}
    assert nearest == {row: row ^ 1 for row in range(len(texts))}


def test_related_is_stored_once_and_rebuilt_only_after_a_change(sample_engine, tmp_path):
    from catalog.ingest import ingest_paths
    from catalog.related import ensure_related, is_fresh

    assert ensure_related(sample_engine) is not None
    assert is_fresh(sample_engine) and ensure_related(sample_engine) is None
    export = {"name": "New Channel", "type": "public_channel", "id": 777, "messages": [
        {"id": 1, "type": "message", "date": "2020-06-01T10:00:00", "text": "Another note on DropHead 2004.13342"}]}
    (tmp_path / "new.json").write_text(json.dumps(export), encoding="utf-8")
    ingest_paths(sample_engine, [tmp_path / "new.json"])
    assert not is_fresh(sample_engine)
    assert ensure_related(sample_engine)["posts"] == 30


def test_related_lists_refreshed_by_two_processes_at_once_are_whole(sample_engine, db_target):
    """Two `digest related` on a stale catalog used to collide on PostgreSQL (each deleted what
    it saw, then both inserted the same keys: a unique violation). Writers now take turns."""
    import threading

    from catalog.db import open_db
    from catalog.related import rebuild_related, stored_lists
    from sqlalchemy.orm import Session

    engines = [open_db(db_target) for _ in range(4)]
    errors: list[BaseException] = []

    def refresh(engine) -> None:
        try:
            rebuild_related(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert not errors, errors
    with Session(sample_engine) as s:
        after_race = stored_lists(s)
    rebuild_related(sample_engine)  # the oracle: one writer alone
    with Session(sample_engine) as s:
        alone = stored_lists(s)
    assert len(alone) == 29 + 15 and after_race == alone  # every post and paper has its lists, once


NEW_POSTS = [  # one on a paper the catalog has (whose text grows by it), one citing nothing
    "Scheduled DropHead (arXiv 2004.13342) again: dropping whole attention heads regularises transformers "
    "better than dropout when fine-tuning BERT.",
    "NVAE и вариационные автоэнкодеры: иерархический VAE с остаточными ячейками генерирует чёткие изображения.",
]


def add_posts(engine, folder: Path, texts: list[str], first: int = 1) -> None:
    """`texts` as new posts of a new channel, message ids from `first` on."""
    from support.helpers import message, telegram_export, write_json

    from catalog.ingest import ingest_paths

    export = telegram_export([message(i, t, date="2020-06-01T10:00:00") for i, t in enumerate(texts, first)],
                             name="New Channel", chat_id=777)
    ingest_paths(engine, [write_json(folder / "new.json", export)])


def stored(engine):
    from catalog.related import stored_lists

    with Session(engine) as s:
        return stored_lists(s)


def ids(entries) -> list[int]:
    return [other for other, _ in entries]


def test_related_takes_a_few_new_posts_in_incrementally(sample_engine, tmp_path):
    """2 new posts in a catalog of 44 items: the new posts and the paper one discusses (its text
    grew) are recomputed; their lists are exactly the full rebuild's; every other stored pair
    keeps its score and order, fresh items only entering; the top neighbours agree with a full
    rebuild's for nearly all old lists (measured: 84 of 86 lists), and fewer shown lists change."""
    from catalog.related import (K, KINDS, fingerprint, fresh_rows, incremental_update, load_corpus, load_state,
                                 rebuild_related, update_related)

    rebuild_related(sample_engine)
    before, state = stored(sample_engine), load_state(sample_engine)
    add_posts(sample_engine, tmp_path, NEW_POSTS)
    stats = update_related(sample_engine)
    assert stats["mode"] == "incremental" and stats["fresh"] == 3 and stats["posts"] == 31
    after = stored(sample_engine)
    with Session(sample_engine) as s:
        drophead = s.scalar(select(Paper.id).where(Paper.arxiv_id == "2004.13342"))
    fresh = {("post", i) for kind, i in after if kind == "post" and ("post", i) not in before} | {("paper", drophead)}
    assert len(fresh) == 3

    unchanged_top5 = 0
    for item, lists in before.items():
        if item in fresh:
            continue
        for kind in KINDS:
            old, new = lists.get(kind, []), after[item].get(kind, [])
            # old neighbours keep their stored scores and order; a fresh item only enters
            kept = [e for e in new if (kind, e[0]) not in fresh]
            assert kept == [e for e in old if (kind, e[0]) not in fresh][:len(kept)]
            if ids(new)[:5] != ids(old)[:5]:
                assert any((kind, o) in fresh for o in ids(new)[:5] + ids(old)[:5]), (item, kind)
            else:
                unchanged_top5 += 1
    # the same update again from the same state gives the same rows (deterministic, idempotent)
    corpus = load_corpus(sample_engine)
    incremental_update(sample_engine, corpus, fresh_rows(corpus, state, K), state, fingerprint(sample_engine))
    assert stored(sample_engine) == after

    rebuild_related(sample_engine)
    full = stored(sample_engine)
    for item in fresh:
        assert after[item] == full[item]  # the fresh items' own lists: the full rebuild's, scores and all
    new_drophead = min(i for kind, i in fresh if kind == "post")  # NEW_POSTS[0]
    assert ids(full[("post", new_drophead)]["post"])[0] == post_id_by_title(sample_engine, "Paper of the day: Sch")
    pairs = [(item, kind) for item in before if item not in fresh for kind in KINDS]
    same_top = sum(ids(after[item].get(kind, []))[:1] == ids(full[item].get(kind, []))[:1] for item, kind in pairs)
    assert same_top >= 0.95 * len(pairs)
    full_unchanged_top5 = sum(ids(full[item].get(kind, []))[:5] == ids(before[item].get(kind, []))[:5]
                              for item, kind in pairs)
    assert unchanged_top5 > full_unchanged_top5


def _edit_a_post(engine, _folder) -> None:
    with Session(engine) as s, s.begin():
        post = s.get(Post, post_id_by_title(engine, "Self-attention в 15 строк"))
        post.text += "\nUpdate: a follow-up on multi-query attention."
        post.updated_at = datetime(2030, 1, 1)


def _delete_a_post(engine, _folder) -> None:
    from catalog.source_merge import _delete_posts

    with engine.begin() as conn:
        _delete_posts(conn, [post_id_by_title(engine, "Self-attention в 15 строк")])


def _fetch_a_papers_abstract(engine, _folder) -> None:  # its text changed, and no new post discusses it
    with Session(engine) as s, s.begin():
        paper = s.scalars(select(Paper).where(Paper.arxiv_id == "2004.13342")).one()
        paper.abstract = (paper.abstract or "") + " We also prune whole layers."
        paper.fetched_at = datetime(2030, 1, 1)


def _add_too_many(engine, folder) -> None:  # 5 of 44 items: past INCREMENTAL_MAX
    add_posts(engine, folder, [f"{NEW_POSTS[1]} Часть {i}." for i in range(5)])


def _add_after_an_edit(engine, folder) -> None:
    add_posts(engine, folder, NEW_POSTS[1:])
    _edit_a_post(engine, folder)


def _add_to_lists_of_an_older_version(engine, folder) -> None:  # one whose state names only the kind of fit
    from catalog.models import Meta
    from catalog.related import STATE_KEY

    with Session(engine) as s, s.begin():
        meta = s.get(Meta, STATE_KEY)
        meta.value = json.dumps({**json.loads(meta.value), "fit": "exact-df1"})
    add_posts(engine, folder, NEW_POSTS[1:])


@pytest.mark.parametrize("change", [_edit_a_post, _delete_a_post, _fetch_a_papers_abstract, _add_too_many,
                                    _add_after_an_edit, _add_to_lists_of_an_older_version])
def test_related_rebuilds_fully_after_an_edit_a_deletion_or_many_new_posts(sample_engine, tmp_path, change):
    from catalog.related import ensure_related, rebuild_related

    rebuild_related(sample_engine)
    change(sample_engine, tmp_path)
    stats = ensure_related(sample_engine)
    assert stats["mode"] == "full"
    after = stored(sample_engine)
    rebuild_related(sample_engine)
    assert stored(sample_engine) == after


def test_related_new_posts_count_against_the_last_full_rebuild(sample_engine, tmp_path):
    """Small additions one after another: incremental until, together, they pass INCREMENTAL_MAX
    of the items at the last full rebuild (44 items: 4.4), then a full rebuild starts the count again."""
    from catalog.related import ensure_related, load_state, rebuild_related

    rebuild_related(sample_engine)
    modes = []
    for n in range(3):  # two posts each time
        texts = [f"{NEW_POSTS[1]} Выпуск {n}, часть {i}." for i in range(2)]
        add_posts(sample_engine, tmp_path, texts, first=1 + 2 * n)
        modes.append(ensure_related(sample_engine)["mode"])
    assert modes == ["incremental", "incremental", "full"]
    state = load_state(sample_engine)
    assert (state.full_items, state.fresh_since_full) == (50, 0)


def test_related_does_nothing_without_a_change_to_the_text(sample_engine):
    from catalog.related import ensure_related, update_related

    assert ensure_related(sample_engine)["mode"] == "full"
    rows = stored(sample_engine)
    assert ensure_related(sample_engine) is None
    assert update_related(sample_engine)["lists_changed"] == 0 and stored(sample_engine) == rows
    with Session(sample_engine) as s, s.begin():  # a newer update time, the same text (the fingerprint moves)
        post = s.get(Post, post_id_by_title(sample_engine, "Self-attention в 15 строк"))
        post.updated_at = datetime(2030, 1, 1)
    stats = ensure_related(sample_engine)
    assert (stats["mode"], stats["fresh"], stats["lists_changed"]) == ("incremental", 0, 0)
    assert stored(sample_engine) == rows and ensure_related(sample_engine) is None


def test_merge_neighbours_keeps_stored_entries_ahead_on_ties_and_k_entries():
    from catalog.related import merge_neighbours

    stored_list = [(1, 0.9), (2, 0.5), (3, 0.5), (4, 0.2)]
    assert merge_neighbours(stored_list, [(7, 0.5), (8, 0.95)], replaced={4, 7, 8}, k=4) == \
        [(8, 0.95), (1, 0.9), (2, 0.5), (3, 0.5)]
    assert merge_neighbours(stored_list, [(4, 0.6)], replaced={4}, k=10) == [(1, 0.9), (4, 0.6), (2, 0.5), (3, 0.5)]
    assert merge_neighbours(stored_list, [], replaced=set(), k=10) == stored_list


def test_cli_related_updates_incrementally_unless_told_to_rebuild(sample_engine, catalog_cli, tmp_path):
    from catalog.related import rebuild_related

    rebuild_related(sample_engine)
    add_posts(sample_engine, tmp_path, NEW_POSTS[:1])
    r = catalog_cli("related", "2004.13342")
    assert r.exit_code == 0 and "related: 2 new or grown items compared with all 45" in r.stderr, r.stderr
    add_posts(sample_engine, tmp_path, NEW_POSTS[1:], 2)
    r = catalog_cli("related", "2004.13342", "--rebuild")
    assert r.exit_code == 0 and "related: 31 posts and 15 papers compared" in r.stderr, r.stderr


def test_cli_related(sample_engine, catalog_cli):
    en = post_id_by_title(sample_engine, "Paper of the day: Scheduled DropHead")
    r = catalog_cli("related", str(en), "--posts", "--limit", "2", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 2 and {row["kind"] for row in rows} == {"post"}
    r = catalog_cli("related", "2004.13342", "--papers", "--json")
    assert r.exit_code == 0 and all(row["kind"] == "paper" for row in json.loads(r.stdout))
    for args, code, words in ((["99999"], 1, "no post"), (["2101.00001"], 1, "no paper"),
                              (["not-an-id"], 2, "not an arXiv id"), ([str(en), "--posts", "--papers"], 2, "exclude")):
        r = catalog_cli("related", *args)
        assert r.exit_code == code and words in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)


# ------------------------------------------------------------------ site

@pytest.fixture(scope="module")
def site_engine(module_db_target, sample_files):
    """The sample catalog with metadata for two papers, once per engine for the site tests."""
    from catalog.db import open_db
    from catalog.ingest import ingest_paths

    engine = open_db(module_db_target)
    ingest_paths(engine, sample_files)
    set_metadata(engine, "2004.13342", title="Scheduled DropHead", authors=["Wangchunshu Zhou", "Tao Ge"],
                 pdf_url="https://arxiv.org/pdf/2004.13342", doi="10.18653/v1/2020.findings-emnlp.178")
    set_metadata(engine, "2007.03898", title=HOSTILE_TITLE, authors=["A <b>Author</b>"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def site(site_engine, tmp_path_factory):
    from catalog.sitegen.build import build_site

    return build_site(site_engine, tmp_path_factory.mktemp("discovery-site") / "out", strict=True).site_dir


def _page(site: Path, rel: str) -> str:
    return (site / rel / "index.html").read_text(encoding="utf-8")


def test_site_writes_feeds_and_links_them_in_page_heads(site):
    import feedparser

    for rel in ("feeds/all.atom.xml", "feeds/all.rss.xml", "feeds/tags/nlp.atom.xml",
                "feeds/papers/2004-13342.atom.xml"):
        parsed = feedparser.parse((site / rel).read_bytes())
        assert not parsed.bozo and parsed.entries, rel
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'rel="alternate" type="application/atom+xml"' in home and "feeds/all.atom.xml" in home
    tag = _page(site, "tags/nlp")
    assert 'href="../../feeds/tags/nlp.atom.xml"' in tag
    # relative links inside a feed resolve to pages that exist
    entry = feedparser.parse((site / "feeds/tags/nlp.atom.xml").read_bytes()).entries[0]
    assert (site / "feeds/tags" / entry.link / "index.html").resolve().exists()


def test_paper_page_has_bibtex_citation_tags_and_related(site):
    page = _page(site, "papers/2004-13342")
    assert '<meta name="citation_title" content="Scheduled DropHead">' in page
    assert page.count('<meta name="citation_author"') == 2
    assert '<meta name="citation_doi" content="10.18653/v1/2020.findings-emnlp.178">' in page
    assert '<meta name="citation_pdf_url" content="https://arxiv.org/pdf/2004.13342">' in page
    start = page.index('<code class="language-bibtex">')
    bib = html.unescape(page[start:page.index("</code>", start)].split(">", 1)[1])
    assert parse_bib(bib).entries[0]["ID"] == "zhou2020scheduled"
    assert 'id="related"' in page
    post = next((site / "posts").glob("paper-of-the-day-scheduled-drophead*/index.html")).read_text(encoding="utf-8")
    assert 'id="related"' in post and "2004.13342" in post[post.index('id="related"'):]


def test_hostile_paper_title_is_inert_in_meta_tags_and_bibtex(site):
    page = _page(site, "papers/2007-03898")
    assert "<script>alert(1)</script>" not in page and "<b>Author</b>" not in page
    assert '<meta name="citation_author" content="A &lt;b&gt;Author&lt;/b&gt;">' in page


def test_most_discussed_page(site, site_engine):
    from catalog.discussed import top_papers

    page = _page(site, "papers/discussed")
    assert 'id="all-time"' in page and 'id="recent"' in page
    top = top_papers(site_engine, limit=1)[0]["arxiv_id"]
    assert f"arXiv:{top}" in page[page.index('id="all-time"'):]


def test_large_catalogs_use_an_lsa_projection_that_keeps_clear_neighbours():
    """Above EXACT_MAX the cosines come from a dense projection: near-duplicates stay nearest."""
    import numpy as np

    from catalog.similarity import project, top_k, vectorize

    topics = ["attention heads dropout transformer regularization", "quantum qubits circuit error correction",
              "robot grasping manipulation sim-to-real", "image segmentation convolution detection"]
    words = topics[0].split() + topics[1].split()  # a few words of other topics as noise
    texts = [f"{topics[i % 4]} item{i} {words[(i * 7) % len(words)]}" for i in range(80)]
    exact = {row: [o for o, _ in best] for row, kind, best in top_k(vectorize(texts), 80, 3) if kind == "post"}
    dense = project(vectorize(texts), dims=16)
    assert isinstance(dense, np.ndarray) and np.allclose(np.linalg.norm(dense, axis=1), 1, atol=1e-4)
    approx = {row: [o for o, _ in best] for row, kind, best in top_k(dense, 80, 3) if kind == "post"}
    # every item's nearest neighbours share its topic in both paths
    for found in (exact, approx):
        assert all(all(o % 4 == row % 4 for o in others) for row, others in found.items())
