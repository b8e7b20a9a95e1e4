"""`digest db copy`, `check` and `backup`: the catalog database itself."""

from __future__ import annotations

from pathlib import Path

import typer

from catalog.cli.common import fail, print_json, state, stdout


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The catalog database itself: copy it between engines, check it, back it up.",
                     no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("copy")
    def copy(
        source: str = typer.Argument(..., help="Catalog to read: a file path, sqlite:///PATH or postgresql+psycopg://…"),
        destination: str = typer.Argument(..., help="Empty catalog to fill (created when missing), same forms."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Copy every row of SOURCE into the empty DESTINATION in one transaction (all or nothing),
        rebuild its search index, then check row counts and a few searches on both sides.

        Example: `digest db copy digest.db postgresql+psycopg://me@dbhost/digest`. The global
        `--db` is not used here.
        """
        from catalog.dbcopy import copy_catalog

        report = copy_catalog(source, destination)
        if as_json:
            print_json(report.as_dict())
            return
        total = sum(report.rows.values())
        stdout.print(f"[bold]copied[/bold] {total} rows from {report.source} to {report.destination}: "
                     + ", ".join(f"{n} {t}" for t, n in report.rows.items() if n), markup=True)
        stdout.print("verified: row counts equal; searches "
                     + ", ".join(f"{c['query']!r} ({c['hits']} hits)" for c in report.spot_checks)
                     + " give the same posts")

    @db.command("check")
    def check(
        ctx: typer.Context,
        full: bool = typer.Option(False, "--full", help="SQLite: PRAGMA integrity_check (slower; also compares"
                                  " every index with its table) instead of quick_check."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Check the catalog (`--db`) for damage; changes nothing. Exit 0 when whole, 1 when not.

        SQLite: `PRAGMA quick_check` (`--full`: `integrity_check`) and the full-text index's
        own integrity check; both engines: the schema version and every expected index.
        """
        from catalog.dbcheck import check_catalog

        st = state(ctx)
        report = check_catalog(st.db_path, full=full)
        if as_json:
            print_json(report.as_dict())
        else:
            for c in report.checks:
                stdout.print(f"{'ok    ' if c.ok else 'FAILED'}  {c.name}: {c.detail}", markup=False, highlight=False)
        if not report.ok:
            fail(f"{report.catalog} is damaged: " + "; ".join(f"{c.name}: {c.detail}" for c in report.checks
                                                              if not c.ok) + " — restore it from a backup")

    @db.command("backup")
    def backup(
        ctx: typer.Context,
        destination: Path = typer.Argument(..., help="New file to write (never overwritten)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Write a consistent copy of the live SQLite catalog (`--db`) to DESTINATION.

        Uses SQLite's online backup API a few pages at a time, so searches (and a writer)
        go on meanwhile; the copy is checked (quick_check) before it gets its name.
        """
        from catalog.dbcheck import backup_catalog

        report = backup_catalog(state(ctx).db_path, destination)
        if as_json:
            print_json(report.as_dict())
            return
        stdout.print(f"backed up {report.source} to {report.destination}: {report.pages} pages,"
                     f" {report.bytes} bytes in {report.seconds:.2f} s", markup=False, highlight=False)
