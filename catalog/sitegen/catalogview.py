"""The catalog as the site's pages see it: every post, paper, tag, source and reproduction as
plain dicts with slugs and page paths, cross-linked, loaded in a few queries (`Catalog`)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from markupsafe import Markup
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from catalog.models import Paper, PaperTag, Post, PostPaper, PostTag, Reproduction, Run, Source, Tag, as_utc
from catalog.sitegen.cards import CardInfo
from catalog.sitegen.claimview import claim_lines, preset_tables, reader_name, verdict_run
from catalog.sitegen.runview import claims_view, flatten, metrics_view, shown_run_dir
from catalog.sitegen.slugs import SlugRegistry

RUNS_PER_REPRODUCTION = 12  # the latest run of each preset is shown in full, older ones collapsed


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
