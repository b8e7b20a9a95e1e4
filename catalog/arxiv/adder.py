"""`add`: papers by id or by arXiv search query, whether or not a post mentions them."""

from __future__ import annotations

import re
from typing import Iterable

from sqlalchemy import Engine

from catalog.arxiv.errors import NetworkDown
from catalog.arxiv.meta import paper_meta
from catalog.arxiv.store import record_ids, store_papers, with_status
from catalog.arxiv.syncer import Syncer, SyncReport
from catalog.arxiv.transport import ClientConfig, Transport
from catalog.errors import UsageError
from scrapers.normalize import normalize_arxiv_id


def _looks_like_id(item: str) -> bool:
    """One token that is not a field query (``ti:dropout``): meant as an arXiv id or URL."""
    if any(ch.isspace() for ch in item):
        return False
    low = item.lower()
    if low.startswith(("arxiv:", "http://", "https://", "arxiv.org/", "www.arxiv.org/")):
        return True
    return not re.match(r"^[a-z_]+:", low) and bool(re.match(r"^[\w.\-/]*\d[\w.\-/]*$", item))


def parse_add_args(items: Iterable[str]) -> tuple[dict[str, int | None], list[str]]:
    """Split `digest arxiv add` arguments into ids (with any version named) and search queries.

    ``2004.13342``, ``arXiv:1807.03819v3``, ``hep-th/9901001`` and arxiv.org URLs are ids;
    anything else (``cat:cs.CL AND ti:dropout``, ``dropout``) is an arXiv search query.
    """
    ids: dict[str, int | None] = {}
    queries: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if not _looks_like_id(item):
            queries.append(item)
            continue
        try:
            arxiv_id, version = normalize_arxiv_id(item)
        except ValueError:
            raise UsageError(f"not an arXiv id: {item!r} (ids look like 2004.13342, 1807.03819v3 or "
                             "hep-th/9901001; quote a search query such as 'cat:cs.CL AND ti:dropout')") from None
        ids[arxiv_id] = version if version is not None else ids.get(arxiv_id)
    return ids, queries


def add(engine: Engine, items: Iterable[str], *, max_results: int = 10, config: ClientConfig | None = None,
        transport: Transport | None = None, offline: bool = False) -> SyncReport:
    """Add papers by id or by arXiv search query.

    Ids are always recorded (as pending when the API cannot be reached, so a later `sync`
    fills them); queries need the network. Ids already fetched are not asked again.
    """
    ids, queries = parse_add_args(items)
    if not ids and not queries:
        raise UsageError("give at least one arXiv id or search query")
    if max_results < 1:
        raise UsageError("--max must be at least 1")
    report = SyncReport()
    with engine.begin() as conn:
        if ids:
            record_ids(conn, ids)
        cached = set(with_status(conn, list(ids), pending=False)) if ids else set()
    todo = [i for i in ids if i not in cached]
    report.added = list(ids)
    report.requested = len(todo)
    if offline:
        report.offline, report.warning = True, "offline: nothing fetched"
    else:
        syncer = Syncer(engine, config, transport=transport)
        try:
            if todo:
                syncer.fetch_and_store(todo, report, {i: v for i, v in ids.items() if v is not None and i in todo})
            for query in queries:
                metas = [paper_meta(r) for r in syncer.client.search(query, max_results)]
                with engine.begin() as conn:
                    report.posts_updated += len(store_papers(conn, metas))
                report.fetched += len(metas)
                report.added += [m.arxiv_id for m in metas if m.arxiv_id not in report.added]
        except NetworkDown as exc:
            report.offline, report.warning = True, f"{exc}; nothing more fetched"
        finally:
            report.requests = syncer.requests
            syncer.close()
    if report.offline and queries:
        report.warning += f"; {len(queries)} search quer{'y' if len(queries) == 1 else 'ies'} not run"
    with engine.connect() as conn:
        report.pending = with_status(conn, report.added, pending=True) if report.added else []
    return report
