"""`sync`: fetch metadata for every pending paper, batch by batch, each batch in its own transaction.

When the network is down (connection refused, DNS failure, connect timeout) sync stops,
keeps what earlier batches stored, and reports what is still pending with a warning;
the caller decides that this is not a failure. A malformed response raises
`ArxivResponseError` after rolling back its own batch.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable

from sqlalchemy import Engine

from catalog.arxiv.client import ArxivClient
from catalog.arxiv.errors import NetworkDown
from catalog.arxiv.meta import PaperMeta, paper_meta, split_version
from catalog.arxiv.store import pending_ids, store_papers
from catalog.arxiv.transport import MAX_BATCH, ClientConfig, Transport
from catalog.models import PaperStatus
from catalog.tagging import apply_category_tags


@dataclass
class SyncReport:
    requested: int = 0          # ids this run meant to fetch
    fetched: int = 0            # papers stored with metadata (ok or withdrawn)
    withdrawn: int = 0
    not_found: int = 0
    errors: int = 0             # ids the API rejected as malformed
    requests: int = 0
    posts_updated: int = 0      # posts re-tagged and re-indexed
    offline: bool = False
    warning: str | None = None
    pending: list[str] = field(default_factory=list)  # ids still without metadata
    added: list[str] = field(default_factory=list)    # `add`: ids now in the catalog

    def as_dict(self) -> dict:
        return asdict(self)

    def count(self, found: list[PaperMeta], missing: list[tuple[str, PaperStatus]], posts: list[int]) -> None:
        self.fetched += len(found)
        self.withdrawn += sum(m.status is PaperStatus.WITHDRAWN for m in found)
        self.not_found += sum(s is PaperStatus.NOT_FOUND for _, s in missing)
        self.errors += sum(s is PaperStatus.ERROR for _, s in missing)
        self.posts_updated += len(posts)


class BatchWriter:
    """Stores fetched batches from a thread of its own, in order, one transaction each.

    The catalog writes (upserts, tags, re-indexing the posts) then overlap the next request
    and its parsing instead of delaying it; with arXiv's 3 s pacing this hardly matters,
    on a mirror without pacing it is most of the difference to a bare fetch. At most
    `depth` batches wait; a failed write stops the writer, and `finish` hands its error on.
    """

    def __init__(self, engine: Engine, report: SyncReport, on_progress: Callable[[int], None] | None = None,
                 *, depth: int = 2):
        self.engine = engine
        self.report = report
        self.on_progress = on_progress
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="arxiv-store", daemon=True)
        self._thread.start()

    def put(self, asked: int, found: list[PaperMeta], missing: list[tuple[str, PaperStatus]]) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put((asked, found, missing))

    def finish(self) -> BaseException | None:
        """Wait until every batch put so far is stored (or the writer failed); its error, if any."""
        self._queue.put(None)
        self._thread.join()
        return self.error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # failed: drain, so `put` never blocks on a dead writer
            asked, found, missing = item
            try:
                with self.engine.begin() as conn:
                    posts = store_papers(conn, found, missing)
                self.report.count(found, missing, posts)
                if self.on_progress:
                    self.on_progress(asked)
            except BaseException as exc:  # handed to the caller's thread by `finish`
                self.error = exc


class Syncer:
    """Fetches ids batch by batch; each batch is stored in its own transaction (see `BatchWriter`)."""

    def __init__(self, engine: Engine, config: ClientConfig | None = None, *, transport: Transport | None = None,
                 on_progress: Callable[[int], None] | None = None):
        self.engine = engine
        self.config = config or (transport.config if transport else ClientConfig.from_env())
        self.owns_transport = transport is None
        self.client = ArxivClient(self.config, transport or Transport(self.config))
        self.on_progress = on_progress

    @property
    def requests(self) -> int:
        return len(self.client.transport.sent)

    def close(self) -> None:
        if self.owns_transport:
            self.client.transport.close()

    def fetch_batch(self, batch: list[str], versions: dict[str, int]) -> tuple[list[PaperMeta],
                                                                               list[tuple[str, PaperStatus]]]:
        """Metadata for `batch` (asking for the `versions` named) and the ids that got none, with why."""
        asked = [f"{i}v{versions[i]}" if i in versions else i for i in batch]
        results, rejected = self.client.fetch_ids(asked)
        wanted = set(batch)
        found: dict[str, PaperMeta] = {}
        for result in results:
            meta = paper_meta(result)
            if meta.arxiv_id in wanted:
                found[meta.arxiv_id] = meta
        rejected_ids = {split_version(r)[0] for r in rejected}
        missing = [(i, PaperStatus.ERROR if i in rejected_ids else PaperStatus.NOT_FOUND)
                   for i in batch if i not in found]
        return list(found.values()), missing

    def fetch_and_store(self, ids: list[str], report: SyncReport, versions: dict[str, int] | None = None) -> None:
        """Batches stored before a failure stay stored; the failure is raised after they are."""
        versions = versions or {}
        size = max(1, min(self.config.batch_size, MAX_BATCH))
        writer = BatchWriter(self.engine, report, self.on_progress)
        try:
            for start in range(0, len(ids), size):
                batch = ids[start:start + size]
                writer.put(len(batch), *self.fetch_batch(batch, versions))
        except BaseException as exc:
            stored_error = writer.finish()
            if stored_error is not None and stored_error is not exc:
                raise stored_error from exc
            raise
        stored_error = writer.finish()
        if stored_error is not None:
            raise stored_error


def sync(engine: Engine, *, refresh: bool = False, offline: bool = False, config: ClientConfig | None = None,
         transport: Transport | None = None, on_start: Callable[[int], None] | None = None,
         on_progress: Callable[[int], None] | None = None) -> SyncReport:
    """Fetch metadata for every pending paper (every paper with `refresh`).

    Offline, or when the network turns out to be down, nothing is fetched or lost: the
    report lists the ids still pending and carries a warning. Posts ingested since their
    paper was fetched get its category tags first (no network needed).
    """
    report = SyncReport()
    with engine.begin() as conn:
        apply_category_tags(conn)
        ids = pending_ids(conn, refresh=refresh)
    report.requested = len(ids)
    if on_start:
        on_start(len(ids))
    if offline:
        report.offline = True
        report.warning = "offline: nothing fetched"
    elif ids:
        syncer = Syncer(engine, config, transport=transport, on_progress=on_progress)
        try:
            syncer.fetch_and_store(ids, report)
        except NetworkDown as exc:
            report.offline = True
            report.warning = f"{exc}; nothing more fetched"
        finally:
            report.requests = syncer.requests
            syncer.close()
    with engine.connect() as conn:
        report.pending = pending_ids(conn)
    return report
