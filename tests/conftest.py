"""Shared fixtures: a fresh catalog, the sample corpus, ../shared when present, a CLI runner."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Keep torch from fighting over the 2 CPU cores with itself in CI.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test when it is absent (CI has it; a bare clone may not)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (the ../shared folder beside the checkout)")
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture
def engine(db_path: Path):
    from catalog.db import open_db

    eng = open_db(db_path)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    from catalog.demo import sample_corpus

    return sample_corpus()


@pytest.fixture
def sample_engine(engine, sample_files):
    from catalog.ingest import ingest_paths

    ingest_paths(engine, sample_files)
    return engine


class Cli:
    """Runs `digest` in-process against one database and returns (exit code, stdout, stderr)."""

    def __init__(self, db: Path):
        self.db = db

    def __call__(self, *args: str, input: str | None = None):
        from typer.testing import CliRunner

        from catalog.cli import app

        result = CliRunner().invoke(app, ["--db", str(self.db), *args], input=input)
        return result


@pytest.fixture
def cli(db_path: Path) -> Cli:
    return Cli(db_path)


def telegram_export(messages: list[dict[str, Any]], *, name: str = "Test Channel", chat_id: int = 42) -> dict:
    return {"name": name, "type": "public_channel", "id": chat_id, "messages": messages}


def message(msg_id: int, text: str | list, *, date: str = "2020-04-27T10:15:00", **extra) -> dict[str, Any]:
    m: dict[str, Any] = {"id": msg_id, "type": "message", "date": date, "from": "Test Channel", "text": text}
    m.update(extra)
    return m


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def table_counts(engine) -> dict[str, int]:
    from catalog.queries import counts

    with engine.connect() as c:
        extra = {t: c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                 for t in ("post_tag", "post_paper", "post_search")}
    return counts(engine) | extra


def dump(engine) -> list[tuple]:
    """Every row of the content tables, for before/after comparisons."""
    rows = []
    with engine.connect() as c:
        for table in ("source", "post", "tag", "post_tag", "paper", "post_paper", "link", "post_search"):
            rows += [(table, *r) for r in c.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return rows


sys.path.insert(0, str(REPO))
