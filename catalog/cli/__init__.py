"""The `digest` command line: a thin layer over the catalog library.

Each command group lives in its own module and registers itself on `app`; every
command parses options and calls one tested library function. Errors the user can
act on are one line on stderr (exit 1 for runtime failures, 2 for usage);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from catalog.cli import (arxiv_cmd, db_cmd, discovery_cmd, follow_cmd, ingest_cmd, query_cmd, runs_cmd, site_cmd,
                         sources_cmd)
from catalog.cli.common import State, fail
from catalog.db import is_url
from catalog.errors import DigestError


class DigestGroup(TyperGroup):
    """Turns errors into one line on stderr and an exit code (1 runtime, 2 usage).

    Done at the click level, not around `app()`, so the test runner sees the same
    behaviour as the console script.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            if _debug(ctx):
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except SystemExit:
            raise
        except Exception as exc:  # a bug or an environment failure: still one line
            if _debug(ctx) or _is_cli_control(exc):
                raise
            database = _database_fault(ctx, exc)
            if database:
                fail(database, 1)
            fail(f"{exc.__class__.__name__}: {exc} (run with --debug for the traceback)", 1)


def _database_fault(ctx, exc: Exception) -> str | None:
    """A database error as one line naming the fault, never its SQL text or parameters."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    from catalog.dbfaults import db_fault, describe_unknown, fault_kind

    is_driver = isinstance(exc, sqlite3.Error) or type(exc).__module__.split(".")[0] == "psycopg"
    if not (isinstance(exc, SQLAlchemyError) or is_driver or fault_kind(exc) is not None):
        return None
    obj = ctx.find_root().obj
    target = getattr(obj, "db_path", "digest.db")
    known = db_fault(exc, target)
    if known is not None:
        return str(known)
    return describe_unknown(exc, target) + " (run with --debug for the traceback)"


def _is_cli_control(exc: Exception) -> bool:
    """Usage errors, --help exits and aborts belong to the CLI framework (it prints them, exit 2)."""
    return type(exc).__module__.split(".")[0] in ("click", "typer")


def _debug(ctx) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False)) or "--debug" in sys.argv[1:]


app = typer.Typer(
    cls=DigestGroup,
    name="digest",
    help=(
        "paper-digest: ML paper digests from Telegram channels and blogs in one searchable catalog, "
        "with arXiv metadata and runnable PyTorch reproductions.\n\n"
        "Start with `digest demo`, then `digest search attention`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _global(
    ctx: typer.Context,
    db: str = typer.Option(
        "digest.db", "--db", envvar="DIGEST_DB",
        help="Catalog: a database file (created when missing), or a URL: sqlite:///PATH or "
             "postgresql+psycopg://USER@HOST/DB (a PostgreSQL server).",
        show_default=True,
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    ctx.obj = State(db_path=db if is_url(db) else Path(db), debug=debug)


for _module in (ingest_cmd, query_cmd, arxiv_cmd, discovery_cmd, runs_cmd, site_cmd, sources_cmd, follow_cmd, db_cmd):
    _module.register(app)


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
