"""mkdocs hook: pages the generator wrote as HTML skip the Markdown conversion.

The post, paper and list pages are raw HTML from start to end (see
content/templates/partials/lists.md.j2), so Markdown would only copy them through, after
parsing every tag in them, which cost about a third of the build. A page whose front
matter says ``digest_html: true`` hands Markdown an empty document and gets its own
HTML back as the page content. Loaded by mkdocs from its path (``hooks:`` in
mkdocs.yml), so it imports nothing from the project.
"""

from __future__ import annotations

FLAG = "digest_html"


def on_page_markdown(markdown, page, config, files):
    if page.meta.get(FLAG) is True:
        page.digest_html = markdown
        return ""
    return markdown


def on_page_content(html, page, config, files):
    raw = getattr(page, "digest_html", None)
    if raw is None:
        return html
    page.digest_html = None
    return raw
