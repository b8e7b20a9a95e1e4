"""Reproductions and their runs in the catalog.

The runner (`reproductions.runner`) knows nothing of the catalog: it leaves a run
folder whose ``run.json`` is the whole record. This module reads those records:
`sync_reproductions` writes one Reproduction row per installed reproduction card,
`import_run` turns a run folder into a Run row (idempotent: importing the same folder
again updates its row), `import_runs` does that for every run under a folder such as
the repository's ``results/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import DigestError
from catalog.models import Paper, PaperStatus, Reproduction, Run, to_naive_utc

RUN_FILE = "run.json"


# ---------------------------------------------------------------- reproductions

def _paper(session: Session, arxiv_id: str | None) -> Paper | None:
    """The Paper row for `arxiv_id`, created as ``pending`` (for `digest arxiv sync`) when missing."""
    if not arxiv_id:
        return None
    paper = session.scalar(select(Paper).where(Paper.arxiv_id == arxiv_id))
    if paper is None:
        paper = Paper(arxiv_id=arxiv_id, status=PaperStatus.PENDING.value, authors=[], categories=[])
        session.add(paper)
        session.flush()
    return paper


def upsert_reproduction(session: Session, *, slug: str, arxiv_id: str | None, title: str = "", summary: str = "",
                        measures: str = "", claims: list[dict[str, Any]] | None = None,
                        presets: list[str] | None = None) -> Reproduction:
    """Insert or update the Reproduction called `slug`; fields given as None/empty keep stored values."""
    repro = session.scalar(select(Reproduction).where(Reproduction.slug == slug))
    if repro is None:
        repro = Reproduction(slug=slug)
        session.add(repro)
    paper = _paper(session, arxiv_id)
    repro.arxiv_id = arxiv_id or repro.arxiv_id
    repro.paper_id = paper.id if paper is not None else repro.paper_id
    repro.title = title or repro.title or ""
    repro.summary = summary or repro.summary or ""
    repro.measures = measures or repro.measures or ""
    if claims is not None:
        repro.paper_claims = claims
    if presets is not None:
        repro.presets = presets
    session.flush()
    return repro


def sync_reproductions(session: Session, entries: dict[str, Any] | None = None) -> list[Reproduction]:
    """One Reproduction row per reproduction card the runner finds (or the given registry entries)."""
    from reproductions.registry import discover

    entries = discover() if entries is None else entries
    rows = []
    for entry in entries.values():
        card = entry.card
        rows.append(upsert_reproduction(
            session, slug=card.name, arxiv_id=card.paper_id, title=card.title, summary=card.summary,
            measures=card.measures, claims=[c.as_dict() for c in card.claims], presets=list(card.presets)))
    return rows


# ---------------------------------------------------------------- runs

def read_record(run_dir: Path) -> dict[str, Any]:
    """The run.json of `run_dir`, checked for the fields a Run row needs."""
    path = Path(run_dir) / RUN_FILE
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DigestError(f"{run_dir} is not a run folder: no {RUN_FILE}") from None
    except (OSError, ValueError) as exc:
        raise DigestError(f"cannot read {path}: {exc}") from None
    missing = [k for k in ("name", "preset", "status") if not isinstance(rec, dict) or k not in rec]
    if missing:
        raise DigestError(f"{path} is not a run record (missing {', '.join(missing)})")
    return rec


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return to_naive_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def _device_text(device: Any) -> str:
    if not isinstance(device, dict):
        return str(device or "")
    text = device.get("name") or device.get("type") or ""
    if device.get("capability"):
        text += f" (sm {device['capability']})"
    return f"{device.get('type', '')}: {text}".strip(": ")


def _card_claim(row: dict[str, Any]) -> dict[str, Any]:
    """A card's claim rebuilt from a run record's judged claim (older records: {metric, paper, ours})."""
    paper = row.get("paper")
    if isinstance(paper, dict):
        return {"id": row.get("id"), "metric": row.get("metric"), "value": paper.get("value"),
                "unit": paper.get("unit", ""), "source": paper.get("where", ""), "note": paper.get("note", ""),
                "higher_is_better": row.get("direction", "higher") == "higher", "kind": row.get("kind"),
                "arms": row.get("arms") or [], "statement": row.get("statement", "")}
    return {"metric": row.get("metric"), "value": paper, "unit": row.get("unit", ""),
            "source": row.get("source", ""), "note": row.get("note", ""),
            "higher_is_better": row.get("higher_is_better", True)}


def import_run(session: Session, run_dir: str | Path) -> Run:
    """Create or update the Run row for one run folder (keyed by its absolute path)."""
    run_dir = Path(run_dir).resolve()
    rec = read_record(run_dir)
    repro = session.scalar(select(Reproduction).where(Reproduction.slug == rec["name"]))
    if repro is None:  # not installed here (a results/ folder from elsewhere): the record describes it
        repro = upsert_reproduction(
            session, slug=rec["name"], arxiv_id=rec.get("paper_id"), title=rec.get("title", ""),
            measures=rec.get("measures", ""),
            claims=[_card_claim(c) for c in rec.get("claims") or [] if isinstance(c, dict)])
    run = session.scalar(select(Run).where(Run.reproduction_id == repro.id, Run.run_dir == str(run_dir)))
    if run is None:
        run = Run(reproduction=repro, run_dir=str(run_dir), preset=rec["preset"])
        session.add(run)
    run.preset = rec["preset"]
    run.status = rec["status"]
    run.device = _device_text(rec.get("device"))
    run.started_at = _time(rec.get("started_at"))
    run.finished_at = _time(rec.get("finished_at"))
    run.duration_s = rec.get("duration_s")
    run.metrics = {"metrics": rec.get("metrics") or {}, "std": rec.get("metrics_std") or {},
                   "by_seed": rec.get("metrics_by_seed") or {}, "claims": rec.get("claims") or [],
                   "notes": rec.get("notes") or {}, "error": rec.get("error"), "seeds": rec.get("seeds"),
                   "analysis": rec.get("analysis") or {}, "exploratory": rec.get("exploratory")}
    run.config = rec.get("config") or {}
    run.versions = {**(rec.get("versions") or {}), "git": rec.get("git"), "runner": rec.get("runner")}
    run.artefacts = list(rec.get("artefacts") or [])
    session.flush()
    return run


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder holding a run.json under `root` (or `root` itself), oldest first."""
    root = Path(root)
    if (root / RUN_FILE).is_file():
        return [root]
    if not root.is_dir():
        raise DigestError(f"{root}: no such folder")
    return sorted((p.parent for p in root.rglob(RUN_FILE)), key=lambda p: (p.name, str(p)))


def import_runs(session: Session, *roots: str | Path, sync: bool = True) -> list[Run]:
    """Import every run folder under `roots`; the installed cards are synced first (once)
    unless the caller just did (`sync=False`)."""
    dirs = [d for root in roots for d in find_run_dirs(root)]
    if sync:
        sync_reproductions(session)
    return [import_run(session, d) for d in dirs]


# ---------------------------------------------------------------- listing

@dataclass
class RunRow:
    id: int
    name: str
    preset: str
    status: str
    device: str
    started_at: datetime | None
    duration_s: float | None
    headline: dict[str, float]
    claims: list[dict[str, Any]]
    run_dir: str

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["started_at"] = self.started_at.isoformat() + "Z" if self.started_at else None
        return d


def headline_metrics(metrics: dict[str, Any], claims: list[dict[str, Any]] = (), limit: int = 4) -> dict[str, float]:
    """The numbers a listing shows: the metrics the paper's claims name first, then the first others."""
    from reproductions.record import headline

    return headline(metrics, limit=limit, prefer=[c.get("metric") for c in claims if c.get("metric")])


def list_runs(session: Session, name: str | None = None) -> list[RunRow]:
    """Runs, newest first, optionally of one reproduction, with their first numeric metrics."""
    # runs with no start time last, on both engines (SQLite sorts NULL first, PostgreSQL last)
    query = (select(Run, Reproduction.slug).join(Reproduction)
             .order_by(Run.started_at.is_(None), Run.started_at.desc(), Run.id.desc()))
    if name:
        query = query.where(Reproduction.slug == name)
    rows = []
    for run, slug in session.execute(query):
        metrics = (run.metrics or {}).get("metrics") or {}
        claims = (run.metrics or {}).get("claims") or []
        rows.append(RunRow(run.id, slug, run.preset, run.status, run.device, run.started_at, run.duration_s,
                           headline_metrics(metrics, claims), claims, run.run_dir))
    return rows
