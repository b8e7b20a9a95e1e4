"""`digest db copy`: move a whole catalog between SQLite and PostgreSQL."""

from __future__ import annotations

import typer

from catalog.cli.common import print_json, stdout


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The catalog database itself: copy it between engines.", no_args_is_help=True)
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
