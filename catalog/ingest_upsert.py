"""Writing batches of `PostRecord`s on one connection: new posts inserted, edited ones updated in
place, the same post read by another route enriched, with their links, tags, papers and
search rows; sources resolved (and merged when certainly one channel) as they come.

The hot path uses plain ``executemany`` on the connection: the ORM's per-object bookkeeping
would cost more than the parse. The transaction is the caller's (`catalog.ingest`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Iterable

from sqlalchemy import Connection

from catalog.ingest_prepare import Prepared
from catalog.ingest_skip import StoredDigests, skipped_facts
from catalog.ingest_stats import IngestStats
from catalog.models import PaperStatus, to_naive_utc, utcnow
from catalog.search import SEARCH_COLUMNS, linked_paper_texts, search_row
from catalog.source_copies import link_copies
from catalog.source_identity import resolve_or_create
from catalog.source_merge import adopt_route, merge_same_channels
from catalog.sqlutil import select_in
from catalog.tagging import retag_posts
from scrapers.records import PostRecord, SourceRecord, Unchanged

CHUNK = 2000  # records per batch written (and per batch a parser child sends)
ANALYZE_EVERY = 5 * CHUNK  # new posts between planner statistics refreshes on PostgreSQL
# A paper first named by a post: no metadata yet (the same row the model's defaults make).
_NEW_PAPER = ("INSERT INTO paper(arxiv_id, authors, categories, status)"
              f" VALUES (?, '[]', '[]', '{PaperStatus.PENDING.value}') ON CONFLICT DO NOTHING")


class Upserter:
    """Writes batches of records on one connection, caching ids it has looked up."""

    def __init__(self, conn: Connection, stats: IngestStats, digests: StoredDigests | None = None):
        self.conn = conn
        self.digests = digests  # what the reader was told is stored (for the posts it skipped)
        self.skipped: list[int] = []  # posts whose raw message the reader skipped, unchanged
        self.stats = stats
        self.source_ids: dict[tuple[str, str], int] = {}
        self.tag_ids: dict[str, int] = {}
        self.paper_ids: dict[str, int] = {}
        self.now = utcnow()
        self.has_paper_tags = conn.exec_driver_sql("SELECT 1 FROM paper_tag LIMIT 1").first() is not None
        self._unanalyzed = 0
        self.unchecked: set[int] = set()  # sources this input created, not yet compared with known ones
        self.touched: dict[int, list[str]] = {}  # source id -> external ids this input wrote or read
        # posts inserted or updated: (id, source id, fingerprint, forwarded post ref)
        self.written: list[tuple[int, int, str | None, str | None]] = []

    def finish(self) -> None:
        """After the last batch: merge sources now known to be one channel, tie copies to originals."""
        if self.skipped:
            tags, arxiv = skipped_facts(self.conn, self.skipped)
            self.stats._tag_names |= tags
            self.stats._arxiv |= arxiv
        merges = merge_same_channels(self.conn, self.touched)
        self.stats.sources_merged += len(merges)
        self.stats.merges += [m.as_dict() for m in merges]
        self.stats._follow_merges()
        if self.written:
            self.stats.copies += link_copies(self.conn, self.written)

    def _many(self, sql: str, rows: list[tuple]) -> None:
        if rows:  # an empty list would run the statement once with no parameters
            self.conn.exec_driver_sql(sql, rows)

    def source_id(self, src: SourceRecord) -> int:
        key = (src.kind, src.handle)
        if key not in self.source_ids:
            if self.conn.dialect.name == "postgresql":
                # Writers of the same source take turns (until commit), so none inserts a post that
                # another is inserting; writers of different sources run side by side.
                self.conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(?))", (f"{src.kind}\x1f{src.handle}",))
            # any route of a channel (export, page, alias) resolves to its one source
            self.source_ids[key], created = resolve_or_create(self.conn, src)
            if created:
                self.unchecked.add(self.source_ids[key])
        self.stats._source_keys.add(self.source_ids[key])
        return self.source_ids[key]

    def _adopt_new_routes(self, batch: list[Prepared]) -> None:
        """A source this input created, whose first records match a known channel, joins it now."""
        texts: dict[int, dict[str, str]] = {}
        for p in batch:
            sid = self.source_id(p.record.source)
            if p.fingerprint and sid in self.unchecked:
                texts.setdefault(sid, {})[p.record.external_id] = p.fingerprint
        for sid in list(self.unchecked):
            self.unchecked.discard(sid)
            report = adopt_route(self.conn, sid, texts.get(sid, {})) if sid in texts else None
            if report is None:
                continue
            keep, gone = report.keep["id"], report.other["id"]
            self.source_ids = {k: (keep if v == gone else v) for k, v in self.source_ids.items()}
            self.stats.sources_merged += 1
            self.stats.merges.append(report.as_dict())
            self.stats._follow_merges()

    def _ensure_ids(self, cache: dict[str, int], keys: set[str], insert: str, select_prefix: str) -> dict[str, int]:
        """Ids of `keys` (rows created by `insert`, one key per row, when missing), cached across batches.

        Rows already there (ours or a concurrent writer's) are kept as they are (ON CONFLICT DO NOTHING)."""
        # Sorted: concurrent writers then take row locks in the same order and cannot deadlock.
        missing = sorted(k for k in keys if k not in cache)
        if missing:
            self._many(insert, [(k,) for k in missing])
            cache.update(select_in(self.conn, select_prefix, missing))
        return cache

    def tag_id_map(self, names: set[str]) -> dict[str, int]:
        return self._ensure_ids(self.tag_ids, names, "INSERT INTO tag(name) VALUES (?) ON CONFLICT DO NOTHING",
                                "SELECT name, id FROM tag WHERE name IN")

    def paper_id_map(self, ids: set[str]) -> dict[str, int]:
        # Plain SQL with the empty JSON lists spelt out: Core encoded two lists per new paper.
        return self._ensure_ids(self.paper_ids, ids, _NEW_PAPER, "SELECT arxiv_id, id FROM paper WHERE arxiv_id IN")

    def _stored(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], tuple]:
        """(source id, external id) -> (post id, content hash, views, fingerprint, raw digest) for the keys stored."""
        by_source: dict[int, list[str]] = {}
        for sid, ext in keys:
            by_source.setdefault(sid, []).append(ext)
        found: dict[tuple[int, str], tuple] = {}
        for sid, exts in by_source.items():
            for ext, *row in select_in(
                    self.conn,
                    f"SELECT external_id, id, content_hash, views, fingerprint, raw_digest FROM post"
                    f" WHERE source_id={int(sid)} AND external_id IN",
                    exts):
                found[(sid, ext)] = tuple(row)
        return found

    def _skip(self, item: Unchanged) -> None:
        """A message the reader found stored with the same raw digest: counted, nothing written."""
        sid = self.source_id(item.source)
        self.stats.posts_unchanged += 1
        self.touched.setdefault(sid, []).append(item.external_id)
        pid = self.digests.post_ids.get((sid, item.external_id)) if self.digests is not None else None
        if pid is not None:  # for the run's tag and paper counts
            self.skipped.append(pid)

    def write(self, batch: list[Prepared | Unchanged]) -> None:
        records = []
        for item in batch:
            if isinstance(item, Unchanged):
                self._skip(item)
            else:
                records.append(item)
        if records:
            self._write_records(records)

    def _write_records(self, batch: list[Prepared]) -> None:
        # The last occurrence of an id in one input wins (an export may repeat a message).
        self._adopt_new_routes(batch)
        latest: dict[tuple[int, str], Prepared] = {}
        for p in batch:
            latest[(self.source_id(p.record.source), p.record.external_id)] = p
        existing = self._stored(latest)

        new_rows, changed, view_updates, other_route, digests = [], [], [], [], []
        for (sid, ext), p in latest.items():
            rec, chash = p.record, p.content_hash
            self.stats._tag_names.update(rec.hashtags)
            self.stats._arxiv.update(rec.arxiv_ids)
            self.touched.setdefault(sid, []).append(ext)
            if (sid, ext) not in existing:
                new_rows.append((sid, p))
                continue
            pid, old_hash, old_views, old_fp, old_digest = existing[(sid, ext)]
            if old_hash != chash and not (old_fp and old_fp == p.fingerprint):
                if rec.views is None and old_views is not None:
                    # an export has no view counts: keep the page's
                    p = p._replace(record=replace(rec, views=old_views))
                changed.append((pid, p))
            else:
                # The same text: unchanged, or the same post read by another route (an export
                # after the page). Nothing is overwritten; what the record adds is kept.
                self.stats.posts_unchanged += 1
                if rec.views is not None and rec.views != old_views and (old_hash == chash or (old_views or 0) < rec.views):
                    view_updates.append((rec.views, pid))
                if old_hash != chash:
                    other_route.append((pid, rec))
                elif rec.raw_digest and rec.raw_digest != old_digest:
                    digests.append((rec.raw_digest, pid))  # next time this message is skipped unread

        if view_updates:
            self._many("UPDATE post SET views=? WHERE id=?", view_updates)
        self._many("UPDATE post SET raw_digest=? WHERE id=?", digests)
        if changed:
            self._update(changed)
        if new_rows:
            self._insert(new_rows)
        if other_route:
            self._add_missing_children(other_route)

    def _add_missing_children(self, posts: list[tuple[int, PostRecord]]) -> None:
        """Links, tags and papers a record has that its stored post lacks (the richest record wins)."""
        have: dict[int, set[str]] = {}
        for pid, url in select_in(self.conn, "SELECT post_id, url FROM link WHERE post_id IN", [p for p, _ in posts]):
            have.setdefault(pid, set()).add(url)
        links = []
        for pid, rec in posts:
            known = have.get(pid, set())
            links += [(pid, len(known) + i, link.url, link.kind)
                      for i, link in enumerate(lk for lk in rec.links if lk.url not in known)]
        self._many("INSERT INTO link(post_id, position, url, kind) VALUES (?, ?, ?, ?)", links)
        tag_ids = self.tag_id_map({t for _, rec in posts for t in rec.hashtags})
        paper_ids = self.paper_id_map({a for _, rec in posts for a in rec.arxiv_ids})
        self._many("INSERT OR IGNORE INTO post_tag(post_id, tag_id, origin) VALUES (?, ?, 'hashtag')",
                   [(pid, tag_ids[t]) for pid, rec in posts for t in rec.hashtags])
        self._many("INSERT OR IGNORE INTO post_paper(post_id, paper_id) VALUES (?, ?)",
                   [(pid, paper_ids[a]) for pid, rec in posts for a in rec.arxiv_ids])

    def _post_values(self, p: Prepared) -> tuple:
        rec = p.record
        return (rec.url, rec.title, to_naive_utc(rec.published_at), rec.date_precision, rec.text, rec.raw,
                rec.language, rec.views, rec.forwarded_from,
                json.dumps(dict(rec.extra), ensure_ascii=False) if rec.extra else "{}", p.content_hash,
                rec.raw_digest or None,
                to_naive_utc(rec.edited_at))

    def _insert(self, rows: list[tuple[int, Prepared]]) -> None:
        # The fingerprint goes in with the row: a second UPDATE pass would write every new row
        # twice (on PostgreSQL a new row version, and a new entry in each of its indexes).
        self.conn.exec_driver_sql(
            "INSERT INTO post(source_id, external_id, url, title, published_at, date_precision, text, raw, language,"
            " views, forwarded_from, extra, content_hash, raw_digest, edited_at, ingested_at, updated_at, fingerprint)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(sid, p.record.external_id, *self._post_values(p), self.now, self.now, p.fingerprint) for sid, p in rows])
        self._keep_planner_informed(len(rows))
        stored = self._stored((sid, p.record.external_id) for sid, p in rows)
        posts = [(stored[(sid, p.record.external_id)][0], p) for sid, p in rows]
        self._write_children(posts)
        self.stats.posts_new += len(rows)
        self._write_search(posts, insert=True)

    def _keep_planner_informed(self, added: int) -> None:
        """PostgreSQL plans the key lookups from table statistics, which autovacuum cannot gather on rows
        this transaction is still writing: past a few thousand new posts it would look each batch up by
        scanning the whole source (quadratic). ANALYZE inside the transaction counts them."""
        if self.conn.dialect.name != "postgresql":
            return
        self._unanalyzed += added
        if self._unanalyzed >= ANALYZE_EVERY:
            self.conn.exec_driver_sql("ANALYZE post")
            self._unanalyzed = 0

    def _update(self, rows: list[tuple[int, Prepared]]) -> None:
        self._many(
            "UPDATE post SET url=?, title=?, published_at=?, date_precision=?, text=?, raw=?, language=?, views=?,"
            " forwarded_from=?, extra=?, content_hash=?, raw_digest=?, edited_at=?, updated_at=?, fingerprint=?"
            " WHERE id=?",
            [(*self._post_values(p)[:-1], to_naive_utc(p.record.edited_at) or self.now, self.now, p.fingerprint, pid)
             for pid, p in rows])
        pids = [(pid,) for pid, _ in rows]
        self._many("DELETE FROM post_tag WHERE post_id=? AND origin IN ('hashtag', 'arxiv-category')", pids)
        self._many("DELETE FROM link WHERE post_id=?", pids)
        self._many("DELETE FROM post_paper WHERE post_id=?", pids)
        self._write_children(rows)
        self.stats.posts_updated += len(rows)
        self._write_search(rows, insert=False)

    def _write_children(self, prepared: list[tuple[int, Prepared]]) -> None:
        """Tags, papers, links of the posts `prepared` (their rows written)."""
        self.written += [(pid, self.source_id(p.record.source), p.fingerprint, dict(p.record.extra).get("forwarded_post"))
                         for pid, p in prepared]
        posts = [(pid, p.record) for pid, p in prepared]
        tag_ids = self.tag_id_map({t for _, rec in posts for t in rec.hashtags})
        paper_ids = self.paper_id_map({a for _, rec in posts for a in rec.arxiv_ids})
        # Plain SQL (ON CONFLICT DO NOTHING reads the same on both engines): these are the most
        # numerous rows, and Core's per-row parameter processing cost more than the insert.
        self._many("INSERT INTO post_tag(post_id, tag_id, origin) VALUES (?, ?, 'hashtag') ON CONFLICT DO NOTHING",
                   [(pid, tag_ids[t]) for pid, rec in posts for t in rec.hashtags])
        self._many("INSERT INTO post_paper(post_id, paper_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   [(pid, paper_ids[a]) for pid, rec in posts for a in rec.arxiv_ids])
        self._many(
            "INSERT INTO link(post_id, position, url, kind) VALUES (?, ?, ?, ?)",
            [(pid, i, link.url, link.kind) for pid, rec in posts for i, link in enumerate(rec.links)])
        if self.has_paper_tags:  # papers already synced: their categories tag these posts too
            retag_posts(self.conn, [pid for pid, rec in posts if rec.arxiv_ids])

    def _write_search(self, posts: list[tuple[int, Prepared]], *, insert: bool) -> None:
        linked = [pid for pid, p in posts if p.record.arxiv_ids]
        extra = linked_paper_texts(self.conn, linked) if linked else {}
        # The post's own search text was prepared with the record; a linked paper's text changes it.
        rows = [search_row(pid, p.record.title, p.record.text, extra[pid]) if extra.get(pid) else (*p.search, pid)
                for pid, p in posts]
        if insert:
            self._many(f"INSERT INTO post_search({SEARCH_COLUMNS}, post_id) VALUES (?, ?, ?, ?, ?)", rows)
            if self.conn.dialect.name == "sqlite":
                # No insert trigger (see catalog.db): the index gets the same rows in one statement.
                # PostgreSQL indexes a generated column of post_search itself (catalog.search_pg).
                self._many(f"INSERT INTO post_fts({SEARCH_COLUMNS}, rowid) VALUES (?, ?, ?, ?, ?)", rows)
        else:
            self._many("UPDATE post_search SET title=?, body=?, title_stem=?, body_stem=? WHERE post_id=?", rows)
