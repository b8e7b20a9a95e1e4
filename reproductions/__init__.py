"""Runnable paper reproductions.

Each sub-package is one paper: ``__init__.py`` holds its `Card`, ``model.py`` the model,
``experiment.py`` a ``run(config, ctx) -> metrics`` function. `reproductions.runner`
finds them, picks a device, seeds, and writes the run record.

This package imports nothing from ``catalog`` or ``scrapers`` and needs only torch
(plus numpy, matplotlib, rich): ``python -m reproductions run NAME`` works on a
machine that has nothing else installed.
"""

from reproductions.api import Card, Claim, RunContext

__all__ = ["Card", "Claim", "RunContext"]
