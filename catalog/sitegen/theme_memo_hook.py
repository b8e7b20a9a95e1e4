"""mkdocs hook: theme parts that are the same on thousands of pages are rendered once.

mkdocs-material renders the navigation tabs, the navigation sidebar and its page
configuration block again for every page. On a page the generator wrote as HTML (front
matter ``digest_html``) that is not in the nav, those blocks contain no active nav item
and no table of contents, so they depend only on the folder the page's URL sits in
(every link in them is relative to it): ``posts/a/`` and ``posts/b/`` get the same HTML.
site/overrides/main.html asks `digest_memo` for those blocks; it renders a block the
first time its key is seen and reuses the HTML after that, and renders every time for
any other page. The memo is new for every build (``on_env`` runs once per build), so
`digest site serve` never shows stale navigation. A test builds the site with and
without the memo and compares every page. Loaded by mkdocs from its path (``hooks:``),
so it imports nothing from the project.
"""

from __future__ import annotations

_in_nav: set[str] = set()


def on_nav(nav, config, files):
    _in_nav.clear()
    _in_nav.update(page.url for page in nav.pages)
    return nav


def on_env(env, config, files):
    memo: dict[tuple[str, str], str] = {}

    def digest_memo(name: str, page, render):
        meta = getattr(page, "meta", None) or {}
        if meta.get("digest_html") is not True or page.url in _in_nav:
            return render()
        key = (name, page.url.rstrip("/").rpartition("/")[0])
        if key not in memo:
            memo[key] = render()
        return memo[key]

    env.globals["digest_memo"] = digest_memo
    return env
