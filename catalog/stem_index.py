"""The migration that adds Snowball stems to the search index of an existing catalog, on both engines.

``post_search`` gains ``title_stem`` and ``body_stem``: `catalog.stemming.stem_text` of
the derived title and body it already holds (the stems depend on nothing else, so the
posts need not be read or segmented again). Then each engine indexes them:

- SQLite: the FTS5 table is made anew with four columns (an FTS5 table cannot gain a
  column) and rebuilt from ``post_search``; its update/delete triggers and its rank
  function come back with it.
- PostgreSQL: a second generated ``tsvector`` over the stems, under its own GIN index
  (`catalog.search_pg.create_stem_index`).

Everything runs in the migration's one transaction: a failure leaves the old index.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

from catalog.stemming import stem_text

FTS_COLUMNS = ("title", "body", "title_stem", "body_stem")
# bm25 weights per FTS_COLUMNS: a title word is worth ten body words, in the stem columns,
# which every match goes through, and again in the exact columns where the typed form
# occurs: it counts twice, so it ranks first at otherwise equal relevance. (Half weight
# for the typed form lost tag queries on bench/search_quality.py: a hashtag in the body
# fell below other forms of its word in titles; equal weight loses none of today's.)
RANK = "bm25(10.0, 1.0, 10.0, 1.0)"
_BATCH = 2000


def add_stems(conn: Connection) -> None:
    """Migration step: stem columns in ``post_search``, filled, and indexed by the engine's full-text index."""
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # the old FTS5 table and its triggers go first, so filling the stems does not re-index
        for trigger in ("post_search_ai", "post_search_ad", "post_search_au"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS post_fts")
    # A catalog that already has the columns (one taken back to an older version by hand, say)
    # keeps them: the migration refills and re-indexes them all the same.
    present = {c["name"] for c in inspect(conn).get_columns("post_search")}
    for column in ("title_stem", "body_stem"):
        if column not in present:
            conn.exec_driver_sql(f"ALTER TABLE post_search ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    _fill_stems(conn)
    if sqlite:
        _create_fts(conn)
    else:
        from catalog.search_pg import create_stem_index

        create_stem_index(conn)


def _fill_stems(conn: Connection) -> None:
    last = 0
    while True:
        rows = conn.exec_driver_sql(
            "SELECT post_id, title, body FROM post_search WHERE post_id > ? ORDER BY post_id LIMIT ?",
            (last, _BATCH)).all()
        if not rows:
            return
        conn.exec_driver_sql("UPDATE post_search SET title_stem = ?, body_stem = ? WHERE post_id = ?",
                             [(stem_text(title), stem_text(body), pid) for pid, title, body in rows])
        last = rows[-1][0]


def _create_fts(conn: Connection) -> None:
    columns = ", ".join(FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    conn.exec_driver_sql(
        f"CREATE VIRTUAL TABLE post_fts USING fts5({columns}, content='post_search', content_rowid='post_id',"
        " tokenize='unicode61 remove_diacritics 0')")
    conn.exec_driver_sql("INSERT INTO post_fts(post_fts) VALUES ('rebuild')")
    # New rows are indexed by catalog.ingest in one statement (no insert trigger, see catalog.db).
    conn.exec_driver_sql(
        "CREATE TRIGGER post_search_ad AFTER DELETE ON post_search BEGIN"
        f" INSERT INTO post_fts(post_fts, rowid, {columns}) VALUES ('delete', old.post_id, {old}); END")
    conn.exec_driver_sql(
        "CREATE TRIGGER post_search_au AFTER UPDATE ON post_search BEGIN"
        f" INSERT INTO post_fts(post_fts, rowid, {columns}) VALUES ('delete', old.post_id, {old});"
        f" INSERT INTO post_fts(rowid, {columns}) VALUES (new.post_id, {new}); END")
    conn.exec_driver_sql(f"INSERT INTO post_fts(post_fts, rank) VALUES ('rank', '{RANK}')")
