"""Small helpers for reading post bodies out of HTML with BeautifulSoup."""

from __future__ import annotations

import re
from typing import Any

_HTTP = re.compile(r"^https?://", re.I)
_BLOCKS = ["p", "div", "blockquote", "pre", "li"]


def soup_of(html: str, parse_only: Any = None):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "lxml", parse_only=parse_only)


def classes(tag: Any) -> list[str]:
    value = tag.get("class") if hasattr(tag, "get") else None
    return value if isinstance(value, list) else ([value] if isinstance(value, str) else [])


def _shows_its_url(shown: str, href: str) -> bool:
    """Whether an anchor's visible text is its URL (then the link is found in the text itself)."""
    def bare(u: str) -> str:
        return u.split("://", 1)[-1].removeprefix("www.").rstrip("/").casefold()

    return bool(shown) and " " not in shown.strip() and bare(shown.strip()) == bare(href)


def body_text(node: Any) -> tuple[str, list[str]]:
    """The visible text of a post body (``<br>`` and blocks as newlines, emoji kept) and its hidden hrefs.

    A hidden href is any http(s) link whose visible text is not the URL itself: a word
    (``<a href="https://arxiv.org/abs/…">paper</a>``), a footnote number (``2``, ``6]``)
    or a shortened display (``github.com/a/very-lo…``). Every one is kept: a footnote
    digit happens to occur inside most arXiv URLs, so "the text occurs in the href" is
    no test of visibility.
    """
    if node is None:
        return "", []
    hidden: list[str] = []
    for a in node.find_all("a", href=True):
        href = a["href"].strip()
        if _HTTP.match(href) and not _shows_its_url(a.get_text("", strip=True), href):
            hidden.append(href)
    for br in node.find_all("br"):
        br.replace_with("\n")
    for block in node.find_all(_BLOCKS):
        block.insert_after("\n")
    return node.get_text(""), hidden
