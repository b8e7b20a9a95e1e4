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

# psycopg logs "error ignored terminating <Pipeline>" when a lost connection is closed; the
# command's own one-line error says what happened (--debug keeps the traceback).
logging.getLogger("psycopg").addFilter(lambda record: "error ignored" not in record.getMessage())

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    db_path: Path | str  # a file, or a database URL (sqlite:///…, postgresql+psycopg://…)
    debug: bool = False
    _engine: Any = None

    @property
    def db_name(self) -> str:
        """The catalog for messages (a URL without its password)."""
        from catalog.db import describe

        return describe(self.db_path)

    def catalog_exists(self) -> bool:
        from catalog.db import catalog_exists

        return catalog_exists(self.db_path)

    def engine(self, *, must_exist: bool = False):
        """Open (and migrate) the catalog; `must_exist` for read-only commands."""
        from catalog.db import open_db
        from catalog.errors import DigestError

        if self._engine is None:
            if must_exist and not self.catalog_exists():
                raise DigestError(f"no catalog at {self.db_name}: run `digest ingest PATH` or `digest demo` first")
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
