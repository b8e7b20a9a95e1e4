"""Idempotent upsert of `PostRecord`s into the catalog.

One transaction per input: a file either lands whole or not at all, so a parse error
halfway, or a killed process, leaves the catalog as it was. Re-ingesting the same
input changes nothing (same rows, same ids); an edited post (same id, new content)
is updated in place with ``edited_at`` set. The batches are written by
`catalog.ingest_upsert`; a large file is parsed in a forked child (`catalog.ingest_parser`).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from catalog.dbfaults import fault_kind, retry_once_if_lost, target_of
from catalog.errors import DigestError
from catalog.ingest_parser import records_from_child, use_child_parser
from catalog.ingest_prepare import prepare
from catalog.ingest_skip import StoredDigests
from catalog.ingest_stats import IngestStats
from catalog.ingest_upsert import CHUNK, Upserter
from scrapers import formats
from scrapers.errors import ParseError
from scrapers.records import PostRecord, Unchanged

RETRYABLE = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure
RETRIES = 8
RETRY_LOCK = 0x6469_6765_7374  # the advisory lock retried writers take turns on ("digest")


def _chunks(records: Iterable[PostRecord], size: int) -> Iterator[list[PostRecord]]:
    batch: list[PostRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_records(engine: Engine, records: Iterable[PostRecord], *,
                   on_progress: Callable[[int], None] | None = None, one_at_a_time: bool = False) -> IngestStats:
    """Upsert `records` in ONE transaction; any exception rolls all of them back.

    `one_at_a_time` (PostgreSQL): wait until no other such writer is running before writing,
    for a retry after a deadlock (see `ingest_file`)."""
    return _in_one_transaction(engine, lambda _known: records, on_progress=on_progress, one_at_a_time=one_at_a_time)


def _in_one_transaction(engine: Engine, open_records: Callable[[StoredDigests | None], Iterable[PostRecord | Unchanged]],
                        *,
                        on_progress: Callable[[int], None] | None, one_at_a_time: bool,
                        digests: Callable[[Connection], StoredDigests | None] = lambda _conn: None) -> IngestStats:
    """`ingest_records` of what `open_records` reads once the transaction is open: a reader
    given the stored digests (made by `digests` on the transaction's connection) compares
    messages with what this transaction sees."""
    stats = IngestStats(files=1)
    with engine.begin() as conn:
        if one_at_a_time and conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(?)", (RETRY_LOCK,))
        stored = digests(conn)
        upserter = Upserter(conn, stats, stored)
        records = open_records(stored)
        try:
            for batch in _chunks(map(prepare, records), CHUNK):
                upserter.write(batch)
                if on_progress:
                    on_progress(len(batch))
        finally:
            # Stop the parser now, in this process: left to the garbage collector, a generator of a
            # failed attempt could be finalised inside the next attempt's forked parser.
            getattr(records, "close", lambda: None)()
        upserter.finish()
    stats._finish()
    return stats


def input_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and the files inside folders named (sorted; hidden files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            out.append(p)
        else:
            raise DigestError(f"{p}: no such file or folder")
    return out


def ingest_file(engine: Engine, path: str | Path, *, format: str | None = None,
                on_progress: Callable[[int], None] | None = None) -> IngestStats:
    """Read one file (format detected unless given) and upsert it in one transaction.

    On PostgreSQL, writers that share tags or papers can deadlock: each holds the new rows of
    its earlier batches until it commits (sorting keys only orders one batch). The server
    then aborts one transaction; that writer reads its file again and retries, and retries
    take turns (an advisory lock), so they cannot deadlock with each other again: writers
    run side by side until they collide, then the ones that collided one after another.
    """
    def attempts() -> IngestStats:
        for attempt in range(1, RETRIES):
            try:
                return _ingest_file_once(engine, Path(path), format, on_progress, one_at_a_time=attempt > 1)
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) not in RETRYABLE:
                    raise
            time.sleep(random.uniform(0.1, 0.5) * attempt)  # let the other writer go first
        return _ingest_file_once(engine, Path(path), format, on_progress, one_at_a_time=True)

    # A lost server connection reads the whole file again once, after reconnecting; the
    # transaction of the failed attempt was rolled back by the server, so nothing doubles.
    return retry_once_if_lost(engine, target_of(engine), attempts, doing=f"while ingesting {path}",
                              unstored="nothing from this file was stored")


def _ingest_file_once(engine: Engine, path: Path, format: str | None,
                      on_progress: Callable[[int], None] | None, *, one_at_a_time: bool) -> IngestStats:
    try:
        if format:
            formats.by_name(format)  # an unknown name fails here, before any work
        else:
            format = formats.detect(path).NAME
        read = records_from_child if use_child_parser(path) else formats.read
        # The reader is given the digests stored for its source: unchanged messages come back
        # unanalysed (catalog.ingest_skip).
        return _in_one_transaction(engine, lambda known: read(path, format, known), on_progress=on_progress,
                                   one_at_a_time=one_at_a_time, digests=StoredDigests)
    except ParseError as exc:
        raise DigestError(str(exc)) from exc
    except formats.UnknownFormat as exc:  # a bad --format name (not any KeyError: that would hide bugs)
        raise DigestError(str(exc)) from exc
    except (OSError, UnicodeError) as exc:
        if fault_kind(exc) is not None:  # a full disk under the catalog, not a bad input file
            raise
        raise DigestError(f"{path}: {exc.__class__.__name__}: {exc}") from exc


def ingest_paths(engine: Engine, paths: Iterable[str | Path], *, format: str | None = None,
                 on_file: Callable[[Path], None] | None = None,
                 on_progress: Callable[[int], None] | None = None) -> IngestStats:
    """Ingest every file under `paths`; the first bad file stops the run, earlier files stay."""
    total = IngestStats()
    for path in input_files(paths):
        if on_file:
            on_file(path)
        total.merge(ingest_file(engine, path, format=format, on_progress=on_progress))
    return total
