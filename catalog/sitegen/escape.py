"""Turning catalog values into Markdown that can only ever be read as text.

A post is data. Its text passes through Markdown (Python-Markdown with attr_list,
pymdownx), then the theme's Jinja templates, then the search index; any of those
would happily interpret ``<script>``, ``[x](javascript:…)``, ``{ onclick=… }`` or
``{{ … }}``. So every ASCII punctuation character is written as a numeric
character reference: Markdown leaves references alone, the browser shows the
character, and nothing in between sees syntax.
"""

from __future__ import annotations

import html
import json
import re
import string
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup

_REF = {ord(c): f"&#{ord(c)};" for c in string.punctuation}
_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: Any) -> str:
    return _CONTROL.sub("", "" if value is None else str(value))


def md_inline(value: Any) -> Markup:
    """One line of inert text (titles, names, table cells): newlines become spaces."""
    text = _SPACE.sub(" ", _clean(value).replace("\r", " ").replace("\n", " ")).strip()
    return Markup(text.translate(_REF))


def md_block(value: Any) -> Markup:
    """Multi-line inert text: paragraphs kept, single line breaks kept as ``<br>``.

    Leading whitespace is dropped so no line turns into an indented code block.
    """
    text = _clean(value).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for para in re.split(r"\n\s*\n", text):
        lines = [_SPACE.sub(" ", line).strip().translate(_REF) for line in para.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            paragraphs.append("<br>\n".join(lines))
    return Markup("\n\n".join(paragraphs))


def html_text(value: Any) -> Markup:
    """Plain HTML escaping, for values the theme inserts into HTML without escaping (page titles)."""
    return Markup(html.escape(_SPACE.sub(" ", _clean(value).replace("\n", " ")).strip(), quote=True))


_SAFE_SCHEMES = ("http", "https")
# Characters kept as they are inside a link target; everything else is percent-encoded
# (notably parentheses, quotes, brackets, spaces, angle brackets, backslashes).
_URL_SAFE = ":/?#@!$&+,;=%~-._*'"


def safe_url(value: Any) -> str | None:
    """An http(s) URL fit for a Markdown link target, or None (javascript:, data:, relative …)."""
    url = _clean(value).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc:
        return None
    return quote(url, safe=_URL_SAFE.replace("'", "").replace("*", ""))


def md_link(label: Any, url: Any) -> Markup:
    """``[label](url)`` when the URL is a safe http(s) URL, else the label as text."""
    target = safe_url(url)
    text = md_inline(label)
    if not target:
        return text
    return Markup(f"[{text}](<{target}>)")


def yaml_value(value: Any) -> Markup:
    """A YAML flow value for front matter (JSON is YAML); strings are never YAML-interpreted."""
    return Markup(json.dumps(value, ensure_ascii=False))


def finalize(value: Any) -> Any:
    """Jinja `finalize`: every ``{{ value }}`` not already marked safe is made inert text."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return md_inline(value)
