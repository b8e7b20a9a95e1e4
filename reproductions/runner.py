"""The runner: one reproduction, one preset, one device -> a run folder with its record.

``run(RunRequest(name="drophead", preset="smoke"))`` does, in order:

1. finds the reproduction (`reproductions.registry`) and resolves its config: the
   preset's dict, then ``--set key=value`` overrides (keys must exist in the preset;
   the runner's own keys `RUNNER_KEYS` are always accepted);
2. picks the device (cuda > mps > cpu unless told) and says why; on CUDA turns on TF32
   and bf16 autocast, on the CPU deterministic kernels;
3. creates ``OUT/<name>/<UTC timestamp>/`` and writes ``run.json`` (status ``running``);
4. seeds python/numpy/torch and calls the experiment's ``run(config, ctx)`` — once per
   seed, or once with ``config["seeds"]`` when the experiment handles seeds itself
   (see `plan_seeds`); with ``nproc > 1`` or ``nnodes > 1`` it is torchrun that starts the
   copies (`worker_command`), and rank 0 reports back (world size, backend, examples per rank);
5. writes the final record: metrics (mean and std over seeds), the paper's claims beside
   ours, versions, device, timings, status; draws ``curves.png`` from metrics.jsonl.

Failures do not escape as tracebacks: an exception gives ``status: failed`` with the
message, Ctrl-C gives ``status: interrupted`` after the experiment's autosave
checkpoint; `RunResult.exit_code` is what a CLI should exit with (0, 1 or 130).

Where each step lives: the request and config checks in `reproductions.run_request`, the
run folder and its record in `reproductions.run_folder`, the experiment's calls in
`reproductions.execution`, torchrun and its workers in `reproductions.torchrun`, the
progress bar and closing summary in `reproductions.terminal`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from reproductions import devices, record
from reproductions.execution import Outcome, execute, sigterm_as_interrupt
from reproductions.registry import Entry, get
from reproductions.run_folder import finish_record, new_run_dir, start_record
from reproductions.run_request import Echo, RunRequest, RunResult, check_topology
from reproductions.terminal import rich_progress
from reproductions.torchrun import execute_distributed, run_follower


def run(request: RunRequest, *, entries: dict[str, Entry] | None = None, echo: Echo | None = None) -> RunResult:
    """Run one reproduction and write its folder; see the module docstring for the steps.

    With ``node_rank > 0`` this machine only lends its processes: node 0 writes the record.
    """
    echo = echo or (lambda line: print(line, file=sys.stderr))
    entry = get(request.name, entries)
    check_topology(request)
    run_dir, rec, resuming = start_record(entry, request, echo)  # usage errors surface before torch loads
    if request.node_rank > 0:
        return run_follower(request, run_dir, rec, resuming, echo)
    choice = devices.choose_device(request.device)
    if not resuming:
        run_dir = new_run_dir(Path(request.out), entry.card.name, run_dir.name)
    echo(f"{entry.card.name}: preset {rec['preset']}, seeds {rec['seeds']}, device {choice.device} ({choice.reason})")
    echo(f"run folder: {run_dir}")
    rec.update(status="running", device=devices.describe(choice))
    rec["runner"]["device_setup"] = devices.configure(choice)
    record.write_json(run_dir / record.RUN_FILE, rec)
    t0 = time.monotonic()
    previous = float(rec.get("duration_s") or 0.0)

    def checkpoint_record(partial: Outcome) -> None:
        rec.update(metrics=partial.metrics, metrics_std=partial.metrics_std,
                   metrics_by_seed=partial.metrics_by_seed, notes=partial.notes)
        record.write_json(run_dir / record.RUN_FILE, rec)

    factory = rich_progress if request.progress else None
    with sigterm_as_interrupt():
        if request.distributed:
            outcome = execute_distributed(request, run_dir, resuming, echo)
        else:
            outcome = execute(entry, rec, run_dir, choice, resume=resuming, progress_factory=factory,
                              on_seed_done=checkpoint_record)
    return finish_record(entry.card, run_dir, rec, outcome, previous + time.monotonic() - t0, echo)


__all__ = ["RunRequest", "RunResult", "run"]
