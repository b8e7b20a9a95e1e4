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


def body_text(node: Any) -> tuple[str, list[str]]:
    """The visible text of a post body (``<br>`` and blocks as newlines, emoji kept) and its hidden hrefs.

    A hidden href is a link whose visible text is not the URL itself (``<a href="https://arxiv.org/abs/…">paper</a>``).
    """
    if node is None:
        return "", []
    hidden: list[str] = []
    for a in node.find_all("a", href=True):
        href = a["href"].strip()
        shown = a.get_text("", strip=True)
        if _HTTP.match(href) and shown and shown.rstrip("/").split("://")[-1] not in href:
            hidden.append(href)
    for br in node.find_all("br"):
        br.replace_with("\n")
    for block in node.find_all(_BLOCKS):
        block.insert_after("\n")
    return node.get_text(""), hidden
