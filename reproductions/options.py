"""The run options, declared once: both command lines (``python -m reproductions run`` and
``digest run``) build their flags from `RUN_OPTIONS` and their `RunRequest` with
`request_from_options`, so a new option, a default or a help text changes in one place.

This module stays free of argparse/typer specifics beyond `add_argparse_options`: the
catalog CLI turns the same table into typer parameters itself (the runner must not need typer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from reproductions.devices import DEVICE_CHOICES
from reproductions.errors import RunnerUsageError

@dataclass(frozen=True)
class RunOption:
    """One command-line option of a run: its flag, type, default and help text."""

    dest: str  # the key in the values mapping (argparse dest, typer parameter name)
    flag: str  # "--preset"
    type: type  # str, int, Path or bool (bool: a flag without a value)
    default: Any
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False  # may be given several times; the value is a list


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("preset", "--preset", str, None, "smoke | cpu | gpu, or a card's own preset such as nvae's "
              "gpu-long (default: gpu with CUDA, else cpu)"),
    RunOption("device", "--device", str, "auto", "auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)",
              choices=DEVICE_CHOICES),
    RunOption("seed", "--seed", int, 0, "first seed (default 0)"),
    RunOption("seeds", "--seeds", int, None, "run seeds seed..seed+N-1; metrics get mean and std"),
    RunOption("sets", "--set", str, None, "override a preset config key (JSON value: true, 3, 1e-3, [1,2]); "
              "also compile=true", metavar="KEY=VALUE", repeat=True),
    RunOption("data_dir", "--data-dir", Path, None,
              "datasets folder (default $DIGEST_DATA, ../shared/data, ~/.cache/paper-digest/data)"),
    RunOption("out", "--out", Path, None, "runs folder (default ./runs; ./results for a campaign)"),
    RunOption("resume", "--resume", bool, False, "continue the newest unfinished run of NAME in --out"),
    RunOption("resume_from", "--resume-from", Path, None, "continue this run folder", metavar="RUN_DIR"),
    RunOption("nproc", "--nproc", int, 1, "processes per machine under torchrun (DDP; NCCL on CUDA, gloo on CPU)"),
    RunOption("nnodes", "--nnodes", int, 1, "machines taking part (torchrun --nnodes); start the same "
              "command on each with its --node-rank"),
    RunOption("node_rank", "--node-rank", int, 0, "this machine's index, 0..nnodes-1 (node 0 writes the record)"),
    RunOption("rdzv_endpoint", "--rdzv-endpoint", str, None, "HOST:PORT of node 0, where the machines meet "
              "(needed with --nnodes > 1)", metavar="HOST:PORT"),
    RunOption("print_launch", "--print-launch", bool, False, "prepare the run folder and print the torchrun "
              "command line (for a cluster scheduler) instead of running"),
    RunOption("no_progress", "--no-progress", bool, False, "no progress bar"),
)

# Options of a campaign (every reproduction back to back) beyond the run options it shares.
CAMPAIGN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("only", "--only", str, None, "campaign: only these reproductions", metavar="NAME", repeat=True),
    RunOption("force", "--force", bool, False, "campaign: run even when the plan is over budget or a card "
              "has no planned time"),
    RunOption("budget_min", "--budget-min", float, 12.0, "campaign: wall-clock budget in minutes (default 12)"),
)
# The run options a campaign takes too (the others — seeds, --set, resume, processes — are per run).
CAMPAIGN_SHARED = ("preset", "device", "data_dir", "out", "no_progress")
DEFAULT_RUNS_DIR = Path("runs")
DEFAULT_CAMPAIGN_DIR = Path("results")

OPTION_BY_DEST = {opt.dest: opt for opt in RUN_OPTIONS + CAMPAIGN_OPTIONS}


def _add_argparse(parser: Any, opt: RunOption, *, many: bool = False) -> None:
    if opt.type is bool:
        parser.add_argument(opt.flag, dest=opt.dest, action="store_true", help=opt.help)
    elif opt.repeat:  # --set a=1 --set b=2; with `many` also --only a b
        parser.add_argument(opt.flag, dest=opt.dest, action="extend" if many else "append", nargs="+" if many else None,
                            default=[], type=opt.type, metavar=opt.metavar, help=opt.help)
    else:
        parser.add_argument(opt.flag, dest=opt.dest, type=opt.type, default=opt.default, choices=opt.choices,
                            metavar=opt.metavar, help=opt.help)


def add_argparse_options(parser: Any) -> None:
    """Add every run option to an argparse parser (the NAME argument is the caller's)."""
    for opt in RUN_OPTIONS:
        _add_argparse(parser, opt)


def add_campaign_argparse_options(parser: Any) -> None:
    """Add a campaign's options (the shared run options, then its own) to an argparse parser."""
    for dest in CAMPAIGN_SHARED:
        _add_argparse(parser, OPTION_BY_DEST[dest])
    for opt in CAMPAIGN_OPTIONS:
        _add_argparse(parser, opt, many=True)


def _values(values: Mapping[str, Any], options: tuple[RunOption, ...]) -> dict[str, Any]:
    """Option values with the table's defaults filled in and choices checked."""
    v = {opt.dest: opt.default for opt in options}
    v.update({k: val for k, val in values.items() if k in v and val is not None})
    for opt in options:
        if opt.choices and v[opt.dest] is not None and v[opt.dest] not in opt.choices:
            raise RunnerUsageError(f"unknown {opt.flag[2:]} {v[opt.dest]!r}; choose one of {', '.join(opt.choices)}")
    return v


def campaign_from_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `reproductions.campaign.run_campaign` from option values keyed by dest."""
    v = _values(values, tuple(OPTION_BY_DEST[d] for d in CAMPAIGN_SHARED) + CAMPAIGN_OPTIONS)
    if v["budget_min"] <= 0:
        raise RunnerUsageError(f"--budget-min must be positive, got {v['budget_min']:g}")
    return {"preset": v["preset"], "device": v["device"], "data_dir": v["data_dir"],
            "out": Path(v["out"] or DEFAULT_CAMPAIGN_DIR), "progress": not v["no_progress"],
            "only": list(v["only"] or []) or None, "force": bool(v["force"]), "budget_min": float(v["budget_min"])}


def request_from_options(name: str, values: Mapping[str, Any]) -> Any:
    """The `RunRequest` for reproduction `name` from option values keyed by `RunOption.dest`.

    Missing keys take the table's defaults; choices are checked here too, because not every
    CLI library enforces them.
    """
    from reproductions.run_request import RunRequest, parse_sets

    v = _values(values, RUN_OPTIONS)
    return RunRequest(name=name, preset=v["preset"], device=v["device"], seed=v["seed"], seeds=v["seeds"],
                      overrides=parse_sets(v["sets"]), data_dir=v["data_dir"], out=Path(v["out"] or DEFAULT_RUNS_DIR),
                      resume=bool(v["resume"]), resume_from=v["resume_from"], nproc=v["nproc"],
                      nnodes=v["nnodes"], node_rank=v["node_rank"], rdzv_endpoint=v["rdzv_endpoint"],
                      progress=not v["no_progress"])
