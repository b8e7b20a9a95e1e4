"""Links between generated pages: Markdown links to docs files (`page_href`), final URLs in
raw HTML blocks (`PageLinks`, which remembers every target so the build can check them), and
how far up a page's URL is from the site root (`url_up`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from markupsafe import Markup

from catalog.errors import DigestError

if TYPE_CHECKING:
    from catalog.sitegen.writer import DocsWriter


def page_href(root: str, section: str, slug: str | None = None) -> Markup:
    """A relative link to a generated page: `root` is "../" per folder level of the linking page."""
    if not re.fullmatch(r"(\.\./)*", root) or not re.fullmatch(r"[a-z]+(/[a-z]+)?", section):
        raise ValueError(f"bad link parts {root!r} {section!r}")
    if slug is None:
        return Markup(f"{root}{section}/index.md")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        raise ValueError(f"unsafe slug {slug!r}")
    return Markup(f"{root}{section}/{slug}.md")


class PageLinks:
    """`url(up, section, slug)`: the address of a generated page, for links inside raw HTML blocks.

    The list pages and the post and paper pages are written as raw HTML (Markdown would
    spend most of the build parsing their thousands of links), and mkdocs neither
    rewrites nor checks links there. So these are final URLs (``use_directory_urls``),
    `up` is "../" per level of the linking page's URL, and every target is remembered
    so that `check` can fail the build on a link to a page that was never written.
    """

    def __init__(self) -> None:
        self.targets: set[str] = set()

    def __call__(self, up: str, section: str, slug: str | None = None) -> Markup:
        if not re.fullmatch(r"(\.\./)*", up) or not re.fullmatch(r"[a-z]+(/[a-z]+)?", section):
            raise ValueError(f"bad link parts {up!r} {section!r}")
        if slug is None:
            self.targets.add(f"{section}/index.md")
            return Markup(f"{up}{section}/")
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
            raise ValueError(f"unsafe slug {slug!r}")
        self.targets.add(f"{section}/{slug}.md")
        return Markup(f"{up}{section}/{slug}/")

    def check(self, writer: "DocsWriter") -> None:
        missing = sorted(t for t in self.targets if not writer.has(t))
        if missing:
            raise DigestError(f"generated links to pages that do not exist: {', '.join(missing[:5])}")


def url_up(rel: str) -> str:
    """"../" per level of the URL a docs file gets with use_directory_urls (a/b.md -> a/b/, a/index.md -> a/)."""
    depth = rel.count("/") + (0 if rel == "index.md" or rel.endswith("/index.md") else 1)
    return "../" * depth
