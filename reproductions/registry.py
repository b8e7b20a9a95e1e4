"""Which reproductions exist: every sub-package of `reproductions` whose ``__init__`` has a `CARD`.

Discovery imports only each package's ``__init__`` (the card: a few dataclasses, no
torch models); ``experiment.py`` is imported when a run actually starts. Extra
packages outside this one (a plugin, a test's toy reproduction) are named in the
environment variable ``DIGEST_REPRODUCTIONS`` as comma-separated module names.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from reproductions.api import Card
from reproductions.errors import UnknownReproduction

EXTRA_ENV = "DIGEST_REPRODUCTIONS"

ExperimentFn = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    """One reproduction: its card and where its ``run(config, ctx)`` lives."""

    card: Card
    module: str  # package holding CARD, e.g. "reproductions.drophead"

    def load_run(self) -> ExperimentFn:
        """Import ``<module>.experiment`` (or the package itself if it defines ``run``)."""
        package = importlib.import_module(self.module)
        if callable(getattr(package, "run", None)):
            return package.run
        return importlib.import_module(f"{self.module}.experiment").run


def _card_of(module_name: str) -> Card | None:
    module = importlib.import_module(module_name)
    card = getattr(module, "CARD", None)
    return card if isinstance(card, Card) else None


def discover(on_error: Callable[[str, Exception], None] | None = None) -> dict[str, Entry]:
    """All reproductions by card name, ours first, then those named in ``$DIGEST_REPRODUCTIONS``.

    A package that fails to import raises, unless `on_error(module_name, exc)` is given:
    then it is reported there and skipped (the site must not fail for one broken package).
    """
    import reproductions

    found: dict[str, Entry] = {}
    names = [f"reproductions.{info.name}" for info in pkgutil.iter_modules(reproductions.__path__) if info.ispkg]
    names += [n.strip() for n in os.environ.get(EXTRA_ENV, "").split(",") if n.strip()]
    for module_name in sorted(set(names), key=names.index):
        try:
            card = _card_of(module_name)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(module_name, exc)
            continue
        if card is not None:
            found[card.name] = Entry(card, module_name)
    return found


def get(name: str, entries: dict[str, Entry] | None = None) -> Entry:
    """The reproduction called `name`, or `UnknownReproduction` listing the known ones."""
    entries = discover() if entries is None else entries
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none installed"
        raise UnknownReproduction(f"unknown reproduction {name!r}; known: {known}")
    return entries[name]
