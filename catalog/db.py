"""Opening the catalog on SQLite (a file) or PostgreSQL (a server), and its migrations.

`--db` / ``DIGEST_DB`` is a file path, a ``sqlite:///…`` URL or a PostgreSQL URL
(``postgresql+psycopg://user@host/db``, psycopg 3). SQLite runs in WAL mode with
foreign keys on. Migrations are ONE ordered list for both engines; a step that differs
by engine (the full-text index) branches on the dialect inside. The version reached
is stored in the ``meta`` table on both. Upgrades only ever add: no migration drops data.

The catalog's older queries are raw SQL with ``?`` placeholders (SQLite's qmark
style). On PostgreSQL they reach psycopg through `_qmark_to_format`, which turns
each ``?`` outside string literals into ``%s`` and rewrites ``INSERT OR IGNORE`` to
``ON CONFLICT DO NOTHING``; new code uses SQLAlchemy Core and needs none of it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from catalog.dburl import busy_timeout_ms, catalog_url, describe, is_url  # noqa: F401 - part of this module's API
from catalog.errors import DigestError
from catalog.models import Base, Meta
from catalog.sqlutil import dialect_insert  # noqa: F401 - part of this module's API

SCHEMA_VERSION_KEY = "schema_version"


def _create_base_schema(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def _create_search_index(conn: Connection) -> None:
    # The derived search text lives in its own table (the same on both engines).
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS post_search ("
        " post_id INTEGER PRIMARY KEY REFERENCES post(id) ON DELETE CASCADE,"
        " title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '')"
    )
    if conn.dialect.name == "postgresql":
        from catalog.search_pg import create_search_index

        create_search_index(conn)
        return
    # FTS5 indexes it as external content, kept in step by triggers, so the index
    # never disagrees with the rows.
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
    # PostgreSQL weighs the title in the tsvector itself (catalog.search_pg).
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql("INSERT INTO post_fts(post_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)')")


def _index_inserts_explicitly(conn: Connection) -> None:
    # A row trigger makes FTS5 index each new row as its own statement, three times
    # slower than one multi-row insert; catalog.ingest now writes new rows to the
    # index itself (updates and deletes keep their triggers: they are rare).
    if conn.dialect.name != "sqlite":
        return
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS post_search_ai")


def _one_source_per_channel(conn: Connection) -> None:
    # Source aliases, follows, channel ids, text fingerprints and copy links (catalog.source_schema).
    from catalog.source_schema import add_source_identity_schema

    add_source_identity_schema(conn)


def _create_related(conn: Connection) -> None:
    from catalog.models import Related

    Base.metadata.create_all(conn, tables=[Related.__table__])


def _follow_keyed_by_host(conn: Connection) -> None:
    # A channel in the follow list is its handle on one host (t.me or a named mirror).
    from catalog.follow_policy import key_follows_by_host

    key_follows_by_host(conn)


def _stem_search_index(conn: Connection) -> None:
    # Snowball stems beside the derived text, indexed on both engines (catalog.stem_index).
    from catalog.stem_index import add_stems

    add_stems(conn)


def _digest_raw_messages(conn: Connection) -> None:
    # The raw-message digest a re-ingest compares before analysing (catalog.ingest_skip).
    from catalog.ingest_skip import add_raw_digest

    add_raw_digest(conn)


# Append new migrations at the end; never edit or reorder the ones already released.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _create_base_schema,
    _create_search_index,
    _rank_titles_higher,
    _index_inserts_explicitly,
    _one_source_per_channel,
    _create_related,
    _follow_keyed_by_host,
    _stem_search_index,
    _digest_raw_messages,
]


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe under WAL: a crash loses at most the last commit
    cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
    cur.close()


_QUOTED_OR_QMARK = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(\?)|(%)")
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)


def _qmark_to_format(conn, cursor, statement: str, parameters, context, executemany):
    """Raw qmark SQL (``?``) as psycopg's format style (``%s``); SQLAlchemy's own SQL passes untouched."""
    if getattr(context, "compiled", None) is not None:
        return statement, parameters  # SQLAlchemy compiled it for psycopg already
    if "?" not in statement and not _INSERT_OR_IGNORE.match(statement):
        return statement, parameters

    def swap(m: re.Match) -> str:
        if m.group(1):
            return "%s"
        # psycopg reads every % as a placeholder, inside string literals too: double them all.
        return m.group(0).replace("%", "%%")

    if _INSERT_OR_IGNORE.match(statement):
        statement = _INSERT_OR_IGNORE.sub("INSERT INTO", statement, count=1) + " ON CONFLICT DO NOTHING"
    if "?" in statement:
        statement = _QUOTED_OR_QMARK.sub(swap, statement)
    return statement, parameters


def catalog_exists(target: str | Path | URL) -> bool:
    """Whether a catalog is there to read: the file exists; a server's database has our schema."""
    url = catalog_url(target)
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and Path(url.database).exists()
    from catalog.dbfaults import db_fault

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return schema_version(conn) > 0
    except Exception as exc:
        # An unreachable server or a refused login says so: the catalog may well be there.
        raise (db_fault(exc, url) or exc) from exc
    finally:
        engine.dispose()


def schema_version(conn: Connection) -> int:
    if not inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(select(Meta.value).where(Meta.key == SCHEMA_VERSION_KEY)).scalar()
    return int(value) if value is not None else 0


def migrate(engine: Engine) -> int:
    """Bring the schema up to date; returns the version reached."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes may open a fresh catalog at once: one migrates, the others wait.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        current = schema_version(conn)
        if current > len(MIGRATIONS):
            raise DigestError(
                f"catalog schema version {current} is newer than this program ({len(MIGRATIONS)}): upgrade paper-digest")
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(conn)
            stmt = dialect_insert(conn, Meta.__table__).values(key=SCHEMA_VERSION_KEY, value=str(version))
            conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))
        return len(MIGRATIONS)


def _open_sqlite(path: Path, *, create: bool) -> Engine:
    if path.exists() and path.is_dir():
        raise DigestError(f"{path} is a directory, not a catalog database")
    if not create and not path.exists():
        raise DigestError(f"no catalog at {path}")
    if not path.parent.exists():
        raise DigestError(f"cannot create catalog {path}: folder {path.parent} does not exist")
    engine = create_engine(f"sqlite:///{path}", future=True)
    event.listen(engine, "connect", _on_connect)
    return engine


def _open_postgresql(url: URL) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "before_cursor_execute", _qmark_to_format, retval=True)
    return engine


def open_db(target: str | Path, *, create: bool = True) -> Engine:
    """Open (creating and migrating when needed) the catalog at `target`: a path or a URL."""
    url = catalog_url(target)
    if url.get_backend_name() == "sqlite":
        engine = _open_sqlite(Path(url.database or ""), create=create)
    else:
        engine = _open_postgresql(url)
        if not create and not catalog_exists(url):
            engine.dispose()
            raise DigestError(f"no catalog at {describe(target)}")
    try:
        migrate(engine)
    except DigestError:
        raise
    except Exception as exc:  # a file that is not SQLite, a locked or read-only DB, a server that refuses
        from catalog.dbfaults import db_fault, first_line

        engine.dispose()
        known = db_fault(exc, target, doing="while opening the catalog")
        if known is not None:
            raise known from exc
        raise DigestError(f"cannot open catalog {describe(target)}: {exc.__class__.__name__}:"
                          f" {first_line(exc)}") from exc
    return engine


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as s:
        with s.begin():
            yield s
