"""The site's public address and what a page says about itself in <head>: its canonical
URL and a link card (OpenGraph and Twitter tags) for chats and social sites.

`--site-url` is optional: without it a page has no canonical link and no ``og:url``
(there is no absolute address to give), and every link of the site stays relative, so it
still works from any folder or from file://. With it, these tags name the page's public
address. A card is the page's title and a short plain-text description (the start of a
post, a paper's abstract); the values are post data, so they are flattened to one line,
cut to a length chat previews show, and HTML-escaped with quotes: inside an attribute they
can only ever be text.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urlsplit, urlunsplit

from markupsafe import Markup

from catalog.errors import DigestError

SITE_NAME = "paper-digest"
TITLE_CHARS = 150
DESCRIPTION_CHARS = 200  # Twitter shows about as much; OpenGraph readers cut sooner
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACE = re.compile(r"\s+")


def normalise_site_url(value: str | None) -> str:
    """The site's public address as an absolute http(s) URL ending in "/" ("" for none);
    DigestError for anything else (a relative path, a query, another scheme)."""
    text = (value or "").strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment
            or parts.username or parts.password or _CONTROL.search(text) or re.search(r"[\s\"'<>\\`]", text)):
        raise DigestError(f"--site-url {text!r} is not a site address: give an absolute http(s) URL such as "
                          "https://example.org/digest/")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), quote(path, safe="/%-._~!$&()*+,;=:@"), "", ""))


def page_url(site_url: str, path: str) -> str:
    """The absolute address of a page at `path` (relative to the site root: "posts/a/", "")."""
    return site_url + path if site_url else ""


def plain_text(value: object, limit: int) -> str:
    """One line of text at most `limit` characters long, cut at a word when it can be."""
    text = _SPACE.sub(" ", _CONTROL.sub(" ", "" if value is None else str(value))).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _text_attr(value: str) -> str:
    """Post text for an attribute: escaped, and "=" as a reference too, so that not even a naive
    scan of the page (or a filter in front of it) reads ``onerror=…`` in a description as markup."""
    return _attr(value).replace("=", "&#61;")


def head_tags(site_url: str, path: str, *, title: str | None = None, description: str | None = None,
              canonical: bool = True, kind: str = "article") -> Markup:
    """The <head> tags of one page: its canonical link (`canonical`, with a site URL) and, given a
    `title`, its link card. Every value is escaped for a double-quoted attribute."""
    tags = []
    url = page_url(site_url, path)
    if url and canonical:
        tags.append(f'<link rel="canonical" href="{_attr(url)}">')
    if title is not None:
        card_title = plain_text(title, TITLE_CHARS) or SITE_NAME
        text = plain_text(description, DESCRIPTION_CHARS)
        tags += [f'<meta property="og:type" content="{_attr(kind)}">',
                 f'<meta property="og:site_name" content="{SITE_NAME}">',
                 f'<meta property="og:title" content="{_text_attr(card_title)}">']
        if text:
            tags.append(f'<meta property="og:description" content="{_text_attr(text)}">')
        if url:
            tags.append(f'<meta property="og:url" content="{_attr(url)}">')
        tags += ['<meta name="twitter:card" content="summary">',
                 f'<meta name="twitter:title" content="{_text_attr(card_title)}">']
        if text:
            tags.append(f'<meta name="twitter:description" content="{_text_attr(text)}">')
    return Markup("\n".join(tags))
