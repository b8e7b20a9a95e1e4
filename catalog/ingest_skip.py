"""Skipping unchanged raw messages on re-ingest, before any analysis.

Each post row keeps the digest of the raw message it was written from (``post.raw_digest``,
`scrapers.digests`). Before reading an input, the reader is handed the stored digests of
the input's source (`StoredDigests`, asked once the reader knows the source); a message
whose id and digest match is handed back as `Unchanged` and never analysed. An edited
message has other bytes, so another digest, and goes the full way (and is updated).
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from catalog.source_identity import find_source_id
from catalog.sqlutil import select_in
from scrapers.records import SourceRecord


def add_raw_digest(conn: Connection) -> None:
    """The migration: ``post.raw_digest`` (a fresh catalog has it from the model already)."""
    if "raw_digest" not in {c["name"] for c in inspect(conn).get_columns("post")}:
        conn.execute(text("ALTER TABLE post ADD COLUMN raw_digest VARCHAR(32)"))


class StoredDigests:
    """`scrapers.digests.KnownDigests` on one connection: source -> {external id: raw digest}.

    Remembers the post id behind each digest it handed out, so the posts skipped can be
    counted by their tags and papers (`skipped_facts`)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.post_ids: dict[tuple[int, str], int] = {}

    def __call__(self, src: SourceRecord) -> dict[str, str]:
        # The same lookup the writer makes (without creating): any route of a channel.
        sid = find_source_id(self.conn, src.kind, src.handle, src.channel_id)
        if sid is None:
            return {}
        digests: dict[str, str] = {}
        for ext, digest, pid in self.conn.exec_driver_sql(
                "SELECT external_id, raw_digest, id FROM post WHERE source_id=? AND raw_digest IS NOT NULL", (sid,)):
            digests[ext] = digest
            self.post_ids[(sid, ext)] = pid
        return digests


def skipped_facts(conn: Connection, post_ids: list[int]) -> tuple[set[str], set[str]]:
    """(hashtags, arXiv ids) of the stored posts `post_ids`: what their messages name."""
    tags = {name for (name,) in select_in(
        conn, "SELECT DISTINCT t.name FROM post_tag pt JOIN tag t ON t.id = pt.tag_id"
              " WHERE pt.origin = 'hashtag' AND pt.post_id IN", post_ids)}
    arxiv = {aid for (aid,) in select_in(
        conn, "SELECT DISTINCT pa.arxiv_id FROM post_paper pp JOIN paper pa ON pa.id = pp.paper_id"
              " WHERE pp.post_id IN", post_ids)}
    return tags, arxiv
