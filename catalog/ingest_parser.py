"""Parsing a large input file in a forked child process, so that one core parses while this
one writes: parsing is pure Python and the database write is mostly SQLite."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from catalog.errors import DigestError
from catalog.ingest_upsert import CHUNK
from scrapers import formats
from scrapers.errors import ParseError
from scrapers.records import PostRecord

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # smaller files are parsed in this process


def _parse_in_child(path: str, format: str | None, queue, parent_pid: int) -> None:
    import queue as queue_mod

    def put(item) -> None:
        while True:
            try:
                queue.put(item, timeout=1.0)
                return
            except queue_mod.Full:  # the parent is slow, or gone (killed)
                if os.getppid() != parent_pid:
                    os._exit(1)

    try:
        batch: list[PostRecord] = []
        for record in formats.read(path, format):
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


def records_from_child(path: Path, format: str | None) -> Iterator[PostRecord]:
    """Records parsed by a forked child process, in order; its errors are re-raised here."""
    import multiprocessing
    import queue as queue_mod

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue(maxsize=4)
    proc = ctx.Process(target=_parse_in_child, args=(str(path), format, q, os.getpid()), daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=1.0)
            except queue_mod.Empty:
                if not proc.is_alive():
                    raise DigestError(f"{path}: the parser process died (exit code {proc.exitcode})") from None
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
