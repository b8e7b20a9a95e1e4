"""mkdocs hook used by `digest site serve`: re-generate the Markdown before each rebuild;
after it, stamp the generated pages into their shells (stamp.py) and index the served
site for search (Pagefind).

Loaded by mkdocs from its path (``hooks:``), so it takes its inputs from the
environment that `serve_site` sets.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("mkdocs.digest")
_last: dict = {}  # the stats of the latest generation: its plan is stamped after the build


def on_pre_build(config, **kwargs) -> None:
    from catalog.db import open_db
    from catalog.sitegen.generate import generate_docs

    db, docs = os.environ.get("DIGEST_SITE_DB"), os.environ.get("DIGEST_SITE_DOCS")
    if not db or not docs:
        return
    engine = open_db(db, create=False)  # a file path or a database URL
    try:
        stats = generate_docs(engine, Path(docs), feeds_in_docs=True)
    finally:
        engine.dispose()
    _last["stats"] = stats
    if stats.written or stats.removed:
        log.info("digest: regenerated %d pages (%d files written, %d removed)", stats.pages, stats.written,
                 stats.removed)


def on_post_build(config, **kwargs) -> None:
    from catalog.errors import DigestError
    from catalog.sitegen.writer import DocsWriter
    from catalog.sitegen.search import index_site

    site_dir = Path(config["site_dir"])
    stats = _last.get("stats")
    try:
        if stats is not None and stats.plan is not None:
            stats.plan.stamp(site_dir, DocsWriter(site_dir))
            stats.plan.remove_shells(site_dir)
        seconds = index_site(site_dir, stats.post_pages if stats else None, post_keys=stats.post_keys if stats else None,
                             papers=stats.paper_pages if stats else ())
    except DigestError as exc:  # the site still serves; its Search page says the index is missing
        log.warning("digest: %s", exc)
        return
    log.info("digest: search index rebuilt in %.1f s", seconds)
