"""Pages rendered by our own Jinja into the theme's HTML, without a mkdocs page build each.

mkdocs spends a few milliseconds on every page (reading it, hooks, the theme's
templates, writing it): at 10k posts that was most of a build, and at 100k it would be
the wall. Yet the generated pages that are not in the nav (posts, papers, tags, sources,
month archives) differ from one another only in four places: the title (in <title> and
in the header), the extra <head> tags (feeds, citation tags) and the article. Everything
else the theme writes depends on the URL folder alone (links are relative to it).

So the generator writes one *shell* page per such folder (``posts/digest_shell.md``…)
with a marker in each of those places; mkdocs renders the shells with the rest of the
small site; then every page of the folder is the shell's HTML with the markers replaced
by the page's own parts (`Shell.fill`), rendered by our Jinja templates
(site/templates/raw.html.j2 cuts a page into its parts: `RawPage`).

The plain path is kept: ``build_site(…, stamp=False)`` gives every page to mkdocs, and a
test builds the site both ways and compares every file byte for byte.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.errors import DigestError
from catalog.sitegen.pageinputs import Inputs, page_digest
from catalog.sitegen.search import SEARCH_END, body_open, copy_digest, page_language, search_document
from catalog.sitegen.writer import DocsWriter

CUT = "<!--digest:cut-->"
HEAD_OPEN, HEAD_CLOSE = "<!--digest:head-->", "<!--/digest:head-->"  # raw_html_hook.py reads these
SHELL_NAME = "digest_shell"  # never a slug: slugs have no "_"
TITLE_SLOT = "DIGESTSHELLTITLE"
HEAD_SLOT = "<!--digest:slot:head-->"
# the theme adds an <h1> to a page whose content has none; every raw page has one, so the shell too
BODY_SLOT = "<!--digest:slot:body--><h1></h1><!--/digest:slot:body-->"
_SLOTS = re.compile("(" + "|".join(re.escape(s) for s in (TITLE_SLOT, HEAD_SLOT, BODY_SLOT)) + ")")


@dataclass
class RawPage:
    """A page written as HTML: its parts, as site/templates/raw.html.j2 renders them."""

    title: str  # HTML (escaped text)
    exclude: bool  # not a search result (list pages)
    head: str  # extra <head> tags
    body: str  # the article
    aside: str = ""  # shown after the article, never searched (related items)
    lang: str = ""  # the article's language ("": the site's); Pagefind stems the page by it

    @classmethod
    def parse(cls, rendered: str, name: str = "page") -> "RawPage":
        parts = rendered.split(CUT)
        if len(parts) != 6:
            raise DigestError(f"{name}: a raw page template must render 6 parts, got {len(parts)}")
        title, exclude, head, body, aside, lang = (part.strip("\n") for part in parts)
        if "<h1" not in body:
            raise DigestError(f"{name}: a raw page must have its own <h1>")
        head = head.strip()
        return cls(title.strip(), exclude.strip() == "exclude", "\n" + head if head else "", body,
                   "\n" + aside if aside.strip() else "", page_language(lang))

    def content(self) -> str:
        """The page's content as the theme shows it: a search result's article is marked for Pagefind."""
        if self.exclude:
            return self.body + self.aside
        return f"{body_open(self.lang)}{self.body}</div>{SEARCH_END}{self.aside}"

    def search_copy(self) -> bytes | None:
        """What Pagefind indexes of the page: the same bytes `search.search_copy` cuts from its HTML."""
        return None if self.exclude else search_document(f"{body_open(self.lang)}{self.body}</div>", self.lang)

    def markdown(self) -> str:
        """The page as a mkdocs source file (front matter, then HTML that raw_html_hook passes through)."""
        return page_markdown(self.title, self.head, self.content(), self.exclude)


def page_markdown(title: str, head: str, content: str, exclude: bool = False) -> str:
    # JSON is YAML: the title stays one string whatever it holds
    front = f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n"
    if exclude:
        front += "search:\n  exclude: true\n"
    return f"{front}digest_html: true\n---\n{HEAD_OPEN}{head}{HEAD_CLOSE}{content}"


def shell_markdown() -> str:
    return page_markdown(TITLE_SLOT, HEAD_SLOT, BODY_SLOT)


def url_folder(rel: str) -> str:
    """The folder of a docs file's URL: ``posts/a.md`` -> ``posts`` (its URL is posts/a/)."""
    return rel.rpartition("/")[0]


def shell_source(folder: str) -> str:
    return f"{folder}/{SHELL_NAME}.md" if folder else f"{SHELL_NAME}.md"


def shell_output(folder: str) -> str:
    return f"{folder}/{SHELL_NAME}/index.html" if folder else f"{SHELL_NAME}/index.html"


def output_path(rel: str) -> str:
    """Where mkdocs (use_directory_urls) would write the HTML of docs file `rel`."""
    stem = rel.removesuffix(".md")
    return "index.html" if stem == "index" else (
        f"{stem.removesuffix('/index')}/index.html" if stem.endswith("/index") else f"{stem}/index.html")


class Shell:
    """The theme's HTML of one folder's shell page, cut at its slots."""

    def __init__(self, html: str, name: str = "shell"):
        pieces = _SLOTS.split(html)
        slots = pieces[1::2]
        if slots.count(BODY_SLOT) != 1 or slots.count(HEAD_SLOT) != 1 or TITLE_SLOT not in slots:
            raise DigestError(f"{name}: the theme's page lost a slot marker (templates changed?); "
                              "build with stamping off to compare")
        self.pieces = pieces

    def fill(self, page: RawPage) -> str:
        values: dict[str, Any] = {TITLE_SLOT: page.title, HEAD_SLOT: page.head, BODY_SLOT: page.content()}
        out = self.pieces[:]
        for i in range(1, len(out), 2):
            out[i] = values[out[i]]
        return "".join(out)


class StampPlan:
    """The raw pages to stamp after mkdocs ran: what renders each, and the folders' shells.

    Pages are rendered only when stamped, one at a time, so a build never holds the HTML
    of 100k pages at once (the catalog's dicts they are rendered from are in memory anyway).
    """

    def __init__(self, env: Any, docs: Any):
        self.env = env
        self.docs = docs  # the DocsWriter of the generation: the link targets are checked against it
        self.pages: list[tuple[str, str, dict[str, Any]]] = []  # (docs path, template, context)
        self.folders: set[str] = set()
        self.inputs: dict[str, list] = {}  # html path -> [inputs digest, search copy hash] (see `stamp`)

    def add(self, rel: str, template: str, ctx: dict[str, Any]) -> None:
        self.pages.append((rel, template, ctx))
        self.folders.add(url_folder(rel))

    def render(self, rel: str, template: str, ctx: dict[str, Any]) -> RawPage:
        return RawPage.parse(self.env.get_template(template).render(**ctx), rel)

    def stamp(self, shell_dir: Path, writer: Any, search_hashes: dict[str, bytes | None] | None = None,
              *, workers: int | None = None, inputs: Inputs | None = None,
              previous: dict[str, list] | None = None) -> int:
        """Write every planned page into `writer` (the site), filled into its folder's shell
        as mkdocs built it under `shell_dir`; returns the number of pages rendered. `search_hashes`
        receives the SHA-256 of each page's search copy (None: not searched). Then every link the
        rendered pages hold is checked (generate_docs checks them itself when nothing is planned).

        With `inputs` (pageinputs.py) a page whose inputs digest equals the one in `previous`
        (html path -> [inputs digest, search copy hash], what the generation being updated was
        rendered from) is kept as it is, not rendered; `self.inputs` then holds this build's.
        A kept page's links were checked when it was rendered, and its targets are among its inputs.

        Rendering is plain Python work, so a large plan is cut among `workers` forked
        processes (default: one per core, at most PARALLEL_MAX); each writes its pages and
        sends back what the parent must know (files written, search hashes, link targets)."""
        shells = {}
        for folder in sorted(self.folders):
            path = shell_dir / shell_output(folder)
            try:
                shells[folder] = Shell(path.read_text(encoding="utf-8"), str(path))
            except OSError as exc:
                raise DigestError(f"mkdocs did not build the page shell {path}: {exc}") from None
        todo, keys = self._to_render(shells, writer, search_hashes, inputs, previous or {})
        workers = workers or min(os.cpu_count() or 1, PARALLEL_MAX)
        if workers < 2 or len(todo) < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
            parts = [_stamp_part(self, todo, shells, writer, 0, 1)]
        else:
            global _JOB
            _JOB = (self, todo, shells, writer, workers)
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    parts = pool.map(_forked_part, range(workers))
            finally:
                _JOB = None
        links = self.env.globals["url"]
        for written, seen, digests, hashes, targets in parts:
            writer.written += written
            writer.seen.update(seen)
            writer.digests.update(digests)
            links.targets.update(targets)
            for html_rel, found in hashes.items():
                if keys.get(html_rel) is not None:
                    self.inputs[html_rel] = [keys[html_rel], found.hex() if found else None]
            if search_hashes is not None:
                search_hashes.update(hashes)
        links.check(self.docs)
        return len(todo)

    def _to_render(self, shells: dict[str, "Shell"], writer: Any, search_hashes: dict | None,
                   inputs: Inputs | None, previous: dict[str, list]) -> tuple[list, dict[str, str | None]]:
        """The planned pages whose inputs changed (all of them without `inputs`), and each page's
        inputs digest; the pages kept go into `writer` and `search_hashes` as they were."""
        self.inputs.clear()
        if inputs is None:
            return self.pages, {}
        shell_keys = {folder: page_digest(shell.pieces) for folder, shell in shells.items()}
        todo, keys = [], {}
        for rel, template, ctx in self.pages:
            html_rel = output_path(rel)
            key = keys[html_rel] = inputs.page_key(rel, template, ctx, shell_keys[url_folder(rel)])
            old = previous.get(html_rel)
            if key is not None and isinstance(old, list) and len(old) == 2 and old[0] == key \
                    and writer.keep(html_rel):
                self.inputs[html_rel] = old
                if search_hashes is not None:
                    search_hashes[html_rel] = bytes.fromhex(old[1]) if old[1] else None
            else:
                todo.append((rel, template, ctx))
        return todo, keys

    def remove_shells(self, site_dir: Path) -> None:
        """Delete the shells' own HTML from a site mkdocs built in place (`digest site serve`)."""
        for folder in self.folders:
            path = site_dir / shell_output(folder)
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()
            except OSError:
                pass


PARALLEL_MIN = 2000  # pages: below this a fork costs more than it saves
PARALLEL_MAX = 4
_JOB: tuple | None = None  # what a forked worker stamps (set just before the fork)


def _forked_part(k: int):
    plan, todo, shells, site, n = _JOB
    return _stamp_part(plan, todo, shells, site, k, n)


def _stamp_part(plan: StampPlan, todo: list, shells: dict[str, Shell], site: Any, k: int, n: int):
    """Stamp every n-th planned page from the k-th into the folder of writer `site`; returns
    (files written, paths seen, file digests, search hashes, link targets)."""
    writer = DocsWriter(site.root, site.previous)
    links = plan.env.globals["url"]
    before = set(links.targets)
    hashes: dict[str, bytes | None] = {}
    for rel, template, ctx in todo[k::n]:
        page = plan.render(rel, template, ctx)
        html_rel = output_path(rel)
        writer.text(html_rel, shells[url_folder(rel)].fill(page))
        hashes[html_rel] = copy_digest(page.search_copy())
    return writer.written, writer.seen, writer.digests, hashes, links.targets - before
