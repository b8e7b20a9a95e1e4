"""Catalog -> Markdown pages for mkdocs (one page per post, paper, tag, source, reproduction).

Everything here reads the database once, shapes plain dicts, and renders the Jinja
templates in the top-level ``site/templates`` (shipped in the package too, so an installed
`digest` finds them without a checkout; see paths.py). The Jinja environment escapes by default: every
``{{ value }}`` becomes inert Markdown text (see `escape`) unless a template or this
module marks it safe on purpose (our own links, our own hand-written pages, the
docstrings of our reproductions). Files are written only when their content changed,
and stale generated files are removed, so `digest site serve` rebuilds little.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import jinja2
from markupsafe import Markup
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from catalog.errors import DigestError
from catalog.models import Paper, PaperTag, Post, PostPaper, PostTag, Reproduction, Run, Source, Tag, as_utc
from catalog.sitegen import escape
from catalog.sitegen.cards import CardInfo, discover_cards
from catalog.sitegen.search import cjk_terms
from catalog.sitegen.claimview import claim_lines, preset_tables, reader_name, verdict_run
from catalog.sitegen.runview import claims_view, flatten, metrics_view, shown_run_dir
from reproductions.report import num
from catalog.sitegen.slugs import SlugRegistry, make_slug
from catalog.sitegen.meta import head_tags
from catalog.sitegen.stamp import StampPlan, output_path, shell_markdown, shell_source
from catalog.sitegen.paths import CONFIG_FILE, SITE_SRC
from catalog.sitegen.writer import MARKER, DocsWriter
from catalog.sitegen.discovery import attach_discovery, write_discussed, write_feeds

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout when run from one; only searched for run files
HOME_INTRO = "home.md"  # site/pages/home.md is the home page's intro, not a page of its own
LATEST_ON_HOME = 12
LATEST_ON_POSTS_INDEX = 50
RUNS_PER_REPRODUCTION = 12  # the latest run of each preset is shown in full, older ones collapsed
FEED_ENTRIES = 50  # at most this many entries per Atom/RSS feed
PLOT_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")
RAW_TEMPLATE = ".html.j2"  # a template of a page written as HTML (extends raw.html.j2)


@dataclass
class GenerateStats:
    pages: int = 0
    written: int = 0
    removed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    post_pages: list[str] = field(default_factory=list)  # HTML of each post, newest first (search shards)
    plan: StampPlan | None = None  # the pages to stamp into their folder's shell after mkdocs


# ---------------------------------------------------------------- templates

def template_env(templates: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or SITE_SRC / "templates")),
        autoescape=True,  # values are escaped ...
        finalize=escape.finalize,  # ... as inert Markdown, not only as HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates do not change during a build; skips a stat per page
    )
    env.globals.update(href=page_href, url=PageLinks(), memo=Memo())
    env.filters.update(
        inline=escape.md_inline,
        block=escape.md_block,
        html=escape.html_text,
        yaml=escape.yaml_value,
        link=escape.md_link,
        ahref=escape.html_link,
        url=lambda v: Markup(escape.safe_url(v) or ""),
        num=format_number,
        date=format_date,
    )
    return env


class Memo:
    """`memo(key, fn, *args)` in a template: fn(*args) the first time `key` is seen, then the same
    result (see partials/lists.md.j2; one per environment, so one per build)."""

    def __init__(self) -> None:
        self.results: dict[tuple, Any] = {}

    def __call__(self, key: tuple, fn: Any, *args: Any) -> Any:
        try:
            return self.results[key]
        except KeyError:
            result = self.results[key] = fn(*args)
            return result


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


def format_number(value: Any) -> str:
    """Numbers with 4 significant digits; containers as "k=v, …" text, never a Python dict dump."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_number(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_number(v) for v in value)
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):  # 60000 stays as it is; 4447872 would show 7 significant digits
        return str(value) if len(str(abs(value)).rstrip("0")) <= 4 else num(value)
    if isinstance(value, float):
        return num(value, 4, trim=True)
    return str(value)


def format_date(value: datetime | None, precision: str = "second") -> Markup:
    """Digits, "-", ":" and "UTC" only: inert in Markdown and HTML alike, so marked safe."""
    value = as_utc(value)
    if value is None:
        return Markup("undated")
    if precision == "day":
        return Markup(value.strftime("%Y-%m-%d"))
    return Markup(value.strftime("%Y-%m-%d %H:%M UTC"))


# ---------------------------------------------------------------- the data

def _first_line(text: str, limit: int = 90) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _claim(raw: dict[str, Any]) -> dict[str, Any]:
    """A claim from the database with every field the template reads (old rows may lack some)."""
    return {"metric": str(raw.get("metric", "")), "value": raw.get("value"), "unit": raw.get("unit") or "",
            "source": raw.get("source") or "", "note": raw.get("note") or "",
            "higher_is_better": bool(raw.get("higher_is_better", True))}


def _arm_name(arm: str, labels: dict[str, str]) -> str:
    return labels.get(arm) or labels.get(f"arms.{arm}") or reader_name(arm, labels)


def _keep_card_arms(view: Any, labels: dict[str, str]) -> None:
    """Rows of the arms table that are the card's arms; other grouped values (a run's chosen
    lambdas) move to the run's other values, so the table holds only comparable rows."""
    if not labels:
        return
    keep = [(a, cells) for a, cells in view.arms if a in labels or f"arms.{a}" in labels]
    if not keep or len(keep) == len(view.arms):
        return
    for arm, cells in view.arms:
        if (arm, cells) not in keep:
            view.overall += [(f"{arm}.{col}", c) for col, c in zip(view.columns, cells) if c.text]
    used = [i for i in range(len(view.columns)) if any(cells[i].text for _, cells in keep)]
    view.columns = [view.columns[i] for i in used]
    view.arms = [(a, [cells[i] for i in used]) for a, cells in keep]


def _month(value: datetime | None) -> str:
    return value.strftime("%Y-%m") if value else "undated"


class Catalog:
    """The whole catalog as plain dicts with slugs and page paths, loaded in a few queries."""

    def __init__(self, engine: Engine, cards: dict[str, CardInfo], run_roots: Iterable[Path] = ()):
        self.run_roots = list(run_roots)
        self.post_slugs, self.paper_slugs = SlugRegistry(), SlugRegistry()
        self.tag_slugs, self.source_slugs, self.repro_slugs = SlugRegistry(), SlugRegistry(), SlugRegistry()
        with Session(engine) as s:
            self.sources = [self._source(src) for src in s.scalars(select(Source).order_by(Source.kind, Source.handle))]
            by_source = {src["id"]: src for src in self.sources}
            tag_names = dict(s.execute(select(Tag.id, Tag.name)).all())
            post_tags: dict[int, list[str]] = defaultdict(list)
            for post_id, tag_id in s.execute(select(PostTag.post_id, PostTag.tag_id)):
                post_tags[post_id].append(tag_names[tag_id])
            paper_tags: dict[int, list[str]] = defaultdict(list)
            for paper_id, tag_id in s.execute(select(PaperTag.paper_id, PaperTag.tag_id)):
                paper_tags[paper_id].append(tag_names[tag_id])
            post_papers: dict[int, list[int]] = defaultdict(list)
            # A post lists its papers by arXiv id (as `digest post` does): unordered, each engine
            # would give its own storage order, and PostgreSQL's changes as rows are rewritten.
            for post_id, paper_id in s.execute(select(PostPaper.post_id, PostPaper.paper_id).join(Paper)
                                               .order_by(PostPaper.post_id, Paper.arxiv_id)):
                post_papers[post_id].append(paper_id)

            papers = s.scalars(select(Paper).order_by(Paper.arxiv_id)).all()
            self.papers = {p.id: self._paper(p, paper_tags.get(p.id, [])) for p in papers}
            # undated posts last: SQLite sorts NULL first, PostgreSQL last, so the order must say
            posts = s.scalars(select(Post).options(selectinload(Post.links))
                              .order_by(Post.published_at.is_(None), Post.published_at.desc(), Post.id.desc())).all()
            self.posts = [self._post(p, by_source[p.source_id], sorted(set(post_tags.get(p.id, []))),
                                     post_papers.get(p.id, [])) for p in posts]
            repros = s.scalars(select(Reproduction).options(selectinload(Reproduction.runs))
                               .order_by(Reproduction.slug)).all()
            self.reproductions = self._reproductions(repros, cards)

        for post in self.posts:
            post["source"]["posts"].append(post)
            for paper in post["papers"]:
                paper["posts"].append(post)
        tags: dict[str, dict[str, Any]] = {}
        for post in self.posts:
            for name in post["tags"]:
                self._tag(tags, name)["posts"].append(post)
        for paper in self.papers.values():
            for name in paper["tags"]:
                self._tag(tags, name)["papers"].append(paper)
        self.tags = sorted(tags.values(), key=lambda t: (-len(t["posts"]) - len(t["papers"]), t["name"]))
        for item in [*self.posts, *self.papers.values()]:
            item["tag_refs"] = [tags[name] for name in item["tags"]]
            item["tag_pages"] = {name: f"tags/{tags[name]['slug']}/" for name in item["tags"]}
        for repro in self.reproductions:
            paper = self.paper_by_arxiv(repro["paper_id"])
            repro["paper"] = paper
            if paper is not None:
                paper["reproduction"] = repro

    # one dict per row -------------------------------------------------
    def _source(self, src: Source) -> dict[str, Any]:
        name = src.title or src.handle
        return {"id": src.id, "kind": src.kind, "handle": src.handle, "title": name, "url": src.url,
                "slug": self.source_slugs.get(name, key=f"{src.kind}:{src.handle}", always_hash=False),
                "posts": []}

    def _paper(self, p: Paper, tags: list[str]) -> dict[str, Any]:
        plain = re.sub(r"[./]", "-", p.arxiv_id.lower())
        return {"id": p.id, "arxiv_id": p.arxiv_id, "version": p.version, "title": p.title or "",
                "authors": list(p.authors or []), "abstract": p.abstract or "",
                "primary_category": p.primary_category or "", "categories": list(p.categories or []),
                "published": p.published, "updated": p.updated, "pdf_url": p.pdf_url or "",
                "doi": p.doi or "", "journal_ref": p.journal_ref or "", "comment": p.comment or "",
                "status": p.status, "tags": sorted(set(tags)), "posts": [], "reproduction": None,
                "abs_url": f"https://arxiv.org/abs/{p.arxiv_id}",
                "slug": self.paper_slugs.get(plain, key=p.arxiv_id)}

    def _post(self, p: Post, source: dict[str, Any], tags: list[str], paper_ids: list[int]) -> dict[str, Any]:
        title = (p.title or "").strip() or _first_line(p.text) or f"Post {p.external_id}"
        key = f"{source['kind']}:{source['handle']}:{p.external_id}"
        published = as_utc(p.published_at)
        return {"id": p.id, "title": title, "text": p.text or "", "url": p.url or "",
                "published": published, "precision": p.date_precision or "second",
                "edited": as_utc(p.edited_at), "language": p.language or "", "views": p.views,
                "forwarded_from": p.forwarded_from or "", "month": _month(published),
                "source": source, "tags": tags,
                "papers": [self.papers[i] for i in paper_ids if i in self.papers],
                "links": [{"url": ln.url, "kind": ln.kind} for ln in p.links], "key": key,
                "search_terms": cjk_terms(f"{title}\n{p.text or ''}"),
                "slug": self.post_slugs.get(_first_line(title, 48), key=key, always_hash=True)}

    def _tag(self, tags: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
        if name not in tags:
            tags[name] = {"name": name, "slug": self.tag_slugs.get(name), "posts": [], "papers": []}
        return tags[name]

    def _reproductions(self, rows: Iterable[Reproduction], cards: dict[str, CardInfo]) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, card in cards.items():
            out[name] = {"name": name, "title": card.title, "paper_id": card.paper_id, "authors": card.authors,
                         "summary": card.summary, "measures": card.measures, "notes": card.notes,
                         "claims": card.claims, "presets": card.presets, "datasets": card.datasets,
                         "docs": card.docs, "runs": [], "has_card": True, "labels": card.labels,
                         "differences": card.differences, "paper_config": card.paper_config}
        for row in rows:
            repro = out.setdefault(row.slug, {
                "name": row.slug, "title": row.title, "paper_id": row.arxiv_id or "", "authors": "",
                "summary": row.summary, "measures": row.measures, "notes": "", "claims": [_claim(c) for c in row.paper_claims or [] if isinstance(c, dict)],
                "presets": {name: {} for name in row.presets or []}, "datasets": [], "docs": [], "runs": [],
                "has_card": False, "labels": {}, "differences": [], "paper_config": {}})
            if not repro["paper_id"] and row.paper is not None:
                repro["paper_id"] = row.paper.arxiv_id
            # runs that started at the same time (or at no known time): the later recorded first, on any engine
            runs = sorted(row.runs, key=lambda r: (r.started_at or datetime.min, r.id), reverse=True)
            repro["runs"] = [self._run(r, repro["claims"], repro["labels"]) for r in runs[:RUNS_PER_REPRODUCTION]]
        for repro in out.values():
            repro["slug"] = self.repro_slugs.get(repro["name"])
            # shown inside a code block, where escaping is impossible: only plain names
            repro["cli_name"] = Markup(repro["name"]) if re.fullmatch(r"[A-Za-z0-9_.-]+", repro["name"]) else ""
            latest: dict[str, dict[str, Any]] = {}
            for run in repro["runs"]:  # newest first
                latest.setdefault(run["preset"], run)
            repro["latest_runs"] = list(latest.values())
            repro["older_runs"] = [run for run in repro["runs"] if latest.get(run["preset"]) is not run]
            repro["claim_rows"] = [{**row, "run": run} for run in repro["latest_runs"] for row in run["claims"]] or [
                {**row, "run": None} for row in claims_view(repro["claims"], {})]
            repro["verdict_run"] = verdict_run(repro["runs"])
            repro["preset_tables"] = preset_tables(repro["presets"], repro["paper_config"], repro["labels"])

        return [out[k] for k in sorted(out)]

    def _run(self, r: Run, card_claims: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
        stored = dict(r.metrics or {})
        view = metrics_view(stored)
        _keep_card_arms(view, labels)
        view.columns = [reader_name(c, labels) for c in view.columns]
        view.arms = [(_arm_name(a, labels), cells) for a, cells in view.arms]
        view.overall = [(reader_name(n, labels), c) for n, c in view.overall]
        view.per_seed = [(_arm_name(a, labels) if a else "", reader_name(m, labels), v) for a, m, v in view.per_seed]
        versions = {k: v for k, v in (r.versions or {}).items() if isinstance(v, (str, int, float)) and v != ""}
        git = (r.versions or {}).get("git")
        if isinstance(git, dict) and git.get("commit"):
            versions["git"] = str(git["commit"])[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
        return {"id": r.id, "preset": r.preset, "device": r.device, "started": as_utc(r.started_at),
                "finished": as_utc(r.finished_at), "duration_s": r.duration_s, "status": r.status,
                "view": view, "claims": claims_view(card_claims, stored),
                "claim_lines": claim_lines(stored, labels), "exploratory": stored.get("exploratory"),
                "config": {reader_name(k, labels): v for k, v in flatten(dict(r.config or {})).items()},
                "versions": versions,
                "artefacts": list(r.artefacts or []), "run_dir": r.run_dir or "",
                "folder": shown_run_dir(r.run_dir or "", self.run_roots), "plots": []}

    def paper_by_arxiv(self, arxiv_id: str) -> dict[str, Any] | None:
        if not arxiv_id:
            return None
        return next((p for p in self.papers.values() if p["arxiv_id"] == arxiv_id), None)


# ---------------------------------------------------------------- writing

def nav_pages(config_file: Path) -> set[str]:
    """The docs files the nav of mkdocs.yml names: mkdocs builds those (their nav item is active)."""
    import yaml

    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(yaml.safe_load(config_file.read_text(encoding="utf-8")).get("nav", []))
    return found


def prepare_docs_dir(docs: Path) -> None:
    """Create the docs folder, or check an existing one is ours before we clean it."""
    if docs.exists():
        if not docs.is_dir():
            raise DigestError(f"{docs} exists and is not a folder")
        if any(docs.iterdir()) and not (docs / MARKER).exists():
            raise DigestError(f"{docs} is not empty and was not generated by digest; choose another --out")
    docs.mkdir(parents=True, exist_ok=True)
    (docs / MARKER).write_text("generated by `digest site build`; this folder is rewritten on every build\n")


def _find_file(path_text: str, run_dir: str, roots: Iterable[Path]) -> Path | None:
    candidates = []
    path = Path(path_text)
    if path.is_absolute():
        candidates.append(path)
    else:
        if run_dir:
            rd = Path(run_dir)
            candidates += [rd / path] if rd.is_absolute() else [root / rd / path for root in roots]
        candidates += [root / path for root in roots]
    return next((c for c in candidates if c.is_file()), None)


def _copy_plots(writer: DocsWriter, repro: dict[str, Any], roots: list[Path]) -> None:
    """Copy each run's plot images next to the reproduction page."""
    for run in repro["runs"]:
        for i, item in enumerate(run["artefacts"]):
            if not str(item).lower().endswith(PLOT_SUFFIXES):
                continue
            found = _find_file(str(item), run["run_dir"], roots)
            if found is None:
                log.warning("site: plot %s of run %s not found", item, run["id"])
                continue
            stem = make_slug(Path(str(item)).stem, key=str(item))
            rel = f"reproductions/{repro['slug']}/run-{run['id']}/{i}-{stem}{found.suffix.lower()}"
            writer.copy(rel, found)
            run["plots"].append({"src_md": Markup(rel.split("/", 1)[1]), "name": Path(str(item)).name})


def generate_docs(engine: Engine, docs: Path, *, cards: dict[str, CardInfo] | None = None,
                  site_src: Path = SITE_SRC, run_roots: list[Path] | None = None,
                  feed_entries: int = FEED_ENTRIES, stamp: bool = True, site_url: str = "") -> GenerateStats:
    """Write the Markdown tree for the catalog into `docs`.

    With `stamp` (the default) the raw HTML pages outside the nav are not written: one
    shell page per URL folder is, and the returned stats' `plan` renders the pages into
    the shells once mkdocs built them (see stamp.py). Without it every page is a docs file
    for mkdocs, the plain path the stamped one is checked against.

    `site_url` (normalised, see meta.py; "" for none) makes the feeds' links absolute and gives
    every page its canonical address; the pages' own links stay relative either way."""
    docs = Path(docs)
    prepare_docs_dir(docs)
    cards = discover_cards() if cards is None else cards
    roots = list(run_roots or []) + [REPO_ROOT, Path.cwd()]
    cat = Catalog(engine, cards, roots)
    feeds = attach_discovery(engine, cat, feed_entries=feed_entries)
    env = template_env(site_src / "templates")
    env.globals.update(site_url=site_url, head_tags=head_tags)
    writer = DocsWriter(docs)
    writer.seen.add(writer.path(MARKER))

    links = env.globals["url"]
    plan = StampPlan(env, writer)
    in_nav = nav_pages(CONFIG_FILE)

    def page(rel: str, template: str, **ctx: Any) -> None:
        # root: from this Markdown file to the docs root (Markdown links to .md files);
        # up: from this page's URL to the site root (final URLs in raw HTML blocks)
        # page_path: this page's URL from the site root ("posts/a/"), for its canonical address
        ctx.update(root="../" * rel.count("/"), up=url_up(rel), page_path=output_path(rel).removesuffix("index.html"))
        if not template.endswith(RAW_TEMPLATE):
            writer.text(rel, env.get_template(template).render(**ctx))
        elif stamp and rel not in in_nav:
            plan.add(rel, template, ctx)
            writer.planned.add(rel)
        else:
            writer.text(rel, plan.render(rel, template, ctx).markdown())

    # hand-written pages and assets, copied as they are
    pages_dir = site_src / "pages"
    for path in sorted(pages_dir.rglob("*")):
        rel = path.relative_to(pages_dir).as_posix()
        if path.is_file() and rel != HOME_INTRO:
            writer.copy(rel, path)
    intro = (pages_dir / HOME_INTRO).read_text(encoding="utf-8") if (pages_dir / HOME_INTRO).exists() else ""

    counts = {"posts": len(cat.posts), "sources": len(cat.sources), "tags": len(cat.tags),
              "papers": len(cat.papers), "reproductions": len(cat.reproductions),
              "runs": sum(len(r["runs"]) for r in cat.reproductions)}
    months: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for post in cat.posts:
        months[post["month"]].append(post)
    month_list = sorted(months, key=lambda m: (m == "undated", m), reverse=True)
    month_list = [m for m in month_list if m != "undated"] + (["undated"] if "undated" in months else [])

    for repro in cat.reproductions:
        _copy_plots(writer, repro, roots)

    page("index.md", "home.md.j2", intro=Markup(intro), counts=counts, latest=cat.posts[:LATEST_ON_HOME],
         reproductions=cat.reproductions)
    page("posts/index.md", "posts_index.html.j2", latest=cat.posts[:LATEST_ON_POSTS_INDEX],
         months=[(m, len(months[m])) for m in month_list], total=len(cat.posts))
    for month in month_list:
        page(f"posts/archive/{month}.md", "posts_month.html.j2", month=month, posts=months[month])
    for post in cat.posts:
        page(f"posts/{post['slug']}.md", "post.html.j2", post=post)
    page("papers/index.md", "papers_index.html.j2", papers=sorted(cat.papers.values(), key=lambda p: p["arxiv_id"],
                                                                reverse=True))
    for paper in cat.papers.values():
        page(f"papers/{paper['slug']}.md", "paper.html.j2", paper=paper)
    write_discussed(engine, cat, page)
    write_feeds(writer, feeds, base_url=site_url)
    page("tags/index.md", "tags_index.html.j2", tags=cat.tags)
    for tag in cat.tags:
        page(f"tags/{tag['slug']}.md", "tag.html.j2", tag=tag)
    page("sources/index.md", "sources_index.html.j2", sources=cat.sources)
    for source in cat.sources:
        page(f"sources/{source['slug']}.md", "source.html.j2", source=source)
    page("reproductions/index.md", "reproductions_index.md.j2", reproductions=cat.reproductions)
    for repro in cat.reproductions:
        page(f"reproductions/{repro['slug']}.md", "reproduction.md.j2", repro=repro,
             docs=[(h, Markup(text)) for h, text in repro["docs"]])

    for folder in sorted(plan.folders):
        writer.text(shell_source(folder), shell_markdown())
    if not plan.pages:
        links.check(writer)  # else once the planned pages are rendered (their links are known then)
    removed = writer.remove_stale()
    return GenerateStats(pages=sum(1 for p in writer.seen if p.suffix == ".md") + len(writer.planned)
                         - len(plan.folders), written=writer.written, removed=removed, counts=counts,
                         post_pages=[f"posts/{post['slug']}/index.html" for post in cat.posts],
                         plan=plan if plan.pages else None)
