"""The incremental update of the related lists on a hand-made catalog (issue 35: survivors of the
mutation run over catalog/related.py): another list length than the default, an old post that had
no neighbour at all, and the progress it reports.

Twelve English posts on four topics (three each) and one Chinese post, which shares no word and no
character with them; then one new Chinese post on the same subject: 1 fresh item of 13 is under
`INCREMENTAL_MAX` (10 %), so the update is incremental.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.ingest import ingest_records
from catalog.models import Post
from catalog.related import rebuild_related, stored_lists, update_related
from scrapers.records import PostRecord, SourceRecord

SOURCE = SourceRecord(kind="telegram", handle="topics_ch", title="Topics")
TOPICS = ["sparse attention heads pruning", "diffusion models image sampling", "reinforcement learning reward shaping",
          "speech recognition acoustic encoders"]
ENGLISH = [f"{topic} notes part {part}" for topic in TOPICS for part in ("one", "two", "three")]
ZEBRA_OLD = "斑马和袋鼠的迁徙研究"  # zebras and kangaroos: a study of migration
ZEBRA_NEW = "斑马和袋鼠的迁徙研究续篇"  # the same, a sequel


def _record(ext: int, text: str) -> PostRecord:
    return PostRecord(source=SOURCE, external_id=str(ext), published_at=datetime(2023, 7, 1, tzinfo=timezone.utc),
                      text=text, title=text, language="zh" if text[0] >= "\u4e00" else "en")


def _lists(engine):
    with Session(engine) as s:
        by_title = {pid: title for pid, title in s.execute(select(Post.id, Post.title))}
        return {by_title[i]: [by_title[o] for o, _ in lists.get("post", [])]
                for (kind, i), lists in stored_lists(s).items() if kind == "post"}


def test_an_old_post_without_neighbours_takes_in_a_new_one_and_lists_keep_their_length(engine):
    ingest_records(engine, [_record(n, text) for n, text in enumerate(ENGLISH + [ZEBRA_OLD], start=1)])
    started, done = [], []
    assert update_related(engine, k=3, on_start=started.append, progress=done.append)["mode"] == "full"  # no state
    assert started == [13] and sum(done) == 13
    before = _lists(engine)
    assert before.get(ZEBRA_OLD, []) == []  # nothing in common with any other post
    assert all(len(before[t]) == 3 for t in ENGLISH)

    ingest_records(engine, [_record(14, ZEBRA_NEW)])
    started, done = [], []
    stats = update_related(engine, k=3, on_start=started.append, progress=done.append)
    # two lists written (the old and the new Chinese post's), one pair each
    assert (stats["mode"], stats["fresh"], stats["lists_changed"], stats["pairs"]) == ("incremental", 1, 2, 2)
    after = _lists(engine)
    assert after[ZEBRA_OLD] == [ZEBRA_NEW] and after[ZEBRA_NEW] == [ZEBRA_OLD]
    assert all(len(after[t]) == 3 for t in ENGLISH)  # k=3 kept, for the new item's scoring too
    assert {t: after[t] for t in ENGLISH} == {t: before[t] for t in ENGLISH}  # the new post is no English one's
    with engine.connect() as c:
        items = c.execute(select(func.count()).select_from(Post)).scalar()
    # every item scored once: the fresh one against all, the 13 others against it
    assert started == [items] == [14] and sum(done) == items
    with Session(engine) as s, s.begin():  # a newer update time, the same text: nothing to score
        s.get(Post, 1).updated_at = datetime(2030, 1, 1)
    started.clear()
    assert update_related(engine, k=3, on_start=started.append)["fresh"] == 0 and started == [0]


def test_new_posts_reaching_a_tenth_of_the_last_full_rebuild_start_a_full_one(engine):
    """20 items at the full rebuild: one new post (1 < 2) is incremental, one more (1 + 1 = 2, a
    tenth of 20) a full rebuild."""
    extra = [f"{topic} appendix {n}" for topic in TOPICS for n in ("alpha", "beta")]
    ingest_records(engine, [_record(n, text) for n, text in enumerate(ENGLISH + extra, start=1)])
    assert rebuild_related(engine, k=3)["items"] == 20
    ingest_records(engine, [_record(21, f"{TOPICS[1]} appendix gamma")])
    assert update_related(engine, k=3)["mode"] == "incremental"
    ingest_records(engine, [_record(22, f"{TOPICS[2]} appendix gamma")])
    assert update_related(engine, k=3)["mode"] == "full"  # 1 + 1 = 2 = 10 % of 20


def test_every_changed_list_is_replaced_whatever_the_batches(engine, monkeypatch):
    """A fourth post on the first topic enters the lists of the three before it: four lists change,
    deleted one id at a time (batches of one instead of 500, so that the batching is exercised)."""
    monkeypatch.setattr("catalog.related.IN_BATCH", 1)
    ingest_records(engine, [_record(n, text) for n, text in enumerate(ENGLISH + [ZEBRA_OLD], start=1)])
    rebuild_related(engine, k=3)
    fourth = f"{TOPICS[0]} notes part four"
    ingest_records(engine, [_record(14, fourth)])
    assert update_related(engine, k=3)["mode"] == "incremental"
    after = _lists(engine)
    first_topic = ENGLISH[:3]
    assert sorted(after[fourth]) == sorted(first_topic)
    for title in first_topic:
        assert fourth in after[title] and len(after[title]) == 3, (title, after[title])
        assert set(after[title]) <= set(first_topic + [fourth])
