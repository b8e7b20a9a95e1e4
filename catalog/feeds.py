"""Atom (and RSS 2.0) feeds of the catalog: site-wide, per source, per tag, per paper.

Feeds are built from the same loaded catalog the site pages are (`catalog.sitegen`'s
``Catalog``), so an entry links to its page on our site and to the original post.
Everything is plain text placed by ElementTree, which escapes it: a post's ``<script>``
arrives in a reader as the characters ``<script>``. Characters XML 1.0 cannot carry
(control characters, lone surrogates) are dropped so every feed parses.

Ids are tag URIs built from what identifies a post across rebuilds (its source and
its message id), never from database row ids or slugs; a feed's ``updated`` is its
newest entry's time, so rebuilding an unchanged catalog writes identical files.
Undated posts are left out: a feed is a list of what is new.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, Iterable
from urllib.parse import quote

ATOM_NS = "http://www.w3.org/2005/Atom"
TAG_AUTHORITY = "paper-digest,2026"
DEFAULT_LIMIT = 50
SUMMARY_CHARS = 600

# XML 1.0 allows tab, newline, carriage return and everything from U+0020 except
# surrogates and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("", text or "")


@dataclass
class Feed:
    """One feed: where it is written, what it is about, and its posts (newest first)."""

    path: str  # relative to the site root, e.g. "feeds/tags/nlp.atom.xml"
    title: str
    page: str  # the HTML page this feed follows, relative to the site root ("" = home)
    key: str  # stable identity of the feed itself, e.g. "tag/nlp"
    posts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rss_path(self) -> str:
        return self.path.removesuffix(".atom.xml") + ".rss.xml"

    @property
    def paths(self) -> list[str]:
        """The files this feed is written to: its Atom feed, and the RSS twin of the "all" feed."""
        return [self.path] + ([self.rss_path] if self.key == "all" else [])


def _dated(posts: Iterable[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    dated = [p for p in posts if p.get("published") is not None]
    dated.sort(key=lambda p: (p["published"], p["id"]), reverse=True)
    return dated[:limit]


def catalog_feeds(cat: Any, *, limit: int = DEFAULT_LIMIT, site_name: str = "paper-digest") -> list[Feed]:
    """Every feed of a loaded catalog: the whole site, each source, each tag, each paper."""
    feeds = [Feed("feeds/all.atom.xml", f"{site_name}: latest posts", "", "all", _dated(cat.posts, limit))]
    for src in cat.sources:
        feeds.append(Feed(f"feeds/sources/{src['slug']}.atom.xml", f"{site_name}: {src['title']}",
                          f"sources/{src['slug']}/", f"source/{src['kind']}:{src['handle']}",
                          _dated(src["posts"], limit)))
    for tag in cat.tags:
        feeds.append(Feed(f"feeds/tags/{tag['slug']}.atom.xml", f"{site_name}: #{tag['name']}",
                          f"tags/{tag['slug']}/", f"tag/{tag['name']}", _dated(tag["posts"], limit)))
    for paper in cat.papers.values():
        title = paper["title"] or f"arXiv:{paper['arxiv_id']}"
        feeds.append(Feed(f"feeds/papers/{paper['slug']}.atom.xml", f"{site_name}: posts on {title}",
                          f"papers/{paper['slug']}/", f"paper/{paper['arxiv_id']}", _dated(paper["posts"], limit)))
    return feeds


def _href(base: str, feed_path: str, target: str) -> str:
    """`target` (site-relative) as seen from the feed: absolute with a base URL, else relative."""
    if base:
        return base.rstrip("/") + "/" + target
    return "../" * feed_path.count("/") + target


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(post: dict[str, Any]) -> str:
    text = " ".join((post.get("text") or "").split())
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"


def entry_id(post: dict[str, Any]) -> str:
    return f"tag:{TAG_AUTHORITY}:post/{quote(post['key'], safe=':@')}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def atom_xml(feed: Feed, *, base_url: str = "", entries: dict[tuple, str] | None = None) -> bytes:
    """The feed as an Atom 1.0 document (UTF-8 bytes).

    A post is an entry in up to a dozen feeds (the site's, its source's, its tags', its
    papers'), and an entry's XML depends only on the post and on how deep the feed sits:
    `entries`, shared between the feeds of one build, keeps each entry's XML once made."""
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "title", feed.title)
    _sub(root, "id", f"tag:{TAG_AUTHORITY}:feed/{quote(feed.key, safe=':@/')}")
    _sub(root, "link", rel="self", type="application/atom+xml", href=_href(base_url, feed.path, feed.path))
    _sub(root, "link", rel="alternate", type="text/html", href=_href(base_url, feed.path, feed.page))
    newest = max((p.get("edited") or p["published"] for p in feed.posts), default=None)
    _sub(root, "updated", _iso(newest or datetime(1970, 1, 1, tzinfo=timezone.utc)))
    _sub(root, "generator", "paper-digest")
    ET.indent(root)
    head = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    if not feed.posts:
        return head
    cache = {} if entries is None else entries
    depth = feed.path.count("/")
    xml = []
    for post in feed.posts:
        key = (post["key"], depth, base_url)
        if key not in cache:
            cache[key] = _atom_entry(post, base_url, feed.path)
        xml.append(cache[key])
    # the entries follow the header's last element, indented as ET.indent would place them
    end = b"\n</feed>"
    return head[:-len(end)] + ("\n  " + "\n  ".join(xml)).encode("utf-8") + end


def _atom_entry(post: dict[str, Any], base_url: str, feed_path: str) -> str:
    """One post's <entry>, indented as the second level of a feed document."""
    e = ET.Element("entry")
    _sub(e, "title", post["title"])
    _sub(e, "id", entry_id(post))
    _sub(e, "link", rel="alternate", type="text/html", href=_href(base_url, feed_path, f"posts/{post['slug']}/"))
    if post.get("url"):
        _sub(e, "link", rel="via", href=post["url"])
    _sub(e, "published", _iso(post["published"]))
    _sub(e, "updated", _iso(post.get("edited") or post["published"]))
    author = _sub(e, "author")
    _sub(author, "name", post["source"]["title"])
    if post["source"].get("url"):
        _sub(author, "uri", post["source"]["url"])
    for tag in post.get("tags", []):
        _sub(e, "category", term=tag)
    ids = [p["arxiv_id"] for p in post.get("papers", [])]
    summary = _summary(post) + (("\n\narXiv: " + ", ".join(ids)) if ids else "")
    _sub(e, "summary", summary, type="text")
    for aid in ids:
        _sub(e, "link", rel="related", href=f"https://arxiv.org/abs/{aid}", title=f"arXiv:{aid}")
    ET.indent(e, level=1)
    return ET.tostring(e, encoding="unicode")


def rss_xml(feed: Feed, *, base_url: str = "") -> bytes:
    """The same feed as RSS 2.0 (UTF-8 bytes)."""
    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    _sub(ch, "title", feed.title)
    _sub(ch, "link", _href(base_url, feed.rss_path, feed.page) or "./")
    _sub(ch, "description", feed.title)
    _sub(ch, "generator", "paper-digest")
    for post in feed.posts:
        item = _sub(ch, "item")
        _sub(item, "title", post["title"])
        _sub(item, "link", _href(base_url, feed.rss_path, f"posts/{post['slug']}/"))
        _sub(item, "guid", entry_id(post), isPermaLink="false")
        _sub(item, "pubDate", format_datetime(post["published"].astimezone(timezone.utc), usegmt=True))
        for tag in post.get("tags", []):
            _sub(item, "category", tag)
        _sub(item, "description", _summary(post))
    ET.indent(rss)
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)


def find_feed(feeds: list[Feed], *, source: str | None = None, tag: str | None = None,
              paper: str | None = None) -> Feed:
    """The one feed a CLI user asked for (site-wide when nothing is named)."""
    if source:
        wanted = [f for f in feeds if f.key.startswith("source/") and
                  (f.key.split(":", 1)[-1] == source.lstrip("@") or f.title.endswith(": " + source))]
    elif tag:
        wanted = [f for f in feeds if f.key == f"tag/{tag.lstrip('#').lower()}"]
    elif paper:
        wanted = [f for f in feeds if f.key == f"paper/{paper}"]
    else:
        wanted = [f for f in feeds if f.key == "all"]
    if not wanted:
        from catalog.errors import DigestError

        what = f"source {source!r}" if source else f"tag {tag!r}" if tag else f"paper {paper!r}"
        raise DigestError(f"no feed for {what}: it is not in the catalog (see `digest sources`, `digest tags`)")
    return wanted[0]
