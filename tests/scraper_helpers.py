"""Helpers shared by the scraper tests (not fixtures: plain functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def seed(prefix: str) -> Path:
    """A seed file under ../shared/seeds by its number prefix; skip when ../shared is absent."""
    folder = SHARED / "seeds"
    found = sorted(folder.glob(f"{prefix}_*")) if folder.is_dir() else []
    if not found:
        pytest.skip(f"seed {prefix} not present under {folder}")
    return found[0]


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path
