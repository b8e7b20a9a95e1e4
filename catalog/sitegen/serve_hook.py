"""mkdocs hook used by `digest site serve`: re-generate the Markdown before each rebuild,
and index the served site for search (Pagefind) after it.

Loaded by mkdocs from its path (``hooks:``), so it takes its inputs from the
environment that `serve_site` sets.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("mkdocs.digest")


def on_pre_build(config, **kwargs) -> None:
    from catalog.db import open_db
    from catalog.sitegen.generate import generate_docs

    db, docs = os.environ.get("DIGEST_SITE_DB"), os.environ.get("DIGEST_SITE_DOCS")
    if not db or not docs:
        return
    engine = open_db(db, create=False)  # a file path or a database URL
    try:
        stats = generate_docs(engine, Path(docs))
    finally:
        engine.dispose()
    if stats.written or stats.removed:
        log.info("digest: regenerated %d pages (%d files written, %d removed)", stats.pages, stats.written,
                 stats.removed)


def on_post_build(config, **kwargs) -> None:
    from catalog.errors import DigestError
    from catalog.sitegen.search import index_site

    try:
        seconds = index_site(Path(config["site_dir"]))
    except DigestError as exc:  # the site still serves; its Search page says the index is missing
        log.warning("digest: %s", exc)
        return
    log.info("digest: search index rebuilt in %.1f s", seconds)
