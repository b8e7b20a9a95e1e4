"""Queries to the arXiv API: an `arxiv.Search` in, `arxiv.Result`s out, over our `Transport`.

The query is the package's public `arxiv.Search` (query, id_list, max_results, sort_by,
sort_order); the URL carries the same parameters, in the same order, as the package's
own client sends. Paging follows the package's documented behaviour for
`Client.results`: pages of `page_size` until `max_results` results or the end of the
result set, an empty page ending it.
"""

from __future__ import annotations

from typing import Iterator
from urllib.parse import urlencode

import arxiv

from catalog.arxiv.errors import ArxivResponseError
from catalog.arxiv.feed import parse_feed, rejected_ids
from catalog.arxiv.transport import MAX_BATCH, ClientConfig, Transport


def query_url(api_url: str, search: arxiv.Search, start: int, page_size: int) -> str:
    """The API URL for one page of `search`."""
    args = {"search_query": search.query, "id_list": ",".join(search.id_list),
            "sortBy": search.sort_by.value, "sortOrder": search.sort_order.value,
            "start": str(start), "max_results": str(page_size)}
    return api_url + ("&" if "?" in api_url else "?") + urlencode(args)


class ArxivClient:
    """Runs searches page by page; collects the ids the API rejected on the way."""

    def __init__(self, config: ClientConfig, transport: Transport | None = None):
        self.config = config
        self.transport = transport or Transport(config)
        self.error_ids: list[str] = []  # rejected ids seen by the last `results` call

    def results(self, search: arxiv.Search, page_size: int) -> Iterator[arxiv.Result]:
        self.error_ids = []
        limit = search.max_results
        offset = 0
        while limit is None or offset < limit:
            size = page_size if limit is None else min(page_size, limit - offset)
            page = parse_feed(self.transport.get(query_url(self.config.api_url, search, offset, size)))
            self.error_ids += page.error_ids
            if not page.results:
                return
            yield from page.results[:size]
            offset += len(page.results)
            if offset >= page.total:
                return

    def fetch_ids(self, ids: list[str]) -> tuple[list[arxiv.Result], list[str]]:
        """Results for `ids` (one request when they fit one page) and the ids the API rejected."""
        rejected: list[str] = []
        todo = list(ids)
        while todo:
            try:
                results = list(self.results(arxiv.Search(id_list=todo, max_results=len(todo)), page_size=len(todo)))
                return results, rejected + self.error_ids
            except ArxivResponseError as exc:
                # arXiv answers 400 with an error entry naming a malformed id; drop it, ask again.
                named = set(rejected_ids(exc.body)) & set(todo) if exc.status == 400 else set()
                if not named:
                    raise
                rejected += sorted(named)
                todo = [i for i in todo if i not in named]
        return [], rejected

    def search(self, query: str, max_results: int) -> list[arxiv.Result]:
        return list(self.results(arxiv.Search(query=query, max_results=max_results),
                                 page_size=min(max_results, MAX_BATCH)))
