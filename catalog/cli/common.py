"""Helpers shared by the CLI command modules: state, output, errors."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

# jieba logs "Building prefix dict…" at DEBUG through its own stderr handler whenever it
# loads its dictionary (for our search text, and in mkdocs-material's search plugin
# during a site build), and importing it resets its level; a filter on its logger,
# set before any import, survives that, so no command prints those lines.
logging.getLogger("jieba").addFilter(lambda record: record.levelno >= logging.WARNING)

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    db_path: Path
    debug: bool = False
    _engine: Any = None

    def engine(self, *, must_exist: bool = False):
        """Open (and migrate) the catalog; `must_exist` for read-only commands."""
        from catalog.db import open_db
        from catalog.errors import DigestError

        if self._engine is None:
            if must_exist and not self.db_path.exists():
                raise DigestError(f"no catalog at {self.db_path}: run `digest ingest PATH` or `digest demo` first")
            self._engine = open_db(self.db_path)
        return self._engine


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    message = " ".join(str(message).split())  # one line, whatever the message held
    print(f"digest: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
