"""An arXiv API response (Atom) as `arxiv.Result` objects, parsed strictly.

The package parses feeds inside its private request path only (and leniently: a
truncated answer becomes a feed with fewer entries), so the parser is ours; its output
is the package's public `arxiv.Result` (with `Result.Author` and `Result.Link`), built
through their documented constructors. Anything that is not a whole Atom feed raises
`ArxivResponseError`, so a broken response can never be stored as "these papers do not
exist".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import arxiv
from lxml import etree

from catalog.arxiv.errors import ArxivResponseError

_A = "{http://www.w3.org/2005/Atom}"
_X = "{http://arxiv.org/schemas/atom}"
_OPENSEARCH_TOTAL = "{http://a9.com/-/spec/opensearch/1.1/}totalResults"
_FEED, _ENTRY, _AUTHOR, _NAME, _LINK, _CATEGORY = (_A + t for t in ("feed", "entry", "author", "name", "link", "category"))
_AFFILIATION, _PRIMARY = _X + "affiliation", _X + "primary_category"
_TEXT_FIELDS = {_A + "id": "id", _A + "title": "title", _A + "summary": "summary", _A + "updated": "updated",
                _A + "published": "published", _X + "comment": "comment", _X + "journal_ref": "journal_ref",
                _X + "doi": "doi"}
# No `recover`: a truncated or garbled response must be an error, not a shorter feed.
_STRICT_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
_ERROR_ENTRY = re.compile(r"/api/errors#\w*?_for_(?P<id>\S+)$")


@dataclass
class ParsedPage:
    results: list[arxiv.Result]
    error_ids: list[str]  # ids the API rejected in error entries (``/api/errors#..._for_ID``)
    total: int            # opensearch:totalResults (the whole result set, not this page)


def parse_feed(content: bytes) -> ParsedPage:
    """An API response as package `Result`s; anything that is not a whole Atom feed raises."""
    try:
        root = etree.fromstring(content, _STRICT_XML)
    except etree.XMLSyntaxError as exc:
        raise ArxivResponseError(f"malformed response from the arXiv API (not valid XML: {exc})") from exc
    if root.tag != _FEED:
        raise ArxivResponseError(f"unexpected response from the arXiv API: root element {root.tag!r}, not an Atom feed")
    results, error_ids = [], []
    for entry in root.iterchildren(_ENTRY):
        result = _entry_result(entry)
        if isinstance(result, str):
            error_ids.append(result)
        elif result is not None:
            results.append(result)
    total = root.findtext(_OPENSEARCH_TOTAL)
    return ParsedPage(results, error_ids, int(total) if total and total.strip().isdigit() else len(results))


def rejected_ids(body: bytes) -> list[str]:
    """The ids named by error entries in an error answer's body (none if it is not a feed)."""
    try:
        return parse_feed(body).error_ids
    except ArxivResponseError:
        return []


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _entry_result(entry) -> arxiv.Result | str | None:
    """One ``<entry>`` as a `Result`, read in a single pass over its children.

    Entries without dates are skipped (what arXiv sends for an id it does not know); an
    API error entry gives the id it rejects (a str). One pass instead of a namespaced
    path search per field: parsing was once the slowest step of a sync.
    """
    fields: dict[str, str | None] = {}
    authors, links, categories, primary = [], [], [], ""
    for child in entry:
        tag = child.tag
        name = _TEXT_FIELDS.get(tag)
        if name is not None:
            fields[name] = child.text
        elif tag == _AUTHOR:
            author_name, affiliations = "", []
            for part in child:
                if part.tag == _NAME:
                    author_name = part.text or ""
                elif part.tag == _AFFILIATION and part.text is not None:
                    affiliations.append(part.text)
            authors.append(arxiv.Result.Author(author_name, affiliations))
        elif tag == _LINK:
            href = child.get("href")
            if href is not None:
                links.append(arxiv.Result.Link(href, title=child.get("title"), rel=child.get("rel") or "",
                                               content_type=child.get("type")))
        elif tag == _CATEGORY:
            term = child.get("term")
            if term is not None:
                categories.append(term)
        elif tag == _PRIMARY:
            primary = child.get("term") or ""
    entry_id = (fields.get("id") or "").strip()
    bad = _ERROR_ENTRY.search(entry_id) if "/api/errors" in entry_id else None
    if bad:
        return bad.group("id")
    try:
        updated, published = _when(fields.get("updated")), _when(fields.get("published"))
    except ValueError as exc:
        raise ArxivResponseError(f"malformed response from the arXiv API: bad date in {entry_id}: {exc}") from exc
    if not entry_id or updated is None or published is None:
        return None
    return arxiv.Result(
        entry_id=entry_id, updated=updated, published=published, title=fields.get("title") or "",
        authors=authors, summary=fields.get("summary") or "", comment=fields.get("comment"),
        journal_ref=fields.get("journal_ref"), doi=fields.get("doi"), primary_category=primary,
        categories=categories, links=links)
