"""The main job on the bundled sample corpus, end to end and offline-safe (`digest demo` prints it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine

from catalog.arxiv import SyncReport
from catalog.arxiv import sync as sync_arxiv
from catalog.db import session
from catalog.ingest import ingest_paths
from catalog.ingest_stats import IngestStats
from catalog.runs import import_runs, sync_reproductions
from catalog.paper_snapshot import load_snapshot as load_paper_snapshot
from catalog.search import Hit, search
from catalog.sitegen.build import BuildResult
from catalog.sitegen.build import build_site as build_static_site

DEMO_QUERIES = ("drophead", "головы внимания", "注意力")  # one per language of the sample corpus


def sample_corpus() -> list[Path]:
    """The bundled sample exports (written for this project; see catalog/sample/README.md)."""
    folder = resources.files("catalog") / "sample"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json"))


def committed_results() -> Path | None:
    """The run records kept in the checkout (``results/``), when running from one."""
    folder = Path(__file__).resolve().parent.parent / "results"
    return folder if folder.is_dir() else None


@dataclass
class DemoReport:
    ingest: IngestStats
    reproductions: int
    runs_imported: int
    arxiv: SyncReport
    searches: list[tuple[str, list[Hit]]] = field(default_factory=list)
    snapshot_papers: int = 0  # papers filled from the bundled arXiv snapshot (offline)
    site: BuildResult | None = None


def run_demo(engine: Engine, *, build_site: bool = True, offline: bool = False,
             site_out: Path = Path("build")) -> DemoReport:
    """Ingest the sample corpus, register reproductions and their committed runs, sync arXiv
    (offline-safe), run one search per language and build the site into `site_out`."""
    stats = ingest_paths(engine, sample_corpus())
    with session(engine) as s:
        repros = sync_reproductions(s)
        results = committed_results()
        runs = import_runs(s, results, sync=False) if results else []
    report = DemoReport(ingest=stats, reproductions=len(repros), runs_imported=len(runs),
                        arxiv=sync_arxiv(engine, offline=offline))
    if report.arxiv.pending:  # offline: the bundled snapshot gives the sample's papers their titles
        report.snapshot_papers = load_paper_snapshot(engine)
    report.searches = [(query, search(engine, query, limit=3)) for query in DEMO_QUERIES]
    if build_site:
        report.site = build_static_site(engine, site_out)
    return report
