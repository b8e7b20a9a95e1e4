"""What a run is asked to do: the request (CLI options), its result, and their checks.

``--set key=value`` overrides are parsed here and checked against the preset (keys must
exist in one of the card's presets; the runner's own keys `RUNNER_KEYS` are always
accepted); the seeds to run are planned here; impossible process layouts are refused
here, before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from reproductions.api import Card
from reproductions.errors import RunnerUsageError

# Keys `--set` accepts for every reproduction; they configure the runner, not the model.
RUNNER_KEYS: dict[str, str] = {
    "compile": "torch.compile the model in ctx.wrap_model() (default false)",
    "amp": "bf16 autocast on CUDA via ctx.autocast() (default true on CUDA; no effect elsewhere)",
}

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
