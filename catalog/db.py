"""Opening the catalog: SQLite in WAL mode, foreign keys on, schema migrations.

Migrations are an ordered list of functions; the version reached is stored in the
``meta`` table. Upgrades only ever add: no migration drops data.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.orm import Session

from catalog.errors import DigestError
from catalog.models import Base, Meta

SCHEMA_VERSION_KEY = "schema_version"


def _create_base_schema(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def _create_search_index(conn: Connection) -> None:
    # The derived search text lives in its own table; FTS5 indexes it as external
    # content, kept in step by triggers, so the index never disagrees with the rows.
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS post_search ("
        " post_id INTEGER PRIMARY KEY REFERENCES post(id) ON DELETE CASCADE,"
        " title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '')"
    )
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS post_fts USING fts5("
        " title, body, content='post_search', content_rowid='post_id',"
        " tokenize='unicode61 remove_diacritics 0')"
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER IF NOT EXISTS post_search_ai AFTER INSERT ON post_search BEGIN"
        " INSERT INTO post_fts(rowid, title, body) VALUES (new.post_id, new.title, new.body); END"
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER IF NOT EXISTS post_search_ad AFTER DELETE ON post_search BEGIN"
        " INSERT INTO post_fts(post_fts, rowid, title, body) VALUES ('delete', old.post_id, old.title, old.body); END"
    )
    conn.exec_driver_sql(
        "CREATE TRIGGER IF NOT EXISTS post_search_au AFTER UPDATE ON post_search BEGIN"
        " INSERT INTO post_fts(post_fts, rowid, title, body) VALUES ('delete', old.post_id, old.title, old.body);"
        " INSERT INTO post_fts(rowid, title, body) VALUES (new.post_id, new.title, new.body); END"
    )


def _rank_titles_higher(conn: Connection) -> None:
    # A persistent rank function lets plain "ORDER BY rank" use bm25 with the title
    # weighted, which FTS5 evaluates faster than an explicit bm25() call in ORDER BY.
    conn.exec_driver_sql("INSERT INTO post_fts(post_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)')")


def _index_inserts_explicitly(conn: Connection) -> None:
    # A row trigger makes FTS5 index each new row as its own statement, three times
    # slower than one multi-row insert; catalog.ingest now writes new rows to the
    # index itself (updates and deletes keep their triggers: they are rare).
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS post_search_ai")


def _one_source_per_channel(conn: Connection) -> None:
    # Source aliases, follows, channel ids, text fingerprints and copy links (catalog.sources).
    from catalog.sources import add_source_identity_schema

    add_source_identity_schema(conn)


def _create_related(conn: Connection) -> None:
    from catalog.models import Related

    Base.metadata.create_all(conn, tables=[Related.__table__])


# Append new migrations at the end; never edit or reorder the ones already released.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _create_base_schema,
    _create_search_index,
    _rank_titles_higher,
    _index_inserts_explicitly,
    _one_source_per_channel,
    _create_related,
]


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe under WAL: a crash loses at most the last commit
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def schema_version(conn: Connection) -> int:
    has_meta = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").first()
    if not has_meta:
        return 0
    value = conn.execute(select(Meta.value).where(Meta.key == SCHEMA_VERSION_KEY)).scalar()
    return int(value) if value is not None else 0


def migrate(engine: Engine) -> int:
    """Bring the schema up to date; returns the version reached."""
    with engine.begin() as conn:
        current = schema_version(conn)
        if current > len(MIGRATIONS):
            raise DigestError(
                f"catalog schema version {current} is newer than this program ({len(MIGRATIONS)}): upgrade paper-digest")
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(conn)
            conn.exec_driver_sql(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (SCHEMA_VERSION_KEY, str(version)))
        return len(MIGRATIONS)


def open_db(path: str | Path, *, create: bool = True) -> Engine:
    """Open (creating and migrating when needed) the catalog at `path`."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise DigestError(f"{path} is a directory, not a catalog database")
    if not create and not path.exists():
        raise DigestError(f"no catalog at {path}")
    if not path.parent.exists():
        raise DigestError(f"cannot create catalog {path}: folder {path.parent} does not exist")
    engine = create_engine(f"sqlite:///{path}", future=True)
    event.listen(engine, "connect", _on_connect)
    try:
        migrate(engine)
    except DigestError:
        raise
    except Exception as exc:  # a file that is not SQLite, a locked or read-only DB
        raise DigestError(f"cannot open catalog {path}: {exc.__class__.__name__}: {exc}") from exc
    return engine


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as s:
        with s.begin():
            yield s
