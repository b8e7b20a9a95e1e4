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


def _bare_url(url: str) -> str:
    return _HTTP.sub("", url.strip()).removeprefix("www.").rstrip("/").casefold()


def _shows_its_url(shown: str, href: str) -> bool:
    """True when a link's visible text is its URL (maybe cut with "…"), so the text already holds it.

    A shorter label that merely occurs in the URL (``dorar.net`` for a deep link on that
    site) hides the rest of the URL: that href must be kept as a hidden link.
    """
    label = _bare_url(shown)
    if not label:
        return False
    if label.endswith("…"):
        return _bare_url(href).startswith(label[:-1])
    return label == _bare_url(href)


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
        shown = a.get_text("", strip=True)
        if not _HTTP.match(href):
            continue
        if not _shows_its_url(shown, href):  # a link over blank text is hidden too
            hidden.append(href)
        elif not _HTTP.match(shown):
            # a schemeless label (t.me/x) may not be found in the text: keep it as the
            # JSON export does, scheme added by normalize_url
            hidden.append(shown)
    for br in node.find_all("br"):
        br.replace_with("\n")
    for block in node.find_all(_BLOCKS):
        block.insert_after("\n")
    return node.get_text(""), hidden
