"""Which search shard each searched page belongs to, so that a rebuild re-indexes little.

Posts and papers are cut into shards of their own (``shard-NNNN`` for posts by date,
``papers-NNNN`` by arXiv id), every other page (reproductions, hand-written pages; the tag,
source and list pages are not searched) into one ``pages`` shard. Each item has a sort key
(`post_key`, `paper_key`); a shard covers the keys from its ``first`` up to the next shard's.

The boundaries are kept in the manifest and do not move: a page stays in the shard it was
indexed in. A first build (no manifest) cuts every `size` items from the oldest. Then new
items join the shard whose range holds them, which for new posts and new arXiv ids is the
newest one; when the newest shard would grow past `size`, the items newer than everything it
held (its ``last``) start a new shard and the full one is left as it was indexed. So new posts
re-index only the newest post shard (or none but a new one), a deleted old post re-indexes
only its own shard, and the boundaries of two catalogs that are equal may differ with their
histories (the pages and what a query finds do not).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Any

POSTS, PAPERS, PAGES = "posts", "papers", "pages"
PREFIX = {POSTS: "shard", PAPERS: "papers"}
_NUMBER = re.compile(r"-(\d+)$")


def post_key(published: datetime | None, post_id: int) -> str:
    """Orders posts as the catalog does, oldest first: undated ones before every dated one."""
    when = "1" + published.strftime("%Y-%m-%dT%H:%M:%S.%f") if published else "0"
    return f"{when}|{post_id:012d}"


def paper_key(arxiv_id: str) -> str:
    """New-style arXiv ids (2004.13342) grow with time; old-style ones (hep-th/9901001) come first."""
    return ("0" if "/" in arxiv_id else "1") + arxiv_id


def cut(kind: str, items: Sequence[tuple[str, str]], previous: Sequence[dict[str, Any]],
        size: int) -> list[dict[str, Any]]:
    """Shards of `items` ((key, page) pairs, any order), newest first, each a dict with its
    ``name``, ``pages`` (newest first), ``first`` and ``last`` keys; `previous`: this kind's
    shards in the last manifest (their ``path``, ``first``, ``last``)."""
    items = sorted(items)
    if not items:
        return []
    size = max(size, 1)
    old = sorted((e for e in previous if isinstance(e.get("first"), str) and isinstance(e.get("last"), str)
                  and _NUMBER.search(e.get("path", "").rstrip("/"))), key=lambda e: e["first"])
    if not old:
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        return [_shard(f"{PREFIX[kind]}-{k:04d}", chunk[0][0], chunk) for k, chunk in enumerate(chunks)][::-1]
    starts = [e["first"] for e in old]
    groups: list[list[tuple[str, str]]] = [[] for _ in old]
    for item in items:
        groups[max(bisect_right(starts, item[0]) - 1, 0)].append(item)
    names = [e["path"].rstrip("/") for e in old]
    lasts = [e["last"] for e in old]
    extra = []
    tail, held_until = groups[-1], lasts[-1]
    fresh = [item for item in tail if item[0] > held_until]
    if len(tail) > size and fresh:  # the newest shard is full: what is newer than it starts new ones
        groups[-1] = [item for item in tail if item[0] <= held_until]
        number = max(int(_NUMBER.search(n).group(1)) for n in names) + 1
        for i in range(0, len(fresh), size):
            extra.append(_shard(f"{PREFIX[kind]}-{number:04d}", fresh[i][0], fresh[i:i + size]))
            number += 1
    kept = [_shard(name, first, group, last) for name, first, group, last in zip(names, starts, groups, lasts)
            if group]
    return (kept + extra)[::-1]


def _shard(name: str, first: str, items: list[tuple[str, str]], last: str = "") -> dict[str, Any]:
    return {"name": name, "first": first, "last": max(last, items[-1][0]),
            "pages": [page for _key, page in reversed(items)]}


def interleave(posts: list[Any], papers: list[Any], pages: list[Any]) -> list[Any]:
    """The manifest's order: newest first, kinds taking turns (the newest post shard, the newest
    paper shard, the other pages, then the next post shard, ...), so that a query the newest
    posts do not answer soon reaches the papers too."""
    out = []
    for i in range(max(len(posts), len(papers), 1)):
        out += posts[i:i + 1] + papers[i:i + 1] + (pages if i == 0 else [])
    return out
