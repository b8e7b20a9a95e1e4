"""Paper metadata from a bundled snapshot, for catalogs built without a network (`digest demo --offline`).

The snapshot (catalog/sample/papers/arxiv_snapshot.json) lists title, authors, first-version
date and categories of the papers the sample corpus cites, and a one-sentence summary
written for this project (stored as the abstract, and said so in the paper's comment).
It only fills papers still waiting for arXiv (status ``pending``): metadata fetched from
arXiv is never replaced. One transaction; re-running changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from catalog.db import session
from catalog.errors import DigestError
from catalog.models import Paper

SNAPSHOT_NOTE = ("Offline snapshot bundled with paper-digest: the summary above is ours, not the arXiv abstract "
                 "(`digest arxiv sync` on a network fetches arXiv's own record for new catalogs).")


def sample_snapshot() -> Path:
    return Path(str(resources.files("catalog") / "sample" / "papers" / "arxiv_snapshot.json"))


def read_snapshot(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        papers = data["papers"]
        for entry in papers:
            if not isinstance(entry.get("arxiv_id"), str) or not isinstance(entry.get("title"), str):
                raise ValueError(f"entry without arxiv_id or title: {entry!r:.80}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DigestError(f"cannot read the paper snapshot {path}: {exc}") from None
    return papers


def load_snapshot(engine: Engine, path: Path | None = None) -> int:
    """Fill the pending papers the snapshot knows; returns how many were filled."""
    entries = {e["arxiv_id"]: e for e in read_snapshot(path or sample_snapshot())}
    filled = 0
    with session(engine) as s:
        pending = s.scalars(select(Paper).where(Paper.status == "pending", Paper.arxiv_id.in_(list(entries))))
        for paper in pending:
            entry = entries[paper.arxiv_id]
            published = datetime.fromisoformat(entry["published"]) if entry.get("published") else None
            paper.title = entry["title"]
            paper.authors = list(entry.get("authors") or [])
            paper.abstract = entry.get("summary") or None
            paper.version = entry.get("version")
            paper.published = paper.updated = published
            paper.primary_category = entry.get("primary_category")
            paper.categories = list(entry.get("categories") or [])
            paper.pdf_url = f"https://arxiv.org/pdf/{paper.arxiv_id}"
            paper.comment = SNAPSHOT_NOTE
            paper.status = "ok"
            filled += 1
    return filled
