"""The site's search: Pagefind indexes of the built HTML, one per shard of posts by date.

mkdocs' own search writes one JSON file with every page's text, which each visitor
downloads and parses before the first result (43 MB at 10k posts). Pagefind
(``pagefind-bin-extended`` on PyPI ships its binary) reads the built site and writes a
bundle: a small entry file, then index chunks and page fragments that a query loads on
demand. The Search page (site/pages/search.md, assets/search.js) is our UI over
Pagefind's JS API.

Shards: one bundle over 100k posts answers a frequent word slowly (its posting list
lists every page and position: megabytes, and seconds of work in the browser) and
loads a filter index of every tag of every page. So the posts are cut by date into
shards of about `shard_posts` (``shard-NNNN``), the papers by arXiv id into shards of as
many (``papers-NNNN``), and the other searched pages (reproductions, hand-written pages)
are one shard (``pages``); shards.py says which page goes where. Each shard is its own
bundle, ``pagefind/NAME/``; ``pagefind/shards.json`` lists them newest first, the kinds
taking turns. The Search page asks the first shard and shows its results at once, then
the next ones only while fewer than a page of results is shown or when "More results" is
asked for. Within a shard results are ranked by relevance; across shards, newest first.

Rebuilding: a shard is indexed again only when its pages changed (its fingerprint is a
hash of the path and search copy of each of its pages, see `Shard.fingerprint`). The
boundaries are kept in the manifest and never move (shards.py): new posts touch only the
newest post shard, or start a new one when it is full; a new paper touches only the paper
shard of its arXiv id; a deleted old post only its own shard.

What is indexed: the article of each page that does not set ``search: exclude``
(site/overrides/main.html marks it ``data-pagefind-body``); filters come from
``data-pagefind-filter`` on posts (type, source, language, tag) and papers.

Language: each page is indexed in its own language, so Pagefind stems Russian and
English words (Snowball, as the catalog's search does) and segments Chinese (the
extended build): a post's article carries its ``lang`` (content/templates/post.html.j2),
its search copy is a document of that language; every other page is English. Pagefind
then writes one index per language into a shard's bundle; the manifest lists them
(`shard_languages`), and the Search page merges the indexes of every language of a
shard into one instance (assets/search.js), so one search box finds ru, en and zh posts
together, each index reading the query its own way. The last word of a query still
matches as a prefix. For Chinese, `cjk_terms` adds jieba's search-mode words of a post
(the shorter words inside long ones: 注意力 inside 自注意力) in a hidden paragraph, so a
word is found however the segmenter cut the text around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import DigestError
from catalog.sitegen.shards import PAGES, PAPERS, POSTS, PREFIX, cut, interleave

BUNDLE = "pagefind"
MANIFEST = "shards.json"
MANIFEST_VERSION = 2  # 2: shards of posts, papers and other pages, with their boundaries (shards.py)
SHARD_POSTS = 5_000  # posts per shard: a frequent word's posting list stays a few hundred KB, and one
# Pagefind process needs about 0.7 GB for it
PAGEFIND_JOBS = 2  # shards indexed at once (Pagefind keeps about one core busy)
LANGUAGE = "en"  # of the pages that name none: the site's own
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def cjk_terms(text: str) -> str:
    """The Chinese words (2+ characters) jieba finds in `text`, each once, space-separated."""
    if not _CJK.search(text):
        return ""
    from catalog.searchtext import document_text

    words = (w for w in document_text(text).split() if len(w) >= 2 and all(_CJK.match(c) for c in w))
    return " ".join(dict.fromkeys(words))


def pagefind_executable() -> Path:
    try:
        import pagefind_bin_extended
    except ImportError:
        raise DigestError("the site search needs Pagefind: pip install 'pagefind-bin-extended>=1.3,<2'") from None
    try:
        return Path(pagefind_bin_extended.get_executable())
    except (FileNotFoundError, OSError) as exc:
        raise DigestError(f"the Pagefind binary is missing from pagefind-bin-extended: {exc}") from None


@dataclass
class Shard:
    name: str
    pages: list[str]  # HTML files relative to the site, posts newest first
    posts: int
    kind: str = POSTS
    first: str = ""  # the smallest sort key the shard covers (shards.py), "" for the pages shard
    last: str = ""  # the largest sort key it held when indexed

    def fingerprint(self, site_dir: Path, page_hashes: dict[str, bytes | None] | None = None) -> str:
        """A hash of what Pagefind reads of the shard: each page's name and search copy (not
        mtimes: the manifest is published, so two builds of one catalog must agree on it; not
        the whole page: new related items on an old post do not call for indexing it again).
        `page_hashes`: the SHA-256 of the search copies the builder just made (None: a page
        with none), so that 100k pages are not read back."""
        known = page_hashes or {}
        digest = hashlib.sha256()
        for rel in self.pages:
            digest.update(f"{rel}\0".encode())
            page = known[rel] if rel in known else copy_digest(search_copy((site_dir / rel).read_bytes()))
            digest.update(page or b"-")
        return digest.hexdigest()[:20]


def plan_shards(posts: Sequence[str], others: Sequence[str], shard_posts: int, *,
                post_keys: Sequence[str] | None = None, papers: Sequence[tuple[str, str]] = (),
                previous: Sequence[dict] = ()) -> list[Shard]:
    """Shards in the manifest's order (newest first, kinds taking turns, see shards.py):
    `posts` (newest first, with their sort keys `post_keys`; without them, their order) and
    `papers` ((sort key, page) pairs) cut into shards of about `shard_posts` along the boundaries
    of the `previous` manifest's shards, `others` in one shard of their own."""
    keys = list(post_keys) if post_keys is not None else [f"{len(posts) - i:012d}" for i in range(len(posts))]
    size = max(shard_posts, 1)
    def of(kind: str, items: Sequence[tuple[str, str]]) -> list[Shard]:
        old = [e for e in previous if e.get("kind") == kind]
        return [Shard(s["name"], s["pages"], len(s["pages"]) if kind == POSTS else 0, kind, s["first"], s["last"])
                for s in cut(kind, items, old, size)]

    rest = [Shard(PAGES, list(others), 0, PAGES)] if others else []
    return interleave(of(POSTS, list(zip(keys, posts))), of(PAPERS, papers), rest)


def site_pages(site_dir: Path) -> list[str]:
    """Every HTML file of the site outside the search bundle, relative to it, sorted."""
    out = []
    for folder, dirs, files in os.walk(site_dir):
        rel_dir = Path(folder).relative_to(site_dir)
        if rel_dir == Path("."):
            dirs[:] = [d for d in dirs if d != BUNDLE]
        out.extend((rel_dir / f).as_posix() for f in files if f.endswith(".html"))
    return sorted(out)


def index_site(site_dir: Path, posts: Sequence[str] | None = None, *, shard_posts: int = SHARD_POSTS,
               page_hashes: dict[str, bytes | None] | None = None, post_keys: Sequence[str] | None = None,
               papers: Sequence[tuple[str, str]] = (), pages: Sequence[str] | None = None) -> float:
    """Write `site_dir`/pagefind: one bundle per shard and the manifest; returns the seconds it took.

    `posts`: the post pages (HTML files relative to `site_dir`), newest first, with their sort
    keys `post_keys`; `papers`: (sort key, page) of the paper pages (shards.py). Every other page
    is in the ``pages`` shard. Shards whose pages did not change since the last run keep their
    bundle. `page_hashes` (page -> SHA-256 of its search copy) spares reading pages back;
    `pages` (every HTML file of the site) spares walking it.
    """
    t0 = time.perf_counter()
    site_dir = Path(site_dir)
    pages = sorted(p for p in pages if p.endswith(".html")) if pages is not None else site_pages(site_dir)
    present = set(pages)
    chosen = [(k, p) for k, p in zip(post_keys or [None] * len(posts or []), posts or []) if p in present]
    post_list = [p for _k, p in chosen]
    paper_list = [(k, p) for k, p in papers if p in present]
    taken = set(post_list) | {p for _k, p in paper_list}
    out = site_dir / BUNDLE
    old = read_manifest(site_dir)
    previous = old.get("shards", []) if old.get("version") == MANIFEST_VERSION else []
    shards = plan_shards(post_list, [p for p in pages if p not in taken], shard_posts,
                         post_keys=[k for k, _p in chosen] if post_keys is not None else None,
                         papers=paper_list, previous=previous)
    old_prints = {s["path"].rstrip("/"): s.get("fingerprint") for s in old.get("shards", [])}
    if not old:  # nothing, or one bundle from an older build: start afresh
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    clear_dead_stages(stage_root(site_dir))  # what builds killed while indexing left behind
    entries, running = [], []
    try:
        for shard in shards:
            fingerprint = shard.fingerprint(site_dir, page_hashes)
            entry = {"path": f"{shard.name}/", "kind": shard.kind, "posts": shard.posts, "pages": len(shard.pages),
                     "fingerprint": fingerprint, "first": shard.first, "last": shard.last}
            if old_prints.get(shard.name) == fingerprint and (out / shard.name / "pagefind-entry.json").exists():
                entries.append(entry)
                continue
            job = PagefindJob.start(site_dir, shard, out / shard.name)
            if job is None:
                continue  # nothing in it is searched
            entries.append(entry)
            running.append(job)
            while len(running) >= PAGEFIND_JOBS:
                running.pop(0).wait()
        while running:
            running.pop(0).wait()
    finally:
        for job in running:
            job.kill()
    for entry in entries:
        entry["languages"] = shard_languages(out / entry["path"])
    keep = {entry["path"].rstrip("/") for entry in entries}
    for stale in [*(p for prefix in PREFIX.values() for p in out.glob(f"{prefix}-*")), *out.glob(PAGES)]:
        if stale.name not in keep:
            shutil.rmtree(stale, ignore_errors=True)
    manifest = {"version": MANIFEST_VERSION, "order": "newest shard first; by relevance within a shard",
                "shards": entries}
    (out / MANIFEST).unlink(missing_ok=True)  # may be a hard link into the served generation (swap.py)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return time.perf_counter() - t0


def shard_languages(bundle: Path) -> list[str]:
    """The languages Pagefind wrote an index for in `bundle`, most pages first (what the Search page merges)."""
    try:
        languages = json.loads((bundle / "pagefind-entry.json").read_text(encoding="utf-8"))["languages"]
    except (OSError, ValueError, KeyError):
        return []
    return sorted(languages, key=lambda code: (-languages[code].get("page_count", 0), code))


def read_manifest(site_dir: Path) -> dict:
    try:
        return json.loads((Path(site_dir) / BUNDLE / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


BODY_OPEN = "<div data-pagefind-body"  # then the article's lang, if it has one of its own
_BODY_OPEN = re.compile(r'<div data-pagefind-body(?: lang="([a-z0-9-]+)")?>')
SEARCH_END = "<!--/digest:search-->"  # follows the searched article's closing </div>


def page_language(code: str | None) -> str:
    """A post's language code as the ``lang`` of its article; "" (the site's) for none or a malformed one."""
    code = (code or "").strip().lower()
    return code if _LANGUAGE_TAG.fullmatch(code) else ""


def body_open(lang: str = "") -> str:
    """The opening tag of a searched article (`lang` from `page_language`)."""
    return f'{BODY_OPEN} lang="{lang}">' if lang else f"{BODY_OPEN}>"


def search_document(article: str, lang: str = "") -> bytes:
    """A bare document of the article, in its language, for Pagefind to index."""
    return (f'<!doctype html><html lang="{lang or LANGUAGE}"><head><meta charset="utf-8"></head>'
            f"<body>{article}</body></html>").encode()


def search_copy(page: bytes) -> bytes | None:
    """What Pagefind needs of a built page: its `data-pagefind-body` article in a bare document
    (None for a page without one, which Pagefind would skip). The theme's navigation, header
    and scripts are most of a page's bytes; without them Pagefind indexes 10k posts in about
    a third of the time, and records the same URL, title, text and filters."""
    text = page.decode("utf-8")
    found = _BODY_OPEN.search(text)
    end = text.find(SEARCH_END, found.start()) if found else -1
    return None if end < 0 else search_document(text[found.start():end], found.group(1) or "")


def copy_digest(copy: bytes | None) -> bytes | None:
    """The SHA-256 of a search copy (None for a page Pagefind does not read): what shards are
    fingerprinted by."""
    return None if copy is None else hashlib.sha256(copy).digest()


STAGE_PREFIX = ".pagefind-"  # then the building process's id


def clear_dead_stages(root: Path) -> int:
    """Remove the staging folders of builds that were killed (their process is gone); returns how many."""
    removed = 0
    for stage in root.glob(f"{STAGE_PREFIX}*-*"):
        pid = stage.name[len(STAGE_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(stage, ignore_errors=True)
            removed += 1
        except OSError:
            pass  # alive, another user's
    return removed


def stage_root(site_dir: Path) -> Path:
    """Where a shard's search copies are written for Pagefind: memory (/dev/shm) where there is
    one, since they live for seconds and creating and deleting 10k files on disk costs more than
    writing them; else beside the site."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else site_dir.parent


@dataclass
class PagefindJob:
    """One Pagefind process indexing one shard's search copies (a staging folder that mirrors
    the site, so URLs stay the site's) into the shard's bundle."""

    stage: Path
    bundle: Path
    proc: subprocess.Popen

    @classmethod
    def start(cls, site_dir: Path, shard: Shard, bundle: Path) -> "PagefindJob | None":
        """Stage the shard and start Pagefind on it; None when no page of it is searched."""
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=stage_root(site_dir)))
        try:
            made: set[Path] = set()
            for rel in shard.pages:
                lean = search_copy((site_dir / rel).read_bytes())
                if lean is None:
                    continue
                target = stage / rel
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                target.write_bytes(lean)
            shutil.rmtree(bundle, ignore_errors=True)
            if not made:
                shutil.rmtree(stage, ignore_errors=True)
                return None
            # No --force-language: each page is indexed (and stemmed) in the language its <html lang> names.
            cmd = [str(pagefind_executable()), "--site", str(stage), "--output-path", str(bundle), "--quiet"]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except (OSError, DigestError) as exc:
            shutil.rmtree(stage, ignore_errors=True)
            raise DigestError(f"Pagefind could not index {site_dir}: {exc}") from None
        return cls(stage, bundle, proc)

    def wait(self) -> None:
        try:
            out, err = self.proc.communicate(timeout=3600)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DigestError(f"Pagefind took over an hour on {self.bundle.name}") from None
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
        if self.proc.returncode != 0:
            detail = (err or out).strip().splitlines()[-1:] or ["no output"]
            raise DigestError(f"Pagefind failed on {self.bundle.name}: {detail[0]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.stage, ignore_errors=True)
