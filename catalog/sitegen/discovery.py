"""Discovery on the site: related items, feeds, BibTeX and citation tags, most-discussed.

Each piece is computed by its library module (`catalog.related`, `catalog.feeds`,
`catalog.bibtex`, `catalog.discussed`) — the same code the CLI uses — and only
attached to the loaded catalog's dicts here for the templates.
"""

from __future__ import annotations

import html
from typing import Any, Callable

from markupsafe import Markup
from sqlalchemy import Engine

from catalog.bibtex import catalog_keys, entry
from catalog.discussed import recent_window, top_papers
from catalog.feeds import Feed, atom_xml, catalog_feeds, rss_xml
from catalog.related import ensure_related
from catalog.related_lookup import related_map

RELATED_ON_PAGE = 5
DISCUSSED_ON_PAGE = 25
RECENT_DAYS = 30


def _citation(paper: dict[str, Any]) -> dict[str, Any]:
    """Highwire Press ``citation_*`` tags, which Zotero's connector and Google Scholar read."""
    tags: dict[str, Any] = {"citation_title": paper["title"], "citation_author": paper["authors"],
                            "citation_arxiv_id": paper["arxiv_id"]}
    if paper["published"]:
        tags["citation_publication_date"] = paper["published"].strftime("%Y/%m/%d")
    if paper["pdf_url"]:
        tags["citation_pdf_url"] = paper["pdf_url"]
    if paper["doi"]:
        tags["citation_doi"] = paper["doi"]
    if paper["journal_ref"]:
        tags["citation_journal_title"] = paper["journal_ref"]
    return tags


def _bibtex_fields(paper: dict[str, Any]) -> dict[str, Any]:
    return {**paper, "published": paper["published"].isoformat() if paper["published"] else "",
            "doi": paper["doi"] or None, "journal_ref": paper["journal_ref"] or None}


def attach_discovery(engine: Engine, cat: Any, *, feed_entries: int) -> list[Feed]:
    """Give every post and paper its related items, every paper its BibTeX and citation tags,
    every page its feed; returns the feeds to write."""
    ensure_related(engine)
    neighbours = related_map(engine, limit=RELATED_ON_PAGE)
    posts = {p["id"]: p for p in cat.posts}
    things = {"post": posts, "paper": cat.papers}
    for kind, items in things.items():
        for item_id, item in items.items():
            item["related"] = [(other_kind, things[other_kind][other_id], score)
                               for other_kind, other_id, score in neighbours.get((kind, item_id), [])
                               if other_id in things[other_kind]]
    keys = catalog_keys(engine)
    for paper in cat.papers.values():
        with_metadata = paper["title"] and paper["arxiv_id"] in keys
        bib = entry(_bibtex_fields(paper), keys[paper["arxiv_id"]]) if with_metadata else ""
        # inside a raw HTML block a blank line would end the block: newlines as references
        paper["bibtex"] = Markup(html.escape(bib).replace("\n", "&#10;"))
        paper["citation"] = _citation(paper) if with_metadata else None
    feeds = catalog_feeds(cat, limit=feed_entries)
    by_page = {feed.page: feed.path for feed in feeds}
    for group, section in ((cat.sources, "sources"), (cat.tags, "tags"), (cat.papers.values(), "papers")):
        for item in group:
            item["feed"] = by_page[f"{section}/{item['slug']}/"]
    return feeds


def write_feeds(writer: Any, feeds: list[Feed], base_url: str = "",
                unchanged: Callable[[Feed], bool] | None = None) -> None:
    """Every feed as Atom; the site-wide one also as RSS 2.0. With the site's `base_url` every
    link in them is absolute (RSS requires it; many readers drop relative links). A feed for
    which `unchanged` says True is left as the last build wrote it (the builder's inputs check)."""
    entries: dict = {}  # each post's <entry>, made once for all the feeds it is in
    for feed in feeds:
        if unchanged is not None and unchanged(feed):
            continue
        atom_path, *rss_paths = feed.paths
        writer.text(atom_path, atom_xml(feed, base_url=base_url, entries=entries).decode("utf-8"))
        for rss_path in rss_paths:
            writer.text(rss_path, rss_xml(feed, base_url=base_url).decode("utf-8"))


def write_discussed(engine: Engine, cat: Any, page: Callable[..., None]) -> None:
    """The "Most discussed" page: all time, and the last 30 days before the newest post."""
    by_arxiv = {p["arxiv_id"]: p for p in cat.papers.values()}

    def rows(since=None):
        found = top_papers(engine, since=since, limit=DISCUSSED_ON_PAGE)
        return [{**r, "paper": by_arxiv[r["arxiv_id"]], "last_post": _parse(r["last_post"])}
                for r in found if r["arxiv_id"] in by_arxiv]

    since = recent_window(engine, RECENT_DAYS)
    page("papers/discussed.md", "discussed.html.j2", all_time=rows(), recent=rows(since) if since else [],
         recent_since=since, days=RECENT_DAYS)


def _parse(value: str | None):
    from datetime import datetime

    return datetime.fromisoformat(value) if value else None
