"""Reproduction cards and docstrings, read from the `reproductions` packages.

The card (`reproductions.api.Card`) says what a reproduction is; the module
docstrings of its package explain the paper and the code, labml-style, and become
the body of its page. Docstrings are read with `ast`, so the models (and torch) are
never imported just to build the site. A package that fails to import is skipped
with a warning: one broken reproduction must not take the site down.
"""

from __future__ import annotations

import ast
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Module docstrings shown on a reproduction page, in this order, under these headings.
DOC_MODULES = (("__init__", None), ("model", "The model"), ("experiment", "The experiment"))


@dataclass
class CardInfo:
    """What the site needs from one reproduction package (plain values, no torch)."""

    name: str
    package: str
    paper_id: str = ""
    title: str = ""
    authors: str = ""
    summary: str = ""
    measures: str = ""
    notes: str = ""
    claims: list[dict[str, Any]] = field(default_factory=list)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)
    docs: list[tuple[str | None, str]] = field(default_factory=list)  # (heading, docstring)
    labels: dict[str, str] = field(default_factory=dict)  # reader names of claims, arms and metrics
    differences: list[tuple[str, str, str, str]] = field(default_factory=list)  # what, paper, ours, why
    paper_config: dict[str, Any] = field(default_factory=dict)


def module_docstring(path: Path) -> str:
    try:
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError):
        return ""


def _card_info(package: str, folder: Path, card: Any) -> CardInfo:
    docs = []
    for module, heading in DOC_MODULES:
        text = module_docstring(folder / f"{module}.py")
        if text:
            docs.append((heading, text))
    return CardInfo(
        name=card.name, package=package, paper_id=card.paper_id, title=card.title, authors=card.authors,
        summary=card.summary, measures=card.measures, notes=card.notes,
        claims=[claim.as_dict() for claim in card.claims],
        presets={str(k): dict(v) for k, v in card.presets.items()},
        datasets=list(card.datasets), docs=docs,
        labels={**card.labels, **{c.key: c.label for c in card.claims if c.label}},
        differences=[tuple(row) for row in card.differences], paper_config=dict(card.paper_config),
    )


def discover_cards() -> dict[str, CardInfo]:
    """Every reproduction the runner knows (`reproductions.registry`), by card name."""
    from reproductions.registry import discover

    def skip(module: str, exc: Exception) -> None:  # a broken package is reported, not fatal
        log.warning("site: cannot import %s: %s: %s", module, exc.__class__.__name__, exc)

    return {name: _card_info(entry.module, Path(importlib.import_module(entry.module).__file__).resolve().parent,
                             entry.card)
            for name, entry in discover(on_error=skip).items()}
