"""What each stamped page reads, as one digest per page: a rebuild renders only the pages whose
digest changed since the generation it updates (see stamp.py and swap.py).

A page's digest folds in the build's own digest (the templates, the generator's code, the site
URL), its folder's shell as mkdocs built it (so the theme, its overrides and mkdocs.yml), and a
digest of every catalog value its template shows. Catalog values are folded per item first
(`Inputs.item`: a post, paper, tag, source or reproduction with every field a page shows of it),
and a page folds the items it lists: a tag page the items of its posts and papers, a post page
its tags, papers (with their reproduction) and related items. An item's digest holds all of the
item's own fields, more than a list shows of it: an edited post re-renders every list it is in,
which is rare, while a missed field would leave a stale page, which the incremental-equals-full
test (tests/site/test_incremental.py) exists to catch.

A template without a rule here is rendered on every build (`page_key` returns None).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Iterable

from catalog.sitegen.paths import CONFIG_FILE, SITE_SRC

VERSION = "1"  # bump when what a digest covers changes shape
_CODE = Path(__file__).resolve().parent
# the generator's modules that never shape a page's bytes (how and where a build writes, not what)
_NOT_IN_PAGES = {"build.py", "deploy.py", "shards.py", "sitemap.py", "swap.py", "serve_hook.py", "writer.py"}


def _hash(*parts: Any) -> str:
    return hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def page_digest(value: Any) -> str:
    """The digest of a value made of strings, numbers, dates and containers of them."""
    return _hash(value)


def _files_digest(paths: Iterable[Path]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_digest(site_src: Path = SITE_SRC, site_url: str = "") -> str:
    """The digest of what every page shares: the templates, the theme overrides, mkdocs.yml, the
    generator's code (escaping, filters, this module) and the site URL. A change re-renders all."""
    sources = [p for p in (site_src / "templates").rglob("*") if p.is_file()]
    sources += [p for p in (site_src / "overrides").rglob("*") if p.is_file()]
    sources += [p for p in _CODE.glob("*.py") if p.name not in _NOT_IN_PAGES]
    sources += [_CODE.parent / name for name in ("feeds.py", "bibtex.py")] + ([CONFIG_FILE] if CONFIG_FILE.exists() else [])
    return _hash(VERSION, _files_digest(sources), site_url)


# The fields of each item a page can show (every field the Catalog loads but the cross-links).
_POST = ("id", "title", "text", "url", "published", "precision", "edited", "language", "views",
         "forwarded_from", "month", "tags", "links", "key", "slug")
_PAPER = ("id", "arxiv_id", "version", "title", "authors", "abstract", "primary_category", "categories",
          "published", "updated", "pdf_url", "doi", "journal_ref", "comment", "status", "tags", "abs_url",
          "slug", "bibtex", "citation", "feed")
_TAG = ("name", "slug", "feed")
_SOURCE = ("id", "kind", "handle", "title", "url", "slug", "feed")
_REPRO = ("name", "slug", "title", "measures", "paper_id")


class Inputs:
    """Digests of the catalog's items (each made once per build) and of the pages listing them."""

    def __init__(self, build: str):
        self.build = build
        self._items: dict[tuple[str, int], str] = {}

    def item(self, kind: str, obj: dict[str, Any] | None) -> str:
        if obj is None:
            return "-"
        key = (kind, id(obj))  # the loaded dicts live for the whole build, so their ids are stable
        found = self._items.get(key)
        if found is None:
            found = self._items[key] = self._fold(kind, obj)
        return found

    def _fold(self, kind: str, obj: dict[str, Any]) -> str:
        fields = {"post": _POST, "paper": _PAPER, "tag": _TAG, "source": _SOURCE, "repro": _REPRO}[kind]
        own = tuple(obj.get(name) for name in fields)
        if kind == "post":  # what a post's line in a list shows of its source
            return _hash(own, obj["source"]["slug"], obj["source"]["title"], obj["source"].get("url"))
        return _hash(own)

    def posts(self, posts: Iterable[dict[str, Any]]) -> str:
        return _hash([self.item("post", p) for p in posts])

    def papers(self, papers: Iterable[dict[str, Any]]) -> str:
        return _hash([self.item("paper", p) for p in papers])

    def tags(self, tags: Iterable[dict[str, Any]]) -> str:
        return _hash([self.item("tag", t) for t in tags])

    def related(self, items: Iterable[tuple[str, dict[str, Any], float]]) -> str:
        return _hash([(kind, self.item(kind, obj)) for kind, obj, _score in items])

    def feed_key(self, feed: Any, base_url: str) -> str:
        """The digest of what a feed shows: its own names and its posts (with their papers' ids)."""
        posts = [(self.item("post", p), [paper["arxiv_id"] for paper in p["papers"]]) for p in feed.posts]
        return _hash(self.build, feed.path, feed.title, feed.page, feed.key, base_url, posts)

    def page_key(self, rel: str, template: str, ctx: dict[str, Any], shell: str) -> str | None:
        """The digest of everything page `rel` shows, or None (render it every time)."""
        rule = _RULES.get(template)
        if rule is None:
            return None
        return _hash(self.build, shell, rel, ctx.get("up"), ctx.get("page_path"), rule(self, ctx))


def _post_page(k: Inputs, ctx: dict[str, Any]) -> Any:
    post = ctx["post"]
    return (k.item("post", post), k.tags(post["tag_refs"]), k.item("source", post["source"]),
            [(k.item("paper", p), k.item("repro", p["reproduction"])) for p in post["papers"]],
            k.related(post.get("related", [])))


def _paper_page(k: Inputs, ctx: dict[str, Any]) -> Any:
    paper = ctx["paper"]
    return (k.item("paper", paper), k.tags(paper["tag_refs"]), k.item("repro", paper["reproduction"]),
            k.posts(paper["posts"]), k.related(paper.get("related", [])))


def _tag_page(k: Inputs, ctx: dict[str, Any]) -> Any:
    tag = ctx["tag"]
    return k.item("tag", tag), k.posts(tag["posts"]), k.papers(tag["papers"])


def _source_page(k: Inputs, ctx: dict[str, Any]) -> Any:
    source = ctx["source"]
    return k.item("source", source), k.posts(source["posts"])


def _month_page(k: Inputs, ctx: dict[str, Any]) -> Any:
    return ctx["month"], k.posts(ctx["posts"])


def _posts_index(k: Inputs, ctx: dict[str, Any]) -> Any:
    return ctx["total"], ctx["months"], k.posts(ctx["latest"])


def _papers_index(k: Inputs, ctx: dict[str, Any]) -> Any:
    return [(k.item("paper", p), len(p["posts"]), k.item("repro", p["reproduction"])) for p in ctx["papers"]]


def _tags_index(k: Inputs, ctx: dict[str, Any]) -> Any:
    return [(k.item("tag", t), len(t["posts"]), len(t["papers"])) for t in ctx["tags"]]


def _sources_index(k: Inputs, ctx: dict[str, Any]) -> Any:
    return [(k.item("source", s), len(s["posts"]), s["posts"][0]["published"] if s["posts"] else None)
            for s in ctx["sources"]]


def _discussed(k: Inputs, ctx: dict[str, Any]) -> Any:
    def rows(found: list[dict[str, Any]]) -> list[Any]:
        return [(k.item("paper", r["paper"]), sorted((n, v) for n, v in r.items() if n != "paper")) for r in found]

    return rows(ctx["all_time"]), rows(ctx["recent"]), ctx["recent_since"], ctx["days"]


_RULES: dict[str, Callable[[Inputs, dict[str, Any]], Any]] = {
    "post.html.j2": _post_page, "paper.html.j2": _paper_page, "tag.html.j2": _tag_page,
    "source.html.j2": _source_page, "posts_month.html.j2": _month_page, "posts_index.html.j2": _posts_index,
    "papers_index.html.j2": _papers_index, "tags_index.html.j2": _tags_index,
    "sources_index.html.j2": _sources_index, "discussed.html.j2": _discussed,
}
