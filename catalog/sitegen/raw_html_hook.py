"""mkdocs hook: pages the generator wrote as HTML skip the Markdown conversion.

The post, paper and list pages are raw HTML from start to end (site/templates/
raw.html.j2; most of them are not even built by mkdocs, see stamp.py), so Markdown would
only copy them through, after parsing every tag in them. A page whose front matter
says ``digest_html: true`` hands Markdown an empty document and gets its own HTML back
as the page content; the part between ``<!--digest:head-->`` and ``<!--/digest:head-->``
at its start becomes ``page.digest_head`` (extra <head> tags, placed by
site/overrides/main.html), and the theme's canonical link is dropped (the page's head has
its own). A Markdown page's ``digest_head`` front matter (its link card) becomes
``page.digest_head`` too. Loaded by mkdocs from its path (``hooks:`` in mkdocs.yml),
so it imports nothing from the project; the markers are stamp.py's HEAD_OPEN/HEAD_CLOSE.
"""

from __future__ import annotations

FLAG = "digest_html"
CARD = "digest_head"  # front matter of a Markdown page: its link card tags (catalog/sitegen/meta.py)
HEAD_OPEN, HEAD_CLOSE = "<!--digest:head-->", "<!--/digest:head-->"


def on_page_markdown(markdown, page, config, files):
    if page.meta.get(FLAG) is not True:
        card = page.meta.get(CARD)
        if isinstance(card, str):
            page.digest_head = card
        return markdown
    # the page's own head names its canonical address: a stamped page is rendered from its
    # folder's shell, whose canonical URL would be the shell's
    page.canonical_url = None
    head = ""
    if markdown.startswith(HEAD_OPEN) and HEAD_CLOSE in markdown:
        head, markdown = markdown[len(HEAD_OPEN):].split(HEAD_CLOSE, 1)
    page.digest_head = head
    page.digest_html = markdown
    return ""


def on_page_content(html, page, config, files):
    raw = getattr(page, "digest_html", None)
    if raw is None:
        return html
    page.digest_html = None
    return raw
