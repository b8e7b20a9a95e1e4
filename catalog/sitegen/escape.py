"""Turning catalog values into Markdown that can only ever be read as text.

A post is data. Its text passes through Markdown (Python-Markdown with attr_list,
pymdownx), then the theme's Jinja templates, then the search index; any of those
would happily interpret ``<script>``, ``[x](javascript:…)``, ``{ onclick=… }`` or
``{{ … }}``. So every ASCII punctuation character is written as a numeric
character reference: Markdown leaves references alone, the browser shows the
character, and nothing in between sees syntax.

Most generated pages skip Markdown altogether (they are HTML from start to end, see
site/templates/partials/lists.md.j2); there `html_text` and `html_link` do the
escaping, and the same rule holds: a value is only ever text.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup

# Characters with a meaning somewhere in our Markdown dialect (emphasis, links, images, code,
# tables, attribute lists, HTML, entities, headings); plain prose punctuation (.,;?'"-/%)
# stays literal to keep pages small and fast to convert.
_MD_SPECIAL = "\\`*_{}[]()<>&#|!~^=:+"
_REF = {ord(c): f"&#{ord(c)};" for c in _MD_SPECIAL}
_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: Any) -> str:
    return _CONTROL.sub("", "" if value is None else str(value))


def md_inline(value: Any) -> Markup:
    """One line of inert text (titles, names, table cells): newlines become spaces."""
    text = _SPACE.sub(" ", _clean(value).replace("\r", " ").replace("\n", " ")).strip()
    return Markup(text.translate(_REF))


def md_block(value: Any, css_class: str = "digest-text") -> Markup:
    """Multi-line inert text as one raw HTML block: ``<div>`` of ``<p>`` paragraphs, ``<br>`` line breaks.

    Markdown copies a raw HTML block through without reading it, so the text only needs
    HTML escaping; there are no blank lines inside, so the block cannot end early.
    """
    text = _clean(value).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for para in re.split(r"\n\s*\n", text):
        lines = [html.escape(_SPACE.sub(" ", line).strip(), quote=False) for line in para.split("\n")]
        lines = [line for line in lines if line]
        if lines:
            paragraphs.append("<p>" + "<br>\n".join(lines) + "</p>")
    if not paragraphs:
        return Markup("")
    return Markup(f'<div class="{css_class}">\n' + "\n".join(paragraphs) + "\n</div>")


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


def html_link(label: Any, url: Any) -> Markup:
    """``<a href="url">label</a>`` for raw HTML blocks when the URL is a safe http(s) URL, else the label."""
    target = safe_url(url)
    text = html_text(label)
    if not target:
        return text
    return Markup(f'<a href="{html.escape(target, quote=True)}">{text}</a>')


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
