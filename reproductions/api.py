"""The contract between the runner and one reproduction.

A reproduction package exposes ``CARD: Card`` in its ``__init__`` and a function
``run(config: dict, ctx: RunContext) -> dict`` in ``experiment.py`` that returns the
metrics it measured. The runner builds the context (device, output folder, seed,
checkpointing); the experiment never decides those itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator


CLAIM_KINDS = ("difference", "value", "bound")


@dataclass(frozen=True)
class Claim:
    """One thing the paper claims, as data the analysis can judge (see `reproductions.claims`).

    kind "difference": arms[0] - arms[1], paired by seed; `higher_is_better` says the paper's side
    (True: arms[0] should come out above arms[1]); `value` is the paper's own gain if it states one.
    kind "value": our `metric` against the paper's `value`, within +- `tolerance`.
    kind "bound": `metric` at least (`higher_is_better`) or at most `value` on every seed.
    `metric` is the key inside each arm (``metrics[arm][metric]``); with no arms a dotted path
    into the metrics. `scale` turns our numbers into the claim's unit (accuracy 0-1 -> points: 100).
    """

    metric: str
    value: float | None  # the paper's figure, or the bound; None: the paper states no number
    unit: str = ""
    source: str = ""  # where the figure stands: "Table 2, MNIST row", "abstract"
    note: str = ""
    higher_is_better: bool = True
    id: str = ""
    statement: str = ""  # one sentence a reader understands
    kind: str = "value"
    arms: tuple[str, ...] = ()
    tolerance: float = 0.0
    scale: float = 1.0
    label: str = ""  # short name on pages: "Scheduled DropHead vs dropout"

    def __post_init__(self):
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim kind must be one of {CLAIM_KINDS}, got {self.kind!r}")
        if self.kind == "difference" and len(self.arms) != 2:
            raise ValueError(f"a difference claim names two arms, got {self.arms!r}")

    @property
    def key(self) -> str:
        return self.id or self.metric

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def paths(self) -> list[str]:
        """Dotted paths of the metric in each arm (one path with no arms)."""
        return [f"{arm}.{self.metric}" if arm else self.metric for arm in self.arms] or [self.metric]

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["arms"] = list(self.arms)
        return d


@dataclass(frozen=True)
class Card:
    """What a reproduction is: the paper, its claims, what we measure, the presets."""

    name: str  # CLI name, e.g. "drophead"
    paper_id: str  # arXiv id, e.g. "2004.13342"
    title: str
    authors: str
    summary: str  # what the paper proposes, in our words
    measures: str  # what this reproduction measures
    claims: tuple[Claim, ...] = ()
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # "smoke" | "cpu" | "gpu" -> config
    datasets: tuple[str, ...] = ()  # folder names under the data dir this uses
    notes: str = ""  # honest caveats: what differs from the paper
    # preset -> planned wall seconds of one run (for "gpu": on one H100/H200, compile included);
    # the campaign command adds these up and refuses a plan over its budget
    budget_s: dict[str, float] = field(default_factory=dict)
    # the one metric key the campaign table shows (dotted, as in Claim.metric); empty: the first
    # claim's metric, or with no claims the first number the experiment returns
    headline: str = ""
    # reader names of arm and metric keys (pages never show a dotted key): {"scheduled_drophead": "V-scheduled DropHead"}
    labels: dict[str, str] = field(default_factory=dict)
    # "paper / ours / why" rows for the page: (what, the paper's setting, ours, why we differ)
    differences: tuple[tuple[str, str, str, str], ...] = ()
    # the paper's values of preset keys, so a preset table can mark what differs from the paper
    paper_config: dict[str, Any] = field(default_factory=dict)

    def config(self, preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        if preset not in self.presets:
            raise KeyError(f"{self.name} has no preset {preset!r} (has: {', '.join(self.presets)})")
        cfg = dict(self.presets[preset])
        cfg.update(overrides or {})
        return cfg


class ConfigError(ValueError):
    """A preset or override names an unknown key or an impossible value."""


def config_from_dict(cls: type, config: dict[str, Any], *, name: str) -> Any:
    """Build the experiment's config dataclass `cls`, refusing keys it does not have.

    Lists become tuples for fields whose default is a tuple (JSON overrides arrive as lists).
    """
    from dataclasses import MISSING, fields

    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"{name}: unknown config keys {unknown}; known: {sorted(known)}")
    values = dict(config)
    for key, value in values.items():
        if isinstance(value, list) and known[key].default is not MISSING and isinstance(known[key].default, tuple):
            values[key] = tuple(value)
    return cls(**values)


class RunContext:
    """Everything an experiment may use from the runner.

    Works standalone (tests build one over a temp folder); the runner subclasses or
    fills it with the real device, distributed state and progress display.
    """

    def __init__(self, out_dir: Path, *, device: Any = "cpu", data_dir: Path | None = None, seed: int = 0,
                 preset: str = "smoke", rank: int = 0, world_size: int = 1, amp: bool = False,
                 resume: bool = False, progress_factory: Callable[..., Any] | None = None,
                 compile: bool = False, pin_memory: bool = False):
        import torch

        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(device)
        self.data_dir = Path(data_dir) if data_dir else None
        self.seed = seed
        self.preset = preset
        self.rank = rank
        self.world_size = world_size
        self.amp = amp
        self.resume = resume
        self.compile = compile  # `--set compile=true`: wrap_model() runs torch.compile
        self.pin_memory = pin_memory  # True on CUDA: pass to DataLoader(pin_memory=...)
        self._autosave: Callable[[], dict[str, Any]] | None = None
        self.notes: dict[str, Any] = {}  # goes into run.json ("data": "synthetic", ...)
        self._progress_factory = progress_factory
        self._metrics_path = self.out_dir / "metrics.jsonl"
        self._t0 = time.time()
        self.examples_seen = 0  # training examples this rank processed (count_examples)
        from reproductions.splits import Phase

        self.phase = Phase()  # selection (test sealed) until begin_final_evaluation()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def note(self, key: str, value: Any) -> None:
        """Record a fact about this run (which data, which split) in run.json."""
        self.notes[key] = value

    # ------------------------------------------------------------ selection on validation only

    def seal(self, data: Any, name: str) -> Any:
        """Wrap a test split so it can only be read after `begin_final_evaluation` (see `splits`)."""
        from reproductions.splits import Sealed

        return Sealed(data, self.phase, name)

    def select(self, what: str, *, split: str, chosen: Any, grid: Any = (), scores: Any = (), rule: str = "") -> None:
        """Record a choice (a lambda, a step count) and the split it was made on, in run.json."""
        self.phase.select(what, split=split, chosen=chosen, grid=grid, scores=scores, rule=rule)
        self.notes["selection"] = list(self.phase.selections)

    def begin_final_evaluation(self, fixed: str = "") -> None:
        """End the selection phase: the test split opens, no further choice can be recorded.

        `fixed` says what was fixed before the run rather than selected in it (the preset's values)."""
        self.phase.begin_final_evaluation()
        self.notes.setdefault("selection", list(self.phase.selections))
        self.notes["final_evaluation"] = (
            "test split sealed until the final evaluation; " + (
                f"{len(self.phase.selections)} choice(s) made on validation before it" if self.phase.selections
                else "nothing selected during the run") + (f"; {fixed}" if fixed else ""))

    def log(self, step: int, **metrics: Any) -> None:
        """Append one line to metrics.jsonl (main process only)."""
        if not self.is_main:
            return
        row = {"step": step, "time_s": round(time.time() - self._t0, 3), **metrics}
        with self._metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=float) + "\n")

    @contextlib.contextmanager
    def progress(self, total: int, desc: str = "") -> Iterator[Callable[[int], None]]:
        """``with ctx.progress(n, "train") as advance: ... advance(1)``."""
        if self._progress_factory is None or not self.is_main:
            yield lambda n=1: None
            return
        with self._progress_factory(total, desc) as advance:
            yield advance

    def autocast(self):
        """bf16 autocast on CUDA when AMP is on; a no-op elsewhere."""
        import torch

        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically write a checkpoint (write then rename), main process only."""
        import torch

        if not self.is_main:
            return
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_path)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint when resuming, else None."""
        import torch

        if not (self.resume and self.checkpoint_path.exists()):
            return None
        return torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)

    # ------------------------------------------------------------ Ctrl-C and data parallelism

    def autosave(self, state_fn: Callable[[], dict[str, Any]] | None) -> None:
        """Register what to checkpoint if the run is interrupted (Ctrl-C): the runner calls
        ``state_fn()`` and saves it, so ``--resume`` continues from there."""
        self._autosave = state_fn

    def save_on_interrupt(self) -> bool:
        """Called by the runner on KeyboardInterrupt; True when a checkpoint was written."""
        if self._autosave is None:
            return False
        self.save_checkpoint(self._autosave())
        return True

    def wrap_model(self, model: Any) -> Any:
        """Model on the device, compiled if asked, in DDP when several processes run."""
        from reproductions.distributed import wrap_model

        return wrap_model(model, self)

    def sampler(self, dataset: Any, *, shuffle: bool = True, drop_last: bool = False) -> Any:
        """DataLoader sampler: this rank's share when distributed, seeded shuffle otherwise."""
        from reproductions.distributed import sampler

        return sampler(dataset, self, shuffle=shuffle, drop_last=drop_last)

    def shard(self, n: int) -> range:
        """This rank's indices of ``range(n)`` (all of them with one process)."""
        from reproductions.distributed import shard

        return shard(n, self)

    def local_batch(self, global_batch: int) -> int:
        """This rank's share of a global batch, so N processes train with the preset's batch.

        The global batch must divide evenly: a silent remainder would change the recipe.
        """
        if global_batch % self.world_size:
            raise ConfigError(f"batch {global_batch} does not split over {self.world_size} processes")
        return global_batch // self.world_size

    def count_examples(self, n: int) -> None:
        """Add `n` training examples to what this rank has seen (run.json reports it per rank)."""
        self.examples_seen += int(n)

    def mean_over_ranks(self, value: float) -> float:
        """Average a scalar metric over processes (the value itself with one process)."""
        from reproductions.distributed import all_reduce_mean

        return all_reduce_mean(value, self)

    def sum_over_ranks(self, values: Any) -> Any:
        """Element-wise sums over processes of per-rank partial sums (a list of floats or a
        tensor); the values themselves with one process."""
        from reproductions.distributed import all_reduce_sum

        return all_reduce_sum(values, self)

    def examples_per_rank(self) -> list[int]:
        """The training examples each process has seen, in rank order (a collective: every rank
        calls it)."""
        from reproductions.distributed import gather_ints

        return gather_ints(self.examples_seen, self.device)

    def barrier(self) -> None:
        """Wait for every process (e.g. so none leaves before rank 0 has written its files)."""
        from reproductions.distributed import barrier

        barrier(self)
