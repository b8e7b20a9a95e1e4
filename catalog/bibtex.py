"""BibTeX for papers in the catalog: `digest paper ID --bibtex`, `digest papers --bibtex`, paper pages.

Entries follow arXiv's own export style — ``@misc`` with ``eprint``, ``archivePrefix``
and ``primaryClass`` — plus ``doi`` and ``journal`` when arXiv knows them, which is
what reference managers and biblatex read.

Keys are ``<first author's last name><year><first title word>`` in ASCII
(``vaswani2017attention``). They depend only on the paper's own metadata, so the same
paper gets the same key in every export; where two papers of the catalog would share a
key, every one of them gets its arXiv id appended (``…:2004.13342``), so a key never
changes with the selection being exported.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.models import Paper, as_utc
from catalog.transliterate import ascii_fold
from catalog.sqlutil import chunked

# Articles and prepositions a key skips to reach the title's first real word.
_STOPWORDS = frozenset("a an the on of in for to and with from is are via towards toward".split())
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}",
}
_LATEX_RE = re.compile("|".join(re.escape(ch) for ch in _LATEX_SPECIAL))
_SPACES = re.compile(r"\s+")


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters made literal, whitespace collapsed."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], _SPACES.sub(" ", text).strip())


def base_key(paper: dict[str, Any]) -> str:
    """``lastname + year + first title word``, ASCII letters and digits only."""
    authors = paper.get("authors") or []
    last = ascii_fold(authors[0].split()[-1]) if authors and authors[0].split() else "anon"
    year = (paper.get("published") or "")[:4]
    words = [w for w in re.findall(r"[a-z0-9]+", ascii_fold(paper.get("title") or ""))]
    first = next((w for w in words if w not in _STOPWORDS), words[0] if words else "")
    key = re.sub(r"[^a-z0-9]", "", last) + year + first
    return key or "arxiv"


def assign_keys(papers: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``{arxiv_id: key}``, unique over `papers` (pass every paper of the catalog for stable keys)."""
    papers = list(papers)
    bases = {p["arxiv_id"]: base_key(p) for p in papers}
    taken = Counter(bases.values())
    return {aid: (key if taken[key] == 1 else f"{key}:{aid}") for aid, key in bases.items()}


def entry(paper: dict[str, Any], key: str) -> str:
    """One ``@misc`` entry for a paper dict (arxiv_id, title, authors, published ISO date, …)."""
    fields: list[tuple[str, str]] = [
        # Double braces keep the title's capitalisation through any bibliography style.
        ("title", "{" + latex_escape(paper.get("title") or "") + "}"),
        ("author", " and ".join(latex_escape(a) for a in paper.get("authors") or [])),
        ("year", (paper.get("published") or "")[:4]),
        ("eprint", paper["arxiv_id"]),
        ("archivePrefix", "arXiv"),
        ("primaryClass", paper.get("primary_category") or ""),
        ("doi", latex_escape(paper.get("doi") or "")),
        ("journal", latex_escape(paper.get("journal_ref") or "")),
        ("url", f"https://arxiv.org/abs/{paper['arxiv_id']}"),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"  {name.ljust(width)} = {{{value}}}," for name, value in fields if value]
    return "@misc{" + key + ",\n" + "\n".join(lines) + "\n}\n"


def _paper_dict(p: Paper) -> dict[str, Any]:
    published = as_utc(p.published)
    return {"arxiv_id": p.arxiv_id, "authors": list(p.authors or []), "title": p.title,
            "published": published.isoformat() if published else "", "primary_category": p.primary_category,
            "doi": p.doi, "journal_ref": p.journal_ref}


def catalog_keys(engine: Engine) -> dict[str, str]:
    """Citation keys of every paper with metadata, unique across the catalog."""
    with engine.connect() as c:
        rows = c.execute(select(Paper.arxiv_id, Paper.authors, Paper.published, Paper.title)
                         .where(Paper.title.is_not(None))).all()
    return assign_keys({"arxiv_id": aid, "authors": authors or [], "title": title,
                        "published": as_utc(published).isoformat() if published else ""}
                       for aid, authors, published, title in rows)


def bibliography(engine: Engine, arxiv_ids: Iterable[str]) -> tuple[str, list[str]]:
    """A .bib text for the papers `arxiv_ids` (in that order) and the ids left out for lack of metadata."""
    wanted = list(dict.fromkeys(arxiv_ids))
    keys = catalog_keys(engine)
    papers: dict[str, dict[str, Any]] = {}
    with Session(engine) as s:
        for part in chunked(wanted):
            papers.update((p.arxiv_id, _paper_dict(p))
                          for p in s.scalars(select(Paper).where(Paper.arxiv_id.in_(part))))
    out, skipped = [], []
    for aid in wanted:
        if aid in keys and aid in papers:
            out.append(entry(papers[aid], keys[aid]))
        else:
            skipped.append(aid)
    return "\n".join(out), skipped
