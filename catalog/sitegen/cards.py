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
import pkgutil
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


def module_docstring(path: Path) -> str:
    try:
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError):
        return ""


def _card_info(package: str, folder: Path, card: Any) -> CardInfo:
    claims = []
    for claim in getattr(card, "claims", ()) or ():
        claims.append({
            "metric": getattr(claim, "metric", ""), "value": getattr(claim, "value", None),
            "unit": getattr(claim, "unit", ""), "source": getattr(claim, "source", ""),
            "note": getattr(claim, "note", ""), "higher_is_better": getattr(claim, "higher_is_better", True),
        })
    docs = []
    for module, heading in DOC_MODULES:
        text = module_docstring(folder / f"{module}.py")
        if text:
            docs.append((heading, text))
    return CardInfo(
        name=str(card.name), package=package, paper_id=str(getattr(card, "paper_id", "") or ""),
        title=str(getattr(card, "title", "") or ""), authors=str(getattr(card, "authors", "") or ""),
        summary=str(getattr(card, "summary", "") or ""), measures=str(getattr(card, "measures", "") or ""),
        notes=str(getattr(card, "notes", "") or ""), claims=claims,
        presets={str(k): dict(v) for k, v in (getattr(card, "presets", {}) or {}).items()},
        datasets=[str(d) for d in getattr(card, "datasets", ()) or ()], docs=docs,
    )


def discover_cards(package: str = "reproductions") -> dict[str, CardInfo]:
    """Every sub-package of `package` with a ``CARD``, by card name."""
    try:
        root = importlib.import_module(package)
    except ImportError as exc:
        log.warning("site: no reproductions package (%s)", exc)
        return {}
    found: dict[str, CardInfo] = {}
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception as exc:  # a broken package is reported, not fatal
            log.warning("site: cannot import %s: %s: %s", info.name, exc.__class__.__name__, exc)
            continue
        card = getattr(module, "CARD", None)
        if card is None or not getattr(card, "name", None):
            continue
        folder = Path(module.__file__).resolve().parent
        found[str(card.name)] = _card_info(info.name, folder, card)
    return found
