"""Tags a post inherits from the papers it discusses (their arXiv categories).

Kept apart from `catalog.arxiv` so that ingest can apply them without importing the
network client.
"""

from __future__ import annotations

from sqlalchemy import Connection

from catalog.sqlutil import chunked, placeholders


def retag_posts(conn: Connection, post_ids: list[int]) -> None:
    """Give `post_ids` exactly the category tags of the papers they link (hashtags untouched)."""
    for part in chunked(post_ids):
        marks = placeholders(part)
        conn.exec_driver_sql(f"DELETE FROM post_tag WHERE origin='arxiv-category' AND post_id IN ({marks})",
                             tuple(part))
        # OR IGNORE: a post whose hashtag already names the category keeps origin 'hashtag'.
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO post_tag(post_id, tag_id, origin) SELECT DISTINCT pp.post_id, pt.tag_id,"
            " 'arxiv-category' FROM post_paper pp JOIN paper_tag pt ON pt.paper_id = pp.paper_id"
            f" WHERE pp.post_id IN ({marks})", tuple(part))


def apply_category_tags(conn: Connection) -> int:
    """Tag posts ingested after their paper was fetched with its categories (local, no network)."""
    return conn.exec_driver_sql(
        "INSERT OR IGNORE INTO post_tag(post_id, tag_id, origin) SELECT DISTINCT pp.post_id, pt.tag_id,"
        " 'arxiv-category' FROM post_paper pp JOIN paper_tag pt ON pt.paper_id = pp.paper_id").rowcount or 0
