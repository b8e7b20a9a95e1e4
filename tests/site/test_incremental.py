"""Incremental site builds: a rebuild renders only the pages whose inputs changed
(catalog/sitegen/pageinputs.py), and what it leaves is, byte for byte, what a full build of
the same catalog writes. Runs on both engines."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.demo import sample_corpus
from catalog.ingest import ingest_paths, ingest_records
from catalog.models import Paper, PostTag, Tag
from catalog.sitegen.build import build_site
from catalog.sitegen.search import BUNDLE
from scrapers.records import Link, PostRecord, SourceRecord

SOURCE = SourceRecord(kind="telegram", handle="incremental_channel", title="Incremental channel")
T0 = datetime(2022, 5, 1, tzinfo=timezone.utc)


def post(i: int, text: str, tags: tuple[str, ...] = (), papers: tuple[str, ...] = ()) -> PostRecord:
    return PostRecord(source=SOURCE, external_id=str(i), published_at=T0 + timedelta(days=i), title=f"Post {i}",
                      text=text + "".join(f" #{t}" for t in tags), hashtags=tags, arxiv_ids=papers,
                      links=tuple(Link(f"https://arxiv.org/abs/{a}", "arxiv") for a in papers), language="en")


def site_files(site: Path) -> dict[str, bytes]:
    """Every file of a built site but the search bundle: its shards follow the site's history
    by design (search.py), so a fresh build may cut them elsewhere."""
    out = {}
    for folder, dirs, files in os.walk(site):
        if Path(folder) == site:
            dirs[:] = [d for d in dirs if d != BUNDLE]
        for name in files:
            path = Path(folder, name)
            out[path.relative_to(site).as_posix()] = path.read_bytes()
    return out


def assert_same_as_full_build(engine, incremental: Path, fresh_out: Path) -> None:
    full = build_site(engine, fresh_out, run_roots=[], full=True)
    got, want = site_files(incremental), site_files(full.site_dir)
    assert sorted(got) == sorted(want)
    differ = sorted(rel for rel in want if got[rel] != want[rel])
    assert differ == [], f"{len(differ)} files differ from a full build, e.g. {differ[:5]}"


def test_an_incremental_rebuild_writes_what_a_full_build_writes(engine, tmp_path):
    ingest_paths(engine, sample_corpus())
    ingest_records(engine, [post(i, f"Attention heads and dropout, note {i}.", ("heads", "dropout"),
                                 ("2004.13342",) if i % 2 else ()) for i in range(6)])
    first = build_site(engine, tmp_path / "out", run_roots=[])
    planned = first.generated.rendered
    assert planned > 30

    # nothing changed: nothing is rendered again
    same = build_site(engine, tmp_path / "out", run_roots=[])
    assert same.generated.rendered == 0 and same.site_written == 0

    # new posts (one citing a new paper, one with a new tag), an edited post, a removed tag
    ingest_records(engine, [post(10, "A new post on sparse attention.", ("heads",), ("2301.00001",)),
                            post(11, "Another new post about mixtures.", ("moe",)),
                            post(2, "Edited: attention heads, dropout and more.", ("heads", "dropout"))])
    with Session(engine) as s, s.begin():
        tag_id = s.scalar(select(Tag.id).where(Tag.name == "dropout"))
        s.execute(delete(PostTag).where(PostTag.tag_id == tag_id))
        s.execute(delete(Tag).where(Tag.id == tag_id))
    second = build_site(engine, tmp_path / "out", run_roots=[])  # updates the standby generation
    assert 0 < second.generated.rendered < planned
    assert_same_as_full_build(engine, second.site_dir, tmp_path / "fresh")

    # the new paper gets its metadata; one more post. The standby generation this build updates
    # is the site of two builds ago, so it renders what changed in both rounds.
    with Session(engine) as s, s.begin():
        paper = s.scalars(select(Paper).where(Paper.arxiv_id == "2301.00001")).one()
        paper.title, paper.authors, paper.status = "Sparse Heads", ["A. Author"], "ok"
    ingest_records(engine, [post(12, "One more post on heads.", ("heads",))])
    third = build_site(engine, tmp_path / "out", run_roots=[])
    assert 0 < third.generated.rendered < planned
    assert_same_as_full_build(engine, third.site_dir, tmp_path / "fresh")
