"""Executing the experiment in this process: seeding, one call per seed, the outcome.

`execute` never raises for the experiment's own errors: an exception becomes
``status: failed`` with its message, Ctrl-C (or SIGTERM, see `sigterm_as_interrupt`)
becomes ``status: interrupted`` after the experiment's autosave checkpoint.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from reproductions import devices, record
from reproductions.api import RunContext
from reproductions.data import DatasetMissing
from reproductions.registry import Entry
from reproductions.run_request import experiment_takes_seeds


class RunnerContext(RunContext):
    """`RunContext` as the runner fills it: extra fields added to every metrics row (the seed)."""

    def __init__(self, out_dir: Path, *, metrics_path: Path, tags: dict[str, Any] | None = None, **kwargs):
        super().__init__(out_dir, **kwargs)
        self._metrics_path = metrics_path
        self._tags = tags or {}

    def log(self, step: int, **metrics: Any) -> None:
        super().log(step, **self._tags, **metrics)


@dataclass
class Outcome:
    status: str = "completed"
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_std: dict[str, Any] = field(default_factory=dict)
    metrics_by_seed: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # "dataset" | "exception" | None
    checkpoint_saved: bool = False
    examples_seen: int = 0  # training examples this rank counted (ctx.count_examples), all seeds
    examples_per_rank: list[int] | None = None  # every rank's count, gathered after a completed run
    world_size: int = 1
    backend: str | None = None  # "gloo" | "nccl" when distributed

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def execute(entry: Entry, rec: dict[str, Any], run_dir: Path, choice: devices.DeviceChoice, *,
            rank: int = 0, world_size: int = 1, resume: bool = False,
            progress_factory: Callable[..., Any] | None = None,
            on_seed_done: Callable[[Outcome], None] | None = None) -> Outcome:
    """Run the experiment for every planned seed; never raises for the experiment's own errors."""
    config, seeds = rec["config"], rec["seeds"]
    setup = devices.configure(choice)
    out = Outcome(metrics_by_seed=dict(rec.get("metrics_by_seed") or {}), notes=dict(rec.get("notes") or {}),
                  world_size=world_size, examples_per_rank=[0] if world_size == 1 else None)
    # One call for experiments that loop over config["seeds"]; otherwise one call per seed.
    calls = [seeds[0]] if experiment_takes_seeds(config) else seeds
    try:
        run_fn = entry.load_run()
        for seed in calls:
            if str(seed) in out.metrics_by_seed:  # done before an interruption: keep, don't redo
                continue
            several = len(calls) > 1
            ctx = RunnerContext(
                run_dir / "seeds" / f"seed-{seed}" if several else run_dir,
                metrics_path=run_dir / "metrics.jsonl", tags={"seed": seed} if several else None,
                device=choice.device, data_dir=Path(rec["data"]["dir"]), seed=seed, preset=rec["preset"],
                rank=rank, world_size=world_size, amp=bool(rec["runner"]["amp"] and setup["amp"]),
                resume=resume, progress_factory=progress_factory, compile=bool(rec["runner"]["compile"]),
                pin_memory=setup["pin_memory"])
            devices.seed_everything(seed, deterministic=setup["deterministic"])
            try:
                metrics = run_fn(dict(config), ctx)
            except KeyboardInterrupt:
                out.status = "interrupted"
                out.checkpoint_saved = ctx.save_on_interrupt()
                out.notes.update(ctx.notes)
                return out
            finally:  # also on the interrupt's return: what was trained before Ctrl-C counts
                out.notes.update(ctx.notes)
                out.examples_seen += ctx.examples_seen
                if world_size == 1:
                    out.examples_per_rank = [out.examples_seen]
            if not isinstance(metrics, dict):
                raise TypeError(f"{entry.module}.experiment.run returned {type(metrics).__name__}, not a dict")
            out.metrics_by_seed[str(seed)] = metrics
            if on_seed_done is not None and several:
                out.metrics, out.metrics_std = record.aggregate_seeds(out.metrics_by_seed)
                on_seed_done(out)
    except KeyboardInterrupt:
        out.status = "interrupted"
    except DatasetMissing as exc:
        out.status, out.error, out.error_kind = "failed", str(exc), "dataset"
    except Exception as exc:  # the experiment's bug or bad config: recorded, reported in one line
        out.status, out.error, out.error_kind = "failed", f"{type(exc).__name__}: {exc}", "exception"
    if experiment_takes_seeds(config):  # its own per-seed numbers are inside its metrics
        out.metrics, out.metrics_by_seed = out.metrics_by_seed.get(str(calls[0]), {}), {}
    elif out.status == "completed" or out.metrics_by_seed:
        out.metrics, out.metrics_std = record.aggregate_seeds(out.metrics_by_seed)
    return out


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (a scheduler's preemption, `kill`) like Ctrl-C: checkpoint, status interrupted."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
