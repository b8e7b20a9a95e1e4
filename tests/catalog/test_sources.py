"""One source per channel: readers agree, routes merge, merge/alias commands, cross-posts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from support.channel_routes import (MESSAGES, USERNAME, Msg, expected_links, write_html_export, write_json_export,
                            write_tme_page)
from catalog.ingest import ingest_paths
from catalog.models import Post, Source
from catalog.search import Filters, search
from catalog.source_identity import text_fingerprint
from scrapers import formats

ROUTES = {"json": write_json_export, "html": write_html_export, "tme": write_tme_page}


def counts(engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (c.execute(select(func.count()).select_from(Source)).scalar(),
                c.execute(select(func.count()).select_from(Post)).scalar())


@pytest.mark.parametrize("route", ROUTES)
def test_every_reader_keeps_every_link_and_arxiv_id(tmp_path, route):
    posts = {p.external_id: p for p in formats.read(ROUTES[route](tmp_path))}
    assert set(posts) == {str(m.id) for m in MESSAGES}
    for m in MESSAGES:
        got = {link.url for link in posts[str(m.id)].links}
        assert expected_links(m) <= got, (route, m.id)
    assert posts["11"].arxiv_ids == ("2307.12037", "2310.06825")  # behind footnote anchors "1" and "2"
    assert set(posts["12"].arxiv_ids) == {"2106.09685", "2005.14165"}  # arXiv DOI, "arXiv: ID"
    assert posts["13"].arxiv_ids == ("hep-th/9901001",)
    assert "paper" in {link.kind for link in posts["13"].links}
    texts = {text_fingerprint(p.text) for p in posts.values()}
    assert None not in texts and len(texts) == len(MESSAGES)


def test_readers_agree_on_text_fingerprints(tmp_path):
    by_route = {r: {p.external_id: text_fingerprint(p.text) for p in formats.read(w(tmp_path / r))}
                for r, w in ROUTES.items()}
    assert by_route["json"] == by_route["html"] == by_route["tme"]


@pytest.mark.parametrize("order", [("json", "html", "tme"), ("tme", "html", "json"), ("html", "tme", "json")])
def test_three_routes_make_one_source_and_each_post_once(engine, tmp_path, order):
    for route in order:
        ingest_paths(engine, [ROUTES[route](tmp_path / route)])
    assert counts(engine) == (1, len(MESSAGES))
    with engine.connect() as c:
        src = c.execute(select(Source)).one()
    assert src.handle == USERNAME  # the public username is the channel's name
    assert src.channel_id == 1234567890
    hits = search(engine, "retrieval heads")
    assert len(hits) == 1
    # the richest record of each post: the page's view count, every link of every route
    with engine.connect() as c:
        views = c.execute(select(Post.views).where(Post.external_id == "11")).scalar()
    assert views == 1200
    # re-ingesting any route lands in the merged source and changes nothing
    for route in order:
        stats = ingest_paths(engine, [ROUTES[route](tmp_path / route)])
        assert stats.posts_new == 0 and stats.posts_updated == 0
    assert counts(engine) == (1, len(MESSAGES))


def test_too_little_overlap_is_not_merged(engine, tmp_path):
    """Two routes sharing only two messages are not certainly one channel: two sources."""
    ingest_paths(engine, [write_html_export(tmp_path / "h", MESSAGES[:2])])
    ingest_paths(engine, [write_tme_page(tmp_path / "t", MESSAGES[:2])])
    assert counts(engine) == (2, 4)


def test_different_channels_with_the_same_ids_stay_apart(engine, tmp_path):
    other = [Msg(m.id, m.when, [f"Completely different post number {m.id} about reinforcement learning"])
             for m in MESSAGES]
    ingest_paths(engine, [write_html_export(tmp_path / "h", other)])
    ingest_paths(engine, [write_tme_page(tmp_path / "t")])
    assert counts(engine) == (2, 2 * len(MESSAGES))


def test_same_channel_id_merges(engine, tmp_path):
    """An old export without the chat id, then a new one with it: the id is certain."""
    ingest_paths(engine, [write_json_export(tmp_path / "a", MESSAGES[:1], chat_id=None)])
    ingest_paths(engine, [write_json_export(tmp_path / "b", MESSAGES[1:])])
    assert counts(engine) == (2, len(MESSAGES))  # nothing certain yet: no shared ids
    with engine.begin() as c:
        from catalog.source_merge import merge_sources
        merge_sources(c, 2, 1)
    ingest_paths(engine, [write_json_export(tmp_path / "a", MESSAGES[:1], chat_id=None)])
    assert counts(engine) == (1, len(MESSAGES))


# ---------------------------------------------------------------- the commands, on a copy of a catalog

@pytest.fixture
def two_route_catalog(tmp_path, cli, fresh_target):
    """An HTML export and the page sharing only two posts (too few to merge on their own)."""
    assert cli("ingest", str(write_html_export(tmp_path / "h", MESSAGES[:4]))).exit_code == 0
    assert cli("ingest", str(write_tme_page(tmp_path / "t", MESSAGES[2:]))).exit_code == 0
    rows = json.loads(cli("sources", "--json").stdout)
    assert [(r["handle"], r["posts"]) for r in rows] == [("export:Papers Lab", 4), ("papers_lab", 3)]
    copy = fresh_target()
    copied = cli("db", "copy", str(cli.db), str(copy))  # a catalog is more than a file: copy it as users do
    assert copied.exit_code == 0, copied.output
    return copy


def test_merge_dry_run_then_merge(two_route_catalog, cli, tmp_path):
    cli.db = two_route_catalog
    before = json.loads(cli("sources", "--json").stdout)
    dry = cli("sources", "merge", "@papers_lab", "export:Papers Lab", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] and plan["moved"] == 2 and plan["folded"] == 2 and plan["posts_after"] == 5
    assert json.loads(cli("sources", "--json").stdout) == before  # nothing changed

    done = cli("sources", "merge", "@papers_lab", "export:Papers Lab")
    assert done.exit_code == 0 and "2 moved, 2 folded" in done.stdout and "5 posts after" in done.stdout
    rows = json.loads(cli("sources", "--json").stdout)
    assert [(r["handle"], r["posts"], r["aliases"]) for r in rows] == [("papers_lab", 5, ["export:Papers Lab"])]
    hit = json.loads(cli("search", "retrieval heads", "--json").stdout)
    assert len(hit) == 1
    post = json.loads(cli("show", str(hit[0]["id"]), "--json").stdout)
    assert post["source_handle"] == "papers_lab"
    # re-ingesting the export now lands in the merged source
    result = cli("ingest", "--json", str(tmp_path / "h" / "messages.html"))
    assert json.loads(result.stdout)["posts_new"] == 0
    assert len(json.loads(cli("sources", "--json").stdout)) == 1


def test_merge_keeps_the_richest_record(tmp_path, cli):
    # the page has views; the export has an extra link the page lacks
    richer = [Msg(m.id, m.when, m.parts + [" ", ("a", "more", "https://example.org/extra")]) for m in MESSAGES[:2]]
    cli("ingest", str(write_html_export(tmp_path / "h", richer)))
    cli("ingest", str(write_tme_page(tmp_path / "t", MESSAGES[:2])))
    assert cli("sources", "merge", "papers_lab", "export:Papers Lab").exit_code == 0
    hits = json.loads(cli("search", "adapters", "--json").stdout)
    post = json.loads(cli("show", str(hits[0]["id"]), "--json").stdout)
    assert post["views"] == 900 and "https://example.org/extra" in {link["url"] for link in post["links"]}


def test_alias_ties_an_export_to_its_page_ahead_of_time(tmp_path, cli):
    cli("ingest", str(write_html_export(tmp_path / "h", MESSAGES[:1])))
    result = cli("sources", "alias", "export:Papers Lab", "@papers_lab")
    assert result.exit_code == 0 and "@papers_lab now leads to source 1" in result.stdout
    cli("ingest", str(write_tme_page(tmp_path / "t", MESSAGES[3:])))  # no overlap at all
    rows = json.loads(cli("sources", "--json").stdout)
    assert [(r["handle"], r["posts"], r["aliases"]) for r in rows] == [("export:Papers Lab", 3, ["papers_lab"])]


@pytest.mark.parametrize("args, message", [
    (("sources", "merge", "nope", "1"), "no source 'nope'"),
    (("sources", "merge", "1", "1"), "same source"),
    (("sources", "alias", "42", "@papers_lab"), "no source '42'"),
    (("sources", "alias", "1", "not a channel!"), "not a channel"),
    (("sources", "alias", "1", "@papers_lab"), "merge the two"),
])
def test_bad_source_commands_are_one_line(two_route_catalog, cli, args, message):
    cli.db = two_route_catalog
    before = json.loads(cli("sources", "--json").stdout)
    result = cli(*args)
    assert result.exit_code != 0 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert json.loads(cli("sources", "--json").stdout) == before


# ---------------------------------------------------------------- cross-posts

def test_forwards_are_shown_once(tmp_path, cli):
    original = [Msg(77, MESSAGES[4].when - __import__("datetime").timedelta(days=1), MESSAGES[4].parts)]
    from support.channel_routes import tme_page
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "other.html").write_text(tme_page(original, username="other_channel", title="Other Channel"))
    cli("ingest", str(tmp_path / "o" / "other.html"))
    cli("ingest", str(write_tme_page(tmp_path / "t")))  # post 15 forwards other_channel/77
    cli("ingest", str(write_json_export(tmp_path / "j")))
    hits = json.loads(cli("search", "mixture of experts", "--json").stdout)
    assert [h["source"] for h in hits] == ["Other Channel"]
    every = json.loads(cli("search", "mixture of experts", "--all", "--json").stdout)
    assert sorted(h["source"] for h in every) == ["Other Channel", "Papers Lab"]


def test_repost_by_same_text_without_forward_link(engine, tmp_path):
    """A repost that names no original: the same text in another source is enough."""
    text = ["A long enough post about contrastive pretraining of vision transformers at scale."]
    a = [Msg(5, MESSAGES[0].when, text)]
    b = [Msg(900, MESSAGES[1].when, text, forwarded_from="Somebody")]
    from support.channel_routes import tme_page
    for name, msgs in (("chan_a", a), ("chan_b", b)):
        path = tmp_path / f"{name}.html"
        path.write_text(tme_page(msgs, username=name, title=name))
        ingest_paths(engine, [path])
    assert len(search(engine, "contrastive pretraining")) == 1
    assert len(search(engine, "contrastive pretraining", filters=Filters(include_copies=True))) == 2
    assert len(search(engine, "contrastive pretraining", filters=Filters(source="chan_b"))) == 0


def test_no_jieba_chatter_on_stderr(tmp_path, sample_files, new_db_target):
    """jieba loads in two places (search text, the site's search plugin); neither may print."""
    import subprocess
    import sys

    db = new_db_target
    for args in (["ingest", *map(str, sample_files)], ["search", "注意力"],
                 ["site", "build", "--out", str(tmp_path / "build")]):
        done = subprocess.run([sys.executable, "-m", "catalog.cli", "--db", str(db), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "prefix dict" not in done.stderr and "Loading model" not in done.stderr, done.stderr


def test_migration_upgrades_an_older_catalog(engine, db_target, tmp_path):
    """A catalog from before source identity (schema 4) gains the tables and columns, data kept."""
    from catalog.db import MIGRATIONS, open_db

    ingest_paths(engine, [write_json_export(tmp_path / "j")])
    with engine.begin() as c:  # take the catalog back to what version 4 created
        for index in ("ix_post_fingerprint", "ix_post_copy_of_id", "ix_source_channel_id"):
            c.exec_driver_sql(f"DROP INDEX {index}")
        for table, column in (("post", "fingerprint"), ("post", "copy_of_id"), ("source", "channel_id")):
            c.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        c.exec_driver_sql("DROP TABLE source_alias")
        c.exec_driver_sql("DROP TABLE follow")
        c.exec_driver_sql("UPDATE meta SET value='4' WHERE key='schema_version'")
    engine.dispose()
    eng = open_db(db_target)
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT value FROM meta WHERE key='schema_version'").scalar() == str(len(MIGRATIONS))
        assert c.exec_driver_sql("SELECT count(*) FROM post WHERE fingerprint IS NOT NULL").scalar() == len(MESSAGES)
        assert c.exec_driver_sql("SELECT channel_id FROM source").scalar() == 1234567890
    # and the upgraded catalog merges the next route like a new one would
    ingest_paths(eng, [write_tme_page(tmp_path / "t")])
    assert counts(eng) == (1, len(MESSAGES))
    eng.dispose()


def test_same_channel_id_is_one_source_whatever_the_handle(engine):
    """Rule 1: a route naming a channel id already known lands in that channel's source."""
    from catalog.source_identity import resolve_source
    from scrapers.records import SourceRecord

    with engine.begin() as c:
        first = resolve_source(c, SourceRecord("telegram", "papers_lab", "Papers Lab", channel_id=None))
        c.execute(Source.__table__.update().values(channel_id=1234567890))
        again = resolve_source(c, SourceRecord("telegram", "channel1234567890", "Papers Lab", channel_id=1234567890))
        other = resolve_source(c, SourceRecord("telegram", "channel99", "Else", channel_id=99))
    assert again == first and other != first



def test_many_copies_never_crowd_out_other_hits(engine, tmp_path):
    """Many copies of one post ranking high: still `limit` distinct hits, the original only."""
    from datetime import timedelta

    from support.channel_routes import tme_page

    text = ["Quantised low rank adapters make finetuning cheap on a single consumer GPU card."]
    for n in range(16):  # one original and fifteen reposts of it, each in its own channel
        path = tmp_path / f"c{n}.html"
        when = MESSAGES[0].when + timedelta(hours=n)
        path.write_text(tme_page([Msg(1, when, text)], username=f"chan_{n:02d}", title=f"Chan {n}"))
        ingest_paths(engine, [path])
    filler = " ".join(f"word{k}" for k in range(80))  # long texts rank below the short copies
    others = [Msg(i, MESSAGES[0].when, [f"Adapters note {i}: {filler} low rank finetuning, no quantisation."])
              for i in range(2, 6)]
    ingest_paths(engine, [write_tme_page(tmp_path / "o", others)])
    hits = search(engine, "low rank", limit=5)
    assert len(hits) == 5 and len({h.id for h in hits}) == 5
    assert sum("Quantised" in h.title for h in hits) == 1  # the original only
    # with the copies: all 16 of them (the 4 notes on "quantisation" share the stem and come too)
    with_copies = search(engine, "quantised low rank", filters=Filters(include_copies=True), limit=50)
    assert sum("Quantised" in h.title for h in with_copies) == 16 and len(with_copies) == 20



def test_the_later_edit_wins_a_fold(engine, tmp_path):
    """The page was saved before an edit, the export after: the merged post has the edited text."""
    import json as json_mod

    ingest_paths(engine, [write_tme_page(tmp_path / "t")])
    path = write_json_export(tmp_path / "j")
    data = json_mod.loads(path.read_text(encoding="utf-8"))
    edited = next(m for m in data["messages"] if m["id"] == 14)
    edited["text_entities"] = edited["text"] = [{"type": "plain", "text": "Weekly notes, corrected: warmup matters most."}]
    edited["edited"], edited["edited_unixtime"] = "2023-07-08T10:00:00", "1688810400"
    path.write_text(json_mod.dumps(data), encoding="utf-8")
    stats = ingest_paths(engine, [path])
    assert stats.sources_merged == 1  # 4 of the 5 ids agree: 80%
    assert counts(engine) == (1, len(MESSAGES))
    assert [h.title for h in search(engine, "warmup")] == ["Weekly notes, corrected: warmup matters most."]
