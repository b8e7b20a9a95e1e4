"""`digest run`, `digest runs`, `digest import-runs`: the reproduction runner with the catalog around it.

`digest run NAME` is `python -m reproductions run NAME` (same options, same run folder)
plus one step: when the catalog database exists, the finished — or failed, or
interrupted — run is recorded as a Run row of its Reproduction.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from catalog.cli.common import State, fail, print_json, state, stdout
from catalog.errors import DigestError, UsageError


def _runner_call(fn, *args, **kwargs):
    """Call into the runner, turning its errors into the catalog's (same exit codes)."""
    from reproductions.errors import RunnerError

    try:
        return fn(*args, **kwargs)
    except RunnerError as exc:
        raise (UsageError if exc.exit_code == 2 else DigestError)(str(exc)) from None


def record_run(st: State, run_dir: Path) -> int | None:
    """Import `run_dir` into the catalog if one exists at ``--db``; the Run id, or None."""
    if not st.catalog_exists():
        return None
    from catalog.db import session
    from catalog.runs import import_run, sync_reproductions

    with session(st.engine()) as s:
        sync_reproductions(s)
        return import_run(s, run_dir).id


def list_reproductions(as_json: bool) -> None:
    from reproductions.cli import card_summary
    from reproductions.registry import discover

    entries = discover()
    if as_json:
        print_json([card_summary(e) for e in entries.values()])
        return
    table = Table(show_lines=True)
    for col in ("name", "paper", "presets", "measures"):
        table.add_column(col, overflow="fold")
    for e in entries.values():
        c = e.card
        table.add_row(c.name, f"arXiv:{c.paper_id}\n{c.title}", ", ".join(c.presets), _gist(c.measures))
    stdout.print(table if entries else "no reproductions found")


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        ctx: typer.Context,
        name: Optional[str] = typer.Argument(None, help="Reproduction to run (see `digest run --list`)."),
        preset: Optional[str] = typer.Option(None, "--preset", help="smoke | cpu | gpu (default: gpu with CUDA, else cpu)."),
        device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)."),
        seed: int = typer.Option(0, "--seed", help="First seed."),
        seeds: Optional[int] = typer.Option(None, "--seeds", help="Run seeds seed..seed+N-1; metrics get mean and std."),
        sets: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                 help="Override a preset config key (JSON value); also compile=true."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Datasets folder (default $DIGEST_DATA)."),
        out: Path = typer.Option(Path("runs"), "--out", help="Runs folder."),
        resume: bool = typer.Option(False, "--resume", help="Continue the newest unfinished run of NAME in --out."),
        resume_from: Optional[Path] = typer.Option(None, "--resume-from", metavar="RUN_DIR", help="Continue this run folder."),
        nproc: int = typer.Option(1, "--nproc", help="Processes under torchrun (DDP; NCCL on CUDA, gloo on CPU)."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
        list_: bool = typer.Option(False, "--list", help="List the reproductions instead of running one."),
        as_json: bool = typer.Option(False, "--json", help="With --list: JSON; after a run: the run record as JSON."),
    ) -> None:
        """Run a paper reproduction and record the run in the catalog.

        Writes `OUT/NAME/<UTC time>/` (run.json, metrics.jsonl, curves.png, checkpoint) and,
        when the catalog exists, a Run row. Example: `digest run drophead --preset smoke`.
        """
        if list_:
            list_reproductions(as_json)
            return
        if not name:
            raise UsageError("name a reproduction to run, or use --list to see them")
        from reproductions.runner import RunRequest, error_line, parse_sets, run as run_reproduction, summary_lines

        request = _runner_call(lambda: RunRequest(
            name=name, preset=preset, device=device, seed=seed, seeds=seeds, overrides=parse_sets(sets),
            data_dir=data_dir, out=out, resume=resume, resume_from=resume_from, nproc=nproc,
            progress=not no_progress))
        if preset is not None and preset not in ("smoke", "cpu", "gpu"):
            raise UsageError(f"unknown preset {preset!r}; choose smoke, cpu or gpu")
        result = _runner_call(run_reproduction, request)
        st = state(ctx)
        try:
            run_id = record_run(st, result.run_dir)
        except DigestError as exc:
            run_id = None
            print(f"digest: warning: run not recorded in the catalog: {exc}", file=sys.stderr)
        if as_json:
            print_json({**result.record, "run_dir": str(result.run_dir), "catalog_run_id": run_id})
        else:
            stdout.print("\n".join(summary_lines(result)), markup=False, highlight=False)
            stdout.print(f"recorded as run {run_id} in {st.db_name}" if run_id is not None else
                         f"no catalog at {st.db_name}: not recorded (later: digest import-runs {out})",
                         markup=False, highlight=False)
        line = error_line(result)
        if line:
            fail(line, result.exit_code)

    @app.command("runs")
    def runs(
        ctx: typer.Context,
        name: Optional[str] = typer.Argument(None, help="Only runs of this reproduction."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array of runs."),
    ) -> None:
        """List recorded runs, newest first, with their headline metrics."""
        from catalog.db import session
        from catalog.runs import list_runs

        with session(state(ctx).engine(must_exist=True)) as s:
            rows = list_runs(s, name)
        if as_json:
            print_json([r.as_dict() for r in rows])
            return
        if not rows:
            stdout.print("no runs recorded" + (f" for {name}" if name else "") + " (digest run NAME, digest import-runs DIR)")
            return
        table = Table()
        for col in ("id", "reproduction", "preset", "status", "device", "started", "time", "metrics"):
            table.add_column(col, overflow="fold")
        for r in rows:
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in r.headline.items())
            table.add_row(str(r.id), r.name, r.preset, r.status, r.device,
                          r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "",
                          f"{r.duration_s:.0f}s" if r.duration_s is not None else "", metrics)
        stdout.print(table)

    @app.command("import-runs")
    def import_runs_cmd(
        ctx: typer.Context,
        paths: List[Path] = typer.Argument(..., help="Run folders, or folders holding them (e.g. results/, runs/)."),
        as_json: bool = typer.Option(False, "--json", help="Print the imported runs as JSON."),
    ) -> None:
        """Record run folders written by the runner (`python -m reproductions run`) in the catalog."""
        from catalog.db import session
        from catalog.runs import import_runs

        with session(state(ctx).engine()) as s:
            imported = [(r.id, r.reproduction.slug, r.status, r.run_dir) for r in import_runs(s, *paths)]
        if as_json:
            print_json([{"id": i, "name": n, "status": st, "run_dir": d} for i, n, st, d in imported])
        else:
            stdout.print(f"imported {len(imported)} run(s)", markup=False)


def _gist(text: str, limit: int = 160) -> str:
    """The first sentence of a card's text, for a table cell (`--json` has it whole)."""
    flat = " ".join(text.split())
    first = flat.split(". ")[0].split("; ")[0]
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "…"
