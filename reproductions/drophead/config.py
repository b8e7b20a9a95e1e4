"""The DropHead experiment's typed config: presets and ``--set`` may name only these keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reproductions.api import ConfigError, config_from_dict

# "drophead" is DropHead at a fixed rate (the preset sets it to the V schedule's peak);
# "drophead_mean" is DropHead at a fixed rate equal to the V schedule's mean over training,
# the rate-matched control for the schedule.
ARMS = ("none", "dropout", "drophead", "drophead_mean", "scheduled_drophead")


@dataclass(frozen=True)
class DropHeadConfig:
    """The experiment's settings; presets and ``--set`` may name only these keys."""

    # model
    d_model: int = 32
    n_head: int = 4
    n_layer: int = 1
    d_ff: int = 64
    max_len: int = 64  # tokens per sentence kept (longer ones are cut)
    # regularisers
    dropout: float = 0.1  # standard dropout of every arm but "none"
    drophead: float = 0.2  # the fixed rate of the "drophead" arm (the presets: the V's peak)
    drophead_start: float = 0.2  # V schedule: rate at step 0 ...
    drophead_end: float = 0.2  # ... and at the last step
    schedule: str = "v"  # "v" (the paper's) or "inverse_v" (ablation)
    turn: float | None = None  # turning point as a fraction of training; None: end of the lr warm-up (our reading of §3.2)
    drophead_with_dropout: bool = True
    # optimisation
    batch_size: int = 32  # global: split over the processes
    lr: float = 2e-3
    warmup: float = 0.1  # fraction of steps with a linear lr ramp (then cosine decay)
    weight_decay: float = 0.01
    steps: int = 60
    seeds: int | list[int] = 2  # a count, or the runner's list of seeds
    length_buckets: int = 0  # > 0: batches of similar-length sentences, from pools of this many batches
    arms: tuple[str, ...] = ARMS
    # data
    val_size: int = 0  # sentences carved out of SST-2 train (fixed, seeded) as the validation split
    train_subset: int | None = None  # a fixed random subset of the rest of SST-2 train; None = all of it
    dev_subset: int | None = None
    vocab_size: int = 16000
    min_freq: int = 1
    train_eval_max: int = 5000  # train accuracy (the fit gauge) on up to this many training sentences

    def __post_init__(self):
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ConfigError(f"drophead: unknown arms {bad}; known: {list(ARMS)}")
        if self.schedule not in ("v", "inverse_v"):
            raise ConfigError(f"drophead: schedule must be 'v' or 'inverse_v', got {self.schedule!r}")
        if self.turn is not None and not 0.0 < self.turn < 1.0:
            raise ConfigError(f"drophead: turn must be in (0, 1) or null, got {self.turn}")
        if self.val_size < 0:
            raise ConfigError(f"drophead: val_size must be >= 0, got {self.val_size}")

    @property
    def warmup_steps(self) -> int:
        return max(1, int(self.warmup * self.steps))

    @property
    def turn_step(self) -> int:
        """The V's turning point: the end of the lr warm-up unless ``turn`` says otherwise."""
        step = self.warmup_steps if self.turn is None else round(self.turn * self.steps)
        return min(max(step, 1), self.steps - 1)


def load_config(config: dict[str, Any]) -> DropHeadConfig:
    return config_from_dict(DropHeadConfig, config, name="drophead")
