"""The sitemap of a site with a public address: every page, by its absolute URL.

mkdocs writes a sitemap of the pages it built, which are the nav pages and one shell per
folder (stamp.py), not the posts, papers, tags and sources stamped afterwards; and without
a `site_url` it has no address to write. So the builder writes its own from the list of
files it published. The protocol allows 50,000 URLs (and 50 MB) per file: a larger site
gets ``sitemap.xml`` as a sitemap index naming ``sitemaps/sitemap-N.xml``, each of at most
`MAX_URLS` addresses. No ``lastmod``: a page's file is rewritten when a neighbour's title
changes, which is no change a crawler should be told of, and two builds of one catalog
must write the same bytes.
"""

from __future__ import annotations

from typing import Callable, Iterable
from xml.sax.saxutils import escape

MAX_URLS = 50_000
NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
SKIP = ("404.html",)  # the not-found page is no page to index


def page_paths(files: Iterable[str]) -> list[str]:
    """The URL path of every HTML page among the site's `files` (relative paths), sorted:
    ``posts/a/index.html`` -> ``posts/a/``, ``index.html`` -> ``""``."""
    out = []
    for rel in files:
        if not rel.endswith(".html") or rel in SKIP or rel.startswith("pagefind/"):
            continue
        out.append(rel.removesuffix("index.html") if rel == "index.html" or rel.endswith("/index.html") else rel)
    return sorted(out)


def _urlset(site_url: str, paths: list[str]) -> str:
    lines = [f"  <url><loc>{escape(site_url + p)}</loc></url>" for p in paths]
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{NAMESPACE}">\n'
            + "\n".join(lines) + ("\n" if lines else "") + "</urlset>\n")


def sitemap_files(site_url: str, paths: list[str], max_urls: int = MAX_URLS) -> dict[str, str]:
    """The sitemap's files (site-relative name -> XML): one urlset, or an index of several."""
    if len(paths) <= max_urls:
        return {"sitemap.xml": _urlset(site_url, paths)}
    files = {}
    for k in range(0, len(paths), max_urls):
        files[f"sitemaps/sitemap-{k // max_urls + 1}.xml"] = _urlset(site_url, paths[k:k + max_urls])
    entries = [f"  <sitemap><loc>{escape(site_url + name)}</loc></sitemap>" for name in files]
    files["sitemap.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{NAMESPACE}">\n'
                            + "\n".join(entries) + "\n</sitemapindex>\n")
    return files


def write_sitemap(write: Callable[[str, str], None], site_url: str, files: Iterable[str],
                  max_urls: int = MAX_URLS) -> int:
    """Write the sitemap of the site whose files are `files` through `write(rel, text)`; returns its URL count."""
    paths = page_paths(files)
    for name, text in sitemap_files(site_url, paths, max_urls).items():
        write(name, text)
    return len(paths)
