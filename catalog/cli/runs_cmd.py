"""`digest run`, `digest runs`, `digest import-runs`: the reproduction runner with the catalog around it.

`digest run NAME` is `python -m reproductions run NAME` (same options, same run folder)
plus one step: when the catalog database exists, the finished — or failed, or
interrupted — run is recorded as a Run row of its Reproduction.
"""

from __future__ import annotations

import inspect
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
    """Import `run_dir` into the catalog if one exists at ``--db``; the Run id, or None.

    A follower node of a multi-machine run has no record here (node 0 writes it).
    """
    if not st.catalog_exists() or not (run_dir / "run.json").is_file():
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


def _typer_parameter(opt) -> inspect.Parameter:
    """A typer parameter for one `reproductions.options.RunOption` (the table both CLIs share)."""
    help_text = opt.help
    if opt.type is bool:
        annotation, default = bool, typer.Option(False, opt.flag, help=help_text)
    elif opt.repeat:
        annotation, default = Optional[List[opt.type]], typer.Option(None, opt.flag, metavar=opt.metavar,
                                                                      help=help_text)
    else:
        annotation = opt.type if opt.default is not None else Optional[opt.type]
        default = typer.Option(opt.default, opt.flag, metavar=opt.metavar, help=help_text)
    return inspect.Parameter(opt.dest, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _with_run_options(fn):
    """Give `fn(ctx, name, list_, as_json, **options)` a signature typer can read: the shared run options."""
    from reproductions.options import CAMPAIGN_OPTIONS, RUN_OPTIONS

    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Optional[str],
                          default=typer.Argument(None, help="Reproduction to run (see `digest run --list`).")),
        *(_typer_parameter(opt) for opt in RUN_OPTIONS),
        inspect.Parameter("all_", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                          default=typer.Option(False, "--all", help="run every reproduction's preset back to back "
                                               "(the campaign of `python -m reproductions campaign`) and record "
                                               "each run")),
        *(_typer_parameter(opt) for opt in CAMPAIGN_OPTIONS),
        inspect.Parameter("list_", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                          default=typer.Option(False, "--list", help="List the reproductions instead of running one.")),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                          default=typer.Option(False, "--json",
                                               help="With --list: JSON; after a run: the run record as JSON.")),
    ]
    fn.__signature__ = inspect.Signature(params)
    fn.__annotations__ = {p.name: p.annotation for p in params}
    return fn


def run_all(st: State, name: str | None, options: dict, as_json: bool) -> None:
    """`digest run --all`: the runner's campaign, then every run recorded in the catalog."""
    from reproductions.campaign import run_campaign, table_lines
    from reproductions.options import CAMPAIGN_SHARED, RUN_OPTIONS, campaign_from_options

    if name:
        raise UsageError(f"--all runs every reproduction; drop {name!r} (or use --all --only {name})")
    per_run = [opt.flag for opt in RUN_OPTIONS
               if opt.dest not in CAMPAIGN_SHARED and options[opt.dest] not in (None, [], opt.default)]
    if per_run:
        raise UsageError(f"{', '.join(per_run)} apply to one run, not to --all")
    result = _runner_call(lambda: run_campaign(**campaign_from_options(options)))
    for row in result.rows:
        if row["run_dir"]:
            try:
                row["catalog_run_id"] = record_run(st, Path(row["run_dir"]))
            except DigestError as exc:
                print(f"digest: warning: {row['run_dir']} not recorded in the catalog: {exc}", file=sys.stderr)
    if as_json:
        print_json(result.rows)
    else:
        stdout.print("\n".join(table_lines(result.rows)), markup=False, highlight=False, soft_wrap=True)
    if result.status == "interrupted":
        fail(f"interrupted; run the same command again to resume ({result.state_path})", 130)
    if result.status == "failed":
        failed = ", ".join(r["reproduction"] for r in result.rows if r["status"] == "failed")
        fail(f"failed: {failed} (see their run.json); run again to retry them", 1)


def register(app: typer.Typer) -> None:
    @app.command()
    @_with_run_options
    def run(ctx: typer.Context, name: Optional[str], *, all_: bool, list_: bool, as_json: bool, **options) -> None:
        """Run a paper reproduction and record the run in the catalog.

        Writes `OUT/NAME/<UTC time>/` (run.json, metrics.jsonl, curves.png, checkpoint) and,
        when the catalog exists, a Run row. Example: `digest run drophead --preset smoke`.
        The options are those of `python -m reproductions run` (one table: reproductions/options.py).
        """
        if list_:
            list_reproductions(as_json)
            return
        if all_:
            run_all(state(ctx), name, options, as_json)
            return
        from reproductions.options import CAMPAIGN_OPTIONS

        given = [opt.flag for opt in CAMPAIGN_OPTIONS if options[opt.dest] not in (None, [], opt.default)]
        if given:
            raise UsageError(f"{', '.join(given)} go with --all (a campaign of every reproduction)")
        if not name:
            raise UsageError("name a reproduction to run, or use --all or --list")
        from reproductions.options import request_from_options
        from reproductions.runner import run as run_reproduction
        from reproductions.terminal import error_line, summary_lines
        from reproductions.torchrun import prepare_launch

        request = _runner_call(request_from_options, name, options)
        if options["print_launch"]:
            stdout.print(_runner_call(prepare_launch, request), markup=False, highlight=False, soft_wrap=True)
            return
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
            if not result.record.get("node_rank"):  # a follower node has nothing to record
                stdout.print(f"recorded as run {run_id} in {st.db_name}" if run_id is not None else
                             f"no catalog at {st.db_name}: not recorded (later: digest import-runs {request.out})",
                             markup=False, highlight=False)
        line = error_line(result)
        if line:
            fail(line, result.exit_code)

    @app.command("runs")
    def runs(
        ctx: typer.Context,
        args: Optional[List[str]] = typer.Argument(
            None, metavar="[NAME | analyse RUN_DIR...]",
            help="Only runs of this reproduction; or `analyse RUN_DIR...`: recompute those runs' claims and "
                 "verdicts from their stored per-seed values (no training) and re-record them."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array of runs (or of the claims)."),
    ) -> None:
        """List recorded runs, newest first, with their headline metrics (`digest runs analyse DIR...`: re-judge)."""
        from catalog.db import session
        from catalog.runs import list_runs

        args = list(args or [])
        if args and args[0] == "analyse":
            analyse_runs(state(ctx), [Path(a) for a in args[1:]], as_json)
            return
        if len(args) > 1:
            raise UsageError(f"expected one reproduction name, got {' '.join(args)} (or: digest runs analyse RUN_DIR...)")
        name = args[0] if args else None

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


def analyse_runs(st: State, run_dirs: list[Path], as_json: bool) -> None:
    """Recompute each run folder's claims in place, print one sentence per claim, re-record in the catalog."""
    from reproductions.claims import analyse_dir
    from reproductions.cli import analyse_lines

    if not run_dirs:
        raise UsageError("digest runs analyse needs at least one RUN_DIR")
    out: list = []
    for run_dir in run_dirs:
        rec = _runner_call(analyse_dir, run_dir)
        if (rec.get("analysis") or {}).get("status") != "computed":
            raise DigestError(f"{run_dir}: {rec['analysis']['status']} (install scipy)")
        record_run(st, run_dir)
        out.append({"run_dir": str(run_dir), "claims": rec["claims"]} if as_json else "\n".join(analyse_lines(run_dir, rec)))
    if as_json:
        print_json(out)
    else:
        stdout.print("\n".join(out), markup=False, highlight=False)


def _gist(text: str, limit: int = 160) -> str:
    """The first sentence of a card's text, for a table cell (`--json` has it whole)."""
    flat = " ".join(text.split())
    first = flat.split(". ")[0].split("; ")[0]
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "…"
