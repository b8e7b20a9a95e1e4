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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from reproductions import claims, devices, distributed, plots, record, report
from reproductions.api import Card, RunContext
from reproductions.data import DatasetMissing, resolve_data_dir
from reproductions.errors import RunnerError, RunnerUsageError
from reproductions.registry import Entry, get

# Keys `--set` accepts for every reproduction; they configure the runner, not the model.
RUNNER_KEYS: dict[str, str] = {
    "compile": "torch.compile the model in ctx.wrap_model() (default false)",
    "amp": "bf16 autocast on CUDA via ctx.autocast() (default true on CUDA; no effect elsewhere)",
}
WORKER_RESULT = "worker.json"
PLOT_FILE = "curves.png"

Echo = Callable[[str], None]


@dataclass
class RunRequest:
    """What the user asked for (the CLI options)."""

    name: str
    preset: str | None = None  # None: gpu with CUDA, else cpu
    device: str = "auto"
    seed: int = 0
    seeds: int | None = None  # run seeds seed .. seed+seeds-1
    overrides: dict[str, Any] = field(default_factory=dict)
    data_dir: Path | None = None
    out: Path = Path("runs")
    resume: bool = False  # continue the newest unfinished run of `name` under `out`
    resume_from: Path | None = None  # ... or this run folder
    nproc: int = 1  # processes per machine
    nnodes: int = 1  # machines; each runs the same command with its own node_rank
    node_rank: int = 0  # node 0 holds rank 0, which writes the record
    rdzv_endpoint: str | None = None  # "HOST:PORT" of node 0 (torchrun static rendezvous)
    progress: bool = True

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | failed | interrupted
    record: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.get("metrics", {})

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def exit_code(self) -> int:
        return {"completed": 0, "interrupted": 130}.get(self.status, 1)


# ---------------------------------------------------------------- config

def parse_value(text: str) -> Any:
    """JSON when it parses (``true``, ``3``, ``1e-3``, ``[1,2]``, ``null``), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(items: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """``["lr=1e-3", "arms=[\\"a\\"]"]`` -> ``{"lr": 0.001, "arms": ["a"]}``."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RunnerUsageError(f"--set expects key=value, got {item!r}")
        out[key] = parse_value(value.strip())
    return out


def _compatible(default: Any, value: Any) -> bool:
    """Whether `value` may replace the preset's `default` (numbers for numbers, bools for bools)."""
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and (
            isinstance(default, float) or isinstance(value, int) or float(value).is_integer())
    if isinstance(default, (list, tuple)):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, str)


def resolve_config(card: Card, preset: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(experiment config, runner options) for `preset` with `overrides` applied and checked."""
    if preset not in card.presets:
        raise RunnerUsageError(f"{card.name} has no preset {preset!r} (has: {', '.join(card.presets)})")
    config = dict(card.presets[preset])
    runner_opts: dict[str, Any] = {"compile": False, "amp": True}
    # A key another preset of the card sets (nvae's "ablations" in smoke) is a valid override here too.
    known = {k: v for other in card.presets.values() for k, v in other.items()} | config
    unknown = [k for k in overrides if k not in known and k not in RUNNER_KEYS]
    if unknown:
        raise RunnerUsageError(
            f"unknown --set key(s) for {card.name}: {', '.join(unknown)}; "
            f"config keys: {', '.join(known) or 'none'}; runner keys: {', '.join(RUNNER_KEYS)}")
    for key, value in overrides.items():
        if key in RUNNER_KEYS:
            if not isinstance(value, bool):
                raise RunnerUsageError(f"--set {key}= expects true or false, got {value!r}")
            runner_opts[key] = value
        if key in known:
            if not _compatible(known[key], value):
                raise RunnerUsageError(f"--set {key}={json.dumps(value)}: expected a value like "
                                       f"{json.dumps(known[key])} ({type(known[key]).__name__})")
            config[key] = value
    return config, runner_opts


def plan_seeds(config: dict[str, Any], seed: int, seeds: int | None) -> list[int]:
    """The seeds to run; writes them into ``config["seeds"]`` when the experiment takes that key.

    An experiment whose preset has a ``seeds`` key (an int count, or a list) runs all of
    its seeds itself in one call and receives ``config["seeds"]`` as a list of ints
    (``seed, seed+1, ...``). Any other experiment is called once per seed by the
    runner, which averages the metrics (mean and std in run.json).
    """
    if seeds is not None and seeds < 1:
        raise RunnerUsageError(f"--seeds must be at least 1, got {seeds}")
    if "seeds" in config:
        given = config["seeds"]
        if seeds is not None:
            plan = list(range(seed, seed + seeds))
        elif isinstance(given, int) and not isinstance(given, bool):
            plan = list(range(seed, seed + max(1, given)))
        elif isinstance(given, list) and all(isinstance(s, int) for s in given) and given:
            plan = list(given)
        else:
            raise RunnerUsageError(f"config key seeds must be a count or a list of ints, got {given!r}")
        config["seeds"] = plan
        return plan
    return list(range(seed, seed + (seeds or 1)))


def experiment_takes_seeds(config: dict[str, Any]) -> bool:
    return "seeds" in config


# ---------------------------------------------------------------- progress display

@contextlib.contextmanager
def rich_progress(total: int, desc: str = "") -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr with count, elapsed time and ETA."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(desc or "run", total=total)
        yield lambda n=1: bar.advance(task, n)


class RunnerContext(RunContext):
    """`RunContext` as the runner fills it: extra fields added to every metrics row (the seed)."""

    def __init__(self, out_dir: Path, *, metrics_path: Path, tags: dict[str, Any] | None = None, **kwargs):
        super().__init__(out_dir, **kwargs)
        self._metrics_path = metrics_path
        self._tags = tags or {}

    def log(self, step: int, **metrics: Any) -> None:
        super().log(step, **self._tags, **metrics)


# ---------------------------------------------------------------- executing the experiment

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


# ---------------------------------------------------------------- the run folder

def _new_run_dir(out: Path, name: str, stamp: str) -> Path:
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


def _start_record(entry: Entry, request: RunRequest, echo: Echo) -> tuple[Path, dict[str, Any], bool]:
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


def check_topology(request: RunRequest) -> None:
    """Refuse impossible process layouts before anything is written."""
    if request.nproc < 1:
        raise RunnerUsageError(f"--nproc must be at least 1, got {request.nproc}")
    if request.nnodes < 1:
        raise RunnerUsageError(f"--nnodes must be at least 1, got {request.nnodes}")
    if not 0 <= request.node_rank < request.nnodes:
        raise RunnerUsageError(f"--node-rank must be in 0..{request.nnodes - 1}, got {request.node_rank}")
    if request.nnodes > 1:
        host, sep, port = (request.rdzv_endpoint or "").rpartition(":")
        if not (sep and host and port.isdigit()):
            raise RunnerUsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (node 0's address and a free port), "
                                   f"got {request.rdzv_endpoint!r}")


def run(request: RunRequest, *, entries: dict[str, Entry] | None = None, echo: Echo | None = None) -> RunResult:
    """Run one reproduction and write its folder; see the module docstring for the steps.

    With ``node_rank > 0`` this machine only lends its processes: node 0 writes the record.
    """
    echo = echo or (lambda line: print(line, file=sys.stderr))
    entry = get(request.name, entries)
    check_topology(request)
    run_dir, rec, resuming = _start_record(entry, request, echo)  # usage errors surface before torch loads
    if request.node_rank > 0:
        return _run_follower(request, run_dir, rec, resuming, echo)
    choice = devices.choose_device(request.device)
    if not resuming:
        run_dir = _new_run_dir(Path(request.out), entry.card.name, run_dir.name)
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
    with _sigterm_as_interrupt():
        if request.distributed:
            outcome = _execute_distributed(request, run_dir, resuming, echo)
        else:
            outcome = execute(entry, rec, run_dir, choice, resume=resuming, progress_factory=factory,
                              on_seed_done=checkpoint_record)
    return _finish(entry.card, run_dir, rec, outcome, previous + time.monotonic() - t0, echo)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
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


def _examples_per_rank(rec: dict[str, Any], outcome: Outcome) -> list[int] | None:
    """This run's per-rank example counts, added to those stored before a resume (same world size)."""
    now = outcome.examples_per_rank
    before = rec.get("examples_per_rank")
    if now is not None and isinstance(before, list) and len(before) == len(now):
        return [a + b for a, b in zip(before, now)]
    return now


def _finish(card: Card, run_dir: Path, rec: dict[str, Any], outcome: Outcome, duration: float,
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


# ---------------------------------------------------------------- several processes (torchrun)

def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def torchrun_args(request: RunRequest) -> list[str]:
    """torchrun's own options: one machine standalone, or a static rendezvous at node 0's endpoint.

    The static backend keeps ``--node-rank`` meaningful: node 0 always holds global rank 0,
    so the record is written where the user started node 0.
    """
    if request.nnodes == 1:
        return ["--standalone", f"--nproc-per-node={request.nproc}"]
    return [f"--nnodes={request.nnodes}", f"--node-rank={request.node_rank}", "--rdzv-backend=static",
            f"--rdzv-endpoint={request.rdzv_endpoint}", f"--nproc-per-node={request.nproc}"]


def worker_command(request: RunRequest, run_dir: Path, *, resuming: bool, finish: bool = False) -> list[str]:
    """The full torchrun command line whose workers run the experiment in `run_dir`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *torchrun_args(request),
           "-m", "reproductions", "_worker", str(run_dir), "--device", request.device]
    if resuming:
        cmd.append("--resume")
    if not request.progress:
        cmd.append("--no-progress")
    if finish:
        cmd.append("--finish")
    return cmd


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_package_root()), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _launch(cmd: list[str]) -> tuple[int, bool]:
    """Run torchrun to its end; (exit code, whether the user interrupted it)."""
    proc = subprocess.Popen(cmd, env=_worker_env())
    try:
        return proc.wait(), False
    except KeyboardInterrupt:  # Ctrl-C reached the workers too; SIGTERM would not: pass it on
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=60), True  # time for rank 0 to checkpoint and report
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            return proc.wait(), True


def _execute_distributed(request: RunRequest, run_dir: Path, resuming: bool, echo: Echo) -> Outcome:
    """Start this machine's workers under torchrun; rank 0 reports its outcome in worker.json."""
    result_path = run_dir / WORKER_RESULT
    result_path.unlink(missing_ok=True)
    cmd = worker_command(request, run_dir, resuming=resuming)
    echo(f"launching: torchrun {' '.join(torchrun_args(request))}")
    code, interrupted = _launch(cmd)
    data = record.read_json(result_path) if result_path.is_file() else None
    result_path.unlink(missing_ok=True)
    if data is not None and (data["status"] != "interrupted" or interrupted or code == 0):
        return Outcome(**data)
    if interrupted:
        return Outcome(status="interrupted")
    # Rank 0 was stopped (or died) because another worker failed: that is a failure, not an interrupt.
    return Outcome(status="failed", error=f"a worker failed: torchrun exited with code {code} (see its log above)",
                   error_kind="exception", notes=(data or {}).get("notes") or {})


def _run_follower(request: RunRequest, run_dir: Path, rec: dict[str, Any], resuming: bool, echo: Echo) -> RunResult:
    """Node K > 0: lend this machine's processes to the run node 0 records; write nothing that lasts.

    Its workers need the run's config: a fresh run gets a private temporary copy of the
    record; a resumed one reads the folder named by --resume/--resume-from (a shared
    filesystem, where the checkpoint is).
    """
    private = None
    if not resuming:
        private = Path(tempfile.mkdtemp(prefix=f"{rec['name']}-node{request.node_rank}-"))
        run_dir = private
        record.write_json(run_dir / record.RUN_FILE, rec)
    echo(f"node {request.node_rank} of {request.nnodes}: joining {request.rdzv_endpoint}; node 0 writes the record")
    t0 = time.monotonic()
    try:
        with _sigterm_as_interrupt():
            code, interrupted = _launch(worker_command(request, run_dir, resuming=resuming))
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    status = "interrupted" if interrupted else ("completed" if code == 0 else "failed")
    rec.update(status=status, node_rank=request.node_rank, duration_s=round(time.monotonic() - t0, 3),
               error=None if code == 0 or interrupted else f"torchrun exited with code {code} on node "
                                                            f"{request.node_rank} (see its log above)")
    return RunResult(run_dir, status, rec)


def prepare_launch(request: RunRequest, *, entries: dict[str, Entry] | None = None,
                   echo: Echo | None = None) -> str:
    """Write the run folder (status ``prepared``) and return the torchrun line that runs it.

    For a cluster scheduler: start the printed line on every node (changing ``--node-rank``),
    with the run folder on a filesystem they share; rank 0 writes the final record itself
    (``_worker --finish``), as the runner would.
    """
    echo = echo or (lambda line: print(line, file=sys.stderr))
    entry = get(request.name, entries)
    check_topology(request)
    run_dir, rec, resuming = _start_record(entry, request, echo)
    if not resuming:
        run_dir = _new_run_dir(Path(request.out), entry.card.name, run_dir.name)
        rec["status"] = "prepared"
        record.write_json(run_dir / record.RUN_FILE, rec)
    cmd = worker_command(request, run_dir.resolve(), resuming=resuming, finish=True)
    cmd[:3] = ["torchrun"]  # what a scheduler's job script calls; same as python -m torch.distributed.run
    # the checkout first on the path, keeping what the job's environment already has there
    path = f"PYTHONPATH={shlex.quote(str(_package_root()))}" + "${PYTHONPATH:+:$PYTHONPATH}"
    return f"{path} " + " ".join(shlex.quote(c) for c in cmd)


def worker_main(run_dir: Path, device: str, resume: bool, progress: bool, finish: bool = False) -> int:
    """Body of one torchrun worker: join the group, run the experiment, rank 0 reports.

    Rank 0 reports to the launching runner in worker.json, or with `finish` (a line from
    `prepare_launch`, no runner around) writes the final run.json itself.
    """
    t0 = time.monotonic()
    rec = record.read_json(run_dir / record.RUN_FILE)
    entry = get(rec["name"])
    rank, world_size, local_rank = distributed.env_rank()
    choice = devices.choose_device(device, local_rank=local_rank)
    distributed.init_process_group(choice.type)
    backend = distributed.backend_name()
    outcome = None
    try:
        with _sigterm_as_interrupt():  # torchrun stops workers with SIGTERM: checkpoint first
            outcome = execute(entry, rec, run_dir, choice, rank=rank, world_size=world_size, resume=resume,
                              progress_factory=rich_progress if progress else None)
            if outcome.status == "completed":  # every rank got here: safe to gather
                outcome.examples_per_rank = distributed.gather_ints(outcome.examples_seen, choice.device)
        outcome.backend = backend
        if rank == 0:
            outcome.notes.setdefault("distributed", f"{world_size} processes, backend {backend}")
            if finish:
                rec.update(device=devices.describe(choice))
                rec["runner"]["device_setup"] = devices.configure(choice)
                previous = float(rec.get("duration_s") or 0.0)
                _finish(entry.card, run_dir, rec, outcome, previous + time.monotonic() - t0, lambda line: None)
            else:
                record.write_json(run_dir / WORKER_RESULT, outcome.as_dict())
    finally:
        # After a completed run every rank is alive: wait for rank 0's report before tearing down.
        # After a failure a barrier could wait forever for a rank that is gone.
        distributed.destroy_process_group(wait_for_all=outcome is not None and outcome.status == "completed")
    return {"completed": 0, "interrupted": 130}.get(outcome.status, 1)


# ---------------------------------------------------------------- text for the terminal

def summary_lines(result: RunResult) -> list[str]:
    """What a CLI prints after a run: status, headline metrics, the paper beside ours."""
    rec = result.record
    if rec.get("node_rank"):  # a follower node: the record and the metrics are on node 0
        return [f"{rec['name']} {rec['preset']}: node {rec['node_rank']} {result.status} in "
                f"{rec.get('duration_s') or 0:.1f}s; node 0 wrote the run record"]
    lines = [f"{rec['name']} {rec['preset']}: {result.status} in {rec.get('duration_s') or 0:.1f}s -> {result.run_dir}"]
    rows = rec.get("claims") or []
    labels = _labels(rec.get("name"))
    if rec.get("exploratory"):
        lines.append(f"  exploratory: {rec['exploratory']}; its claims feed no verdict")
    for row in rows:
        p_holm = (((rec.get("analysis") or {}).get("per_claim") or {}).get(row["id"]) or {}).get("p_holm")
        lines.append("  " + report.claim_sentence(row, labels.get(row["id"]) or report.claim_label(row, labels),
                                                   p_holm))
    if not rows and (rec.get("analysis") or {}).get("status") not in (None, "computed"):
        lines.append(f"  {rec['analysis']['status']}")
    for key, value in record.headline(result.metrics, limit=6).items():
        std = record.lookup(rec.get("metrics_std") or {}, key)
        if std is None:  # an experiment that loops its seeds reports {"mean", "std"} itself
            std = record.lookup(result.metrics, key + ".std")
        lines.append(f"  {report.label_of(key, labels)} = {report.num(value)}"
                     + (f" ± {report.num(std, 2)}" if std is not None else ""))
    for key, value in (rec.get("notes") or {}).items():
        lines.append(f"  note {key}: {value}")
    if result.status == "interrupted":
        lines.append(f"  resume with: --resume-from {result.run_dir}")
    return lines


def _labels(name: str | None) -> dict[str, str]:
    """The card's reader names of claims, arms and metrics (empty when the card is gone)."""
    try:
        card = get(str(name)).card
    except Exception:
        return {}
    return {**card.labels, **{c.key: c.label for c in card.claims if c.label}}


def error_line(result: RunResult) -> str | None:
    if result.status == "failed":
        return result.error or "failed"
    if result.status == "interrupted":
        return f"interrupted; run folder {result.run_dir} (status: interrupted)"
    return None


__all__ = ["RUNNER_KEYS", "RunRequest", "RunResult", "RunnerError", "RunnerUsageError", "parse_sets",
           "prepare_launch", "resolve_config", "plan_seeds", "run", "summary_lines", "worker_main"]
