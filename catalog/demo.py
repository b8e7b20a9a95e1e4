"""`digest demo`: the main job on the bundled sample corpus, end to end and offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from catalog.cli.common import state, stdout
from catalog.ingest import ingest_paths
from catalog.search import search


def sample_corpus() -> list[Path]:
    """The bundled sample exports (written for this project; see catalog/sample/README.md)."""
    folder = resources.files("catalog") / "sample"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json"))


def run_demo(ctx: typer.Context, *, build_site: bool = True) -> None:
    st = state(ctx)
    engine = st.engine()
    stats = ingest_paths(engine, sample_corpus())
    stdout.print(f"[bold]ingested[/bold] {stats.posts} posts from {stats.sources} sources into {st.db_path} "
                 f"({stats.posts_new} new, {stats.posts_updated} updated, {stats.posts_unchanged} unchanged)")
    for query in ("drophead", "головы внимания", "注意力"):
        hits = search(engine, query, limit=3)
        stdout.print(f"search {query!r}: " + "; ".join(f"#{h.id} {h.title[:50]}" for h in hits))
