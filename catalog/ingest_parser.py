"""Parsing a large input file in a forked child process, so that one core parses while this
one writes: parsing is pure Python and the database write is mostly SQLite. The child also
prepares each record for the writer (`catalog.ingest_prepare`).

The child asks the parent for the stored raw digests of its source (``("known?", source)``
on the queue, answered on a second one): the parent's transaction is the one that sees them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Mapping

from catalog.errors import DigestError
from catalog.ingest_prepare import Prepared, prepare
from catalog.ingest_upsert import CHUNK
from scrapers import formats
from scrapers.errors import ParseError
from scrapers.digests import KnownDigests
from scrapers.records import SourceRecord, Unchanged

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # smaller files are parsed in this process


def _parse_in_child(path: str, format: str | None, queue, answers, ask: bool, parent_pid: int) -> None:
    import queue as queue_mod

    def put(item) -> None:
        while True:
            try:
                queue.put(item, timeout=1.0)
                return
            except queue_mod.Full:  # the parent is slow, or gone (killed)
                if os.getppid() != parent_pid:
                    os._exit(1)

    def known(source: SourceRecord) -> Mapping[str, str]:
        put(("known?", source))
        while True:
            try:
                return answers.get(timeout=1.0)
            except queue_mod.Empty:
                if os.getppid() != parent_pid:
                    os._exit(1)

    try:
        batch: list[Prepared | Unchanged] = []
        # prepared here: hashes and search text cost this process, not the writer
        for record in map(prepare, formats.read(path, format, known if ask else None)):
            batch.append(record)
            if len(batch) >= CHUNK:
                put(("batch", batch))
                batch = []
        if batch:
            put(("batch", batch))
        put(("done", None))
    except ParseError as exc:
        put(("error", exc))
    except Exception as exc:  # anything else still reaches the parent as one line
        put(("error", DigestError(f"{path}: {exc.__class__.__name__}: {exc}")))


def records_from_child(path: Path, format: str | None,
                       known: KnownDigests | None = None) -> Iterator[Prepared | Unchanged]:
    """Records parsed by a forked child process, in order; its errors are re-raised here.

    `known` as for `formats.read`: called here, in this process, when the child asks."""
    import multiprocessing
    import queue as queue_mod

    ctx = multiprocessing.get_context("fork")
    q, answers = ctx.Queue(maxsize=4), ctx.Queue(maxsize=1)
    proc = ctx.Process(target=_parse_in_child, args=(str(path), format, q, answers, known is not None, os.getpid()),
                       daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=1.0)
            except queue_mod.Empty:
                if not proc.is_alive():
                    raise DigestError(f"{path}: the parser process died (exit code {proc.exitcode})") from None
                continue
            if kind == "known?":
                answers.put(known(payload))  # asked only when `known` is given; a fresh dict
                continue
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield from payload
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()


def use_child_parser(path: Path) -> bool:
    return (os.cpu_count() or 1) > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES and \
        os.environ.get("DIGEST_PARALLEL_PARSE", "1") != "0" and hasattr(os, "fork")
