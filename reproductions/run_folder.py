"""The run folder: its record started (fresh, or the stored one when resuming) and finished.

A fresh run gets ``OUT/<name>/<UTC timestamp>/`` and a ``run.json`` with status
``running``; resuming reads the newest unfinished record (or the one named by
``--resume-from``) and refuses finished runs, other reproductions and changed configs.
The final record holds metrics, the paper's claims beside ours, plots and artefacts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reproductions import claims, devices, plots, record
from reproductions.api import Card
from reproductions.data import resolve_data_dir
from reproductions.errors import RunnerUsageError
from reproductions.execution import Outcome
from reproductions.registry import Entry
from reproductions.run_request import RUNNER_KEYS, Echo, RunRequest, RunResult, plan_seeds, resolve_config

WORKER_RESULT = "worker.json"
PLOT_FILE = "curves.png"


def new_run_dir(out: Path, name: str, stamp: str) -> Path:
    base = out / name / stamp
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
    run_dir.mkdir(parents=True)
    return run_dir


def _find_resumable(request: RunRequest) -> Path:
    if request.resume_from is not None:
        run_dir = Path(request.resume_from)
        if not (run_dir / record.RUN_FILE).is_file():
            raise RunnerUsageError(f"--resume-from {run_dir}: no {record.RUN_FILE} there")
        return run_dir
    run_dir = record.latest_unfinished(Path(request.out), request.name)
    if run_dir is None:
        raise RunnerUsageError(f"nothing to resume: no unfinished run of {request.name} under {request.out}")
    return run_dir


def start_record(entry: Entry, request: RunRequest, echo: Echo) -> tuple[Path, dict[str, Any], bool]:
    """(run folder, record, resuming) — a fresh record, or the stored one when resuming."""
    card = entry.card
    if request.resume or request.resume_from is not None:
        if request.overrides or request.seeds is not None:
            raise RunnerUsageError("--resume continues a run with its stored config and seeds; drop --set/--seeds")
        run_dir = _find_resumable(request)
        rec = record.read_json(run_dir / record.RUN_FILE)
        if rec.get("status") == record.FINISHED:
            raise RunnerUsageError(f"{run_dir} already completed; start a new run instead")
        if rec.get("name") != card.name:
            raise RunnerUsageError(f"{run_dir} is a run of {rec.get('name')!r}, not {card.name!r}")
        if request.preset and request.preset != rec.get("preset"):
            raise RunnerUsageError(f"{run_dir} ran preset {rec.get('preset')!r}; cannot resume it as {request.preset!r}")
        rec.setdefault("resumed_at", []).append(record.iso(record.utc_now()))
        if request.data_dir is not None:
            rec["data"]["dir"] = str(resolve_data_dir(request.data_dir))
        echo(f"resuming {run_dir}")
        return run_dir, rec, True
    preset = request.preset or devices.default_preset(card.presets)
    config, runner_opts = resolve_config(card, preset, request.overrides)
    seeds = plan_seeds(config, request.seed, request.seeds)
    started = record.utc_now()
    run_dir = Path(request.out) / card.name / record.folder_stamp(started)  # created once the device is known
    rec = {
        "name": card.name, "paper_id": card.paper_id, "title": card.title, "authors": card.authors,
        "preset": preset, "config": config, "runner": {**runner_opts, "nproc": request.nproc, "nnodes": request.nnodes},
        "seed": request.seed, "seeds": seeds,
        "started_at": record.iso(started), "finished_at": None, "duration_s": None, "status": "running",
        "error": None, "metrics": {}, "metrics_std": {}, "metrics_by_seed": {}, "notes": {},
        "claims": [], "exploratory": _exploratory(request),
        "data": {"dir": str(resolve_data_dir(request.data_dir)), "datasets": list(card.datasets)},
        "measures": card.measures, "card_notes": card.notes,
        "versions": record.versions(), "git": record.git_commit(),
        "command": sys.argv[:],
    }
    return run_dir, rec, False


def _exploratory(request: RunRequest) -> str | None:
    """The stopping rule: only the preset's own seeds and config feed a verdict (see `claims`)."""
    changed = [f"--set {k}={json.dumps(v)}" for k, v in request.overrides.items() if k not in RUNNER_KEYS]
    if request.seed != 0:
        changed.insert(0, f"--seed {request.seed}")
    if request.seeds is not None:
        changed.insert(0, f"--seeds {request.seeds}")
    return "not the preset's pre-registered run (" + ", ".join(changed) + ")" if changed else None


def _examples_per_rank(rec: dict[str, Any], outcome: Outcome) -> list[int] | None:
    """This run's per-rank example counts, added to those stored before a resume (same world size)."""
    now = outcome.examples_per_rank
    before = rec.get("examples_per_rank")
    if now is not None and isinstance(before, list) and len(before) == len(now):
        return [a + b for a, b in zip(before, now)]
    return now


def finish_record(card: Card, run_dir: Path, rec: dict[str, Any], outcome: Outcome, duration: float,
                  echo: Echo) -> RunResult:
    rec.update(status=outcome.status, error=outcome.error, error_kind=outcome.error_kind,
               metrics=outcome.metrics, metrics_std=outcome.metrics_std,
               metrics_by_seed=outcome.metrics_by_seed, notes=outcome.notes,
               world_size=outcome.world_size, backend=outcome.backend,
               examples_per_rank=_examples_per_rank(rec, outcome),
               finished_at=record.iso(record.utc_now()), duration_s=round(duration, 3))
    rec["data"]["description"] = outcome.notes.get("data") or (
        f"{', '.join(card.datasets)} from {rec['data']['dir']}" if card.datasets else "no dataset")
    if outcome.status == "completed":
        claims.analyse_into(rec, card.claims)  # "claims not computed — run analyse" without scipy
        try:
            plots.forest_plot(claims.forest_rows(rec, {**card.labels, **{c.key: c.label for c in card.claims}}),
                              run_dir / claims.FOREST_FILE, title=f"{card.name}: differences, adjusted intervals")
        except Exception as exc:  # a plot must never cost the record
            rec.setdefault("notes", {})["plot_error"] = f"{type(exc).__name__}: {exc}"
    if outcome.status == "interrupted":
        rec["checkpoint_saved"] = outcome.checkpoint_saved or (run_dir / "checkpoint.pt").exists()
    try:
        plots.plot_metrics(run_dir / "metrics.jsonl", run_dir / PLOT_FILE, title=f"{card.name} ({rec['preset']})")
    except Exception as exc:  # a plot must never cost the record
        rec.setdefault("notes", {})["plot_error"] = f"{type(exc).__name__}: {exc}"
    rec["artefacts"] = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                              if p.is_file() and p.name not in (record.RUN_FILE, WORKER_RESULT)
                              and not p.name.endswith(".tmp"))
    record.write_json(run_dir / record.RUN_FILE, rec)
    return RunResult(run_dir, outcome.status, rec)
