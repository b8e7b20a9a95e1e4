"""The NVAE experiment's configuration (`ExperimentConfig`), its arms and what each arm changes.

Arms: the main arm ``nvae``; an NVAE control ``nvae_control`` with the ablations' budget when
that budget differs from the main arm's (otherwise the main arm is the control); and the
ablations, each NVAE with one part taken away. With ``seeds`` (written by the runner from the
preset) the control and the ablations are trained once per seed, paired: on one seed every
arm starts from the same random stream (same initial weights where the architecture is the
same, same batches, same binarization noise), so a per-seed difference measures the ablated
part rather than the luck of the draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from reproductions.api import ConfigError, config_from_dict
from reproductions.nvae.model import NVAE, NVAEConfig, count_params

ARMS = ("nvae", "nvae_control", "plain_vae", "no_residual_normal", "no_spectral_reg")
ABLATIONS = ARMS[2:]
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al.: a unit is active when Var_x E_q[u] > 0.01
DATA_KINDS = ("dynamic", "binarized")
# Adamax as the official code builds it (NVlabs/NVAE train.py: torch.optim.Adamax(...,
# weight_decay=args.weight_decay, eps=1e-3), --weight_decay default 3e-4).
OFFICIAL_ADAM_EPS = 1e-3
OFFICIAL_WEIGHT_DECAY = 3e-4


@dataclass
class ExperimentConfig:
    data: str = "dynamic"  # "dynamic": 60k grey train images, resampled per visit; "binarized": fixed 50k
    allow_synthetic: bool = False  # only the smoke preset may fall back to synthetic bars
    train_images: int = 0  # 0 = the whole train split
    test_images: int = 1000  # test images for ELBO / KL / active units
    test_binarization_seed: int = 0  # the one Bernoulli draw that binarizes the grey test images
    iw_images: int = 2000  # test images for the importance-weighted NLL, main arm
    iw_samples: int = 100  # importance samples per image, main arm
    ablation_iw_images: int = 500  # control and ablation arms
    ablation_iw_samples: int = 20
    eval_batch_size: int = 512  # max rows per forward pass during evaluation
    bn_readjust_images: int = 2000  # training images used to re-estimate BN statistics before eval (0 = off)
    batch_size: int = 64  # global batch; each of N processes trains on batch_size / N
    steps: int = 1000
    train_seconds: float = 0.0  # wall-clock cap of the main arm, training steps only; 0 = none
    ablation_steps: int = 0  # control and ablation arms; 0 = same as steps (then the main arm is the control)
    ablation_train_seconds: float = 0.0
    lr: float = 1e-2
    adam_eps: float = OFFICIAL_ADAM_EPS
    weight_decay: float = OFFICIAL_WEIGHT_DECAY  # L2 added to the gradient, on every parameter (as official)
    lr_min: float = 1e-4
    lr_warmup: float = 0.02  # fraction of the arm's steps with a linear lr ramp
    kl_warmup: float = 0.3  # fraction of the arm's steps over which beta goes 0 -> 1
    kl_balance: bool = True
    spectral_coeff: float = 0.01  # lambda of the spectral regulariser
    spectral_on_linear: bool = False  # also the SE layers' Linear weights (the official recipe: convs only)
    bn_scale_coeff: float = 0.01  # lambda of the BN-scale penalty (the official recipe uses the spectral lambda)
    grad_clip: float = 200.0
    channels_last: bool = False
    compile: bool = False
    log_every: int = 25
    checkpoint_every: int = 0  # 0 = only at the end of each arm
    halt_after: int = 0  # stop after this many steps of an arm, leaving a checkpoint (tests, preemption)
    ablations: tuple[str, ...] = ABLATIONS
    seeds: Any = ()  # paired seeds (the runner turns a preset's count into a list); () = the run's one seed
    iw_bf16: bool = False  # the IW bound's top-down passes under bf16 autocast (densities stay fp32)
    model: dict = field(default_factory=dict)  # NVAEConfig fields

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "ExperimentConfig":
        cfg = config_from_dict(cls, config, name="nvae")
        bad = [a for a in cfg.ablations if a not in ABLATIONS]
        if bad:
            raise ConfigError(f"nvae: unknown ablations {bad}; choose from {list(ABLATIONS)}")
        if cfg.data not in DATA_KINDS:
            raise ConfigError(f"nvae: data must be one of {DATA_KINDS}, got {cfg.data!r}")
        model_known = {f.name for f in fields(NVAEConfig)}
        if set(cfg.model) - model_known:
            raise ConfigError(f"nvae: unknown model keys {sorted(set(cfg.model) - model_known)}")
        ok_count = isinstance(cfg.seeds, int) and not isinstance(cfg.seeds, bool) and cfg.seeds >= 1
        ok_list = isinstance(cfg.seeds, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in cfg.seeds)
        if not (ok_count or ok_list):
            raise ConfigError(f"nvae: seeds must be a count >= 1 or a list of ints, got {cfg.seeds!r}")
        if cfg.adam_eps <= 0 or cfg.weight_decay < 0:
            raise ConfigError("nvae: adam_eps must be > 0 and weight_decay >= 0")
        return cfg

    def budget(self, arm: str) -> tuple[int, float]:
        """(steps, wall-clock cap in seconds) of an arm: the main arm's, or the shared ablation budget."""
        if arm == "nvae":
            return self.steps, self.train_seconds
        return self.ablation_steps or self.steps, self.ablation_train_seconds

    def arms(self) -> list[str]:
        """The arms to train, in order; a separate control only when the ablation budget differs."""
        if not self.ablations:
            return ["nvae"]
        control = [] if self.budget("nvae_control") == self.budget("nvae") else ["nvae_control"]
        return ["nvae", *control, *self.ablations]

    def control_arm(self) -> str:
        return "nvae_control" if "nvae_control" in self.arms() else "nvae"

    def seed_list(self, run_seed: int) -> list[int]:
        """The paired seeds: the preset's list, a count of seeds from the run's seed, or the run's one seed."""
        if isinstance(self.seeds, int):
            return list(range(run_seed, run_seed + max(1, self.seeds)))
        return [int(s) for s in self.seeds] or [run_seed]

    def arm_seeds(self, arm: str, run_seed: int) -> list[int]:
        """The seeds an arm trains on: every paired seed, except a separate main arm (it keeps the long
        budget and runs on the first seed only)."""
        seeds = self.seed_list(run_seed)
        return seeds[:1] if arm == "nvae" and self.control_arm() != "nvae" else seeds

    def iw_budget(self, arm: str) -> tuple[int, int]:
        """(k, test images) of the IW bound: the main arm's, or the control's and ablations'."""
        if arm == "nvae":
            return self.iw_samples, self.iw_images
        return self.ablation_iw_samples, self.ablation_iw_images


def arm_model_config(arm: str, base: NVAEConfig) -> NVAEConfig:
    """The model of an arm. The plain VAE keeps the backbone but has one latent group
    at the coarsest scale, with as many latent dims as the hierarchy and the width
    chosen so its parameter count is closest to the NVAE's."""
    if arm == "no_residual_normal":
        return replace(base, residual_normal=False)
    if arm != "plain_vae":
        return base
    S = len(base.groups_per_scale)
    dims = sum(base.latent_channels * base.scale_size(s) ** 2 * g for s, g in enumerate(base.groups_per_scale))
    top = base.scale_size(0) ** 2
    target = count_params(NVAE(base))
    best = None
    for channels in range(max(2, base.channels // 2), base.channels * 2 + 1):
        cand = replace(base, groups_per_scale=(1,), pre_downs=base.pre_downs + S - 1, channels=channels,
                       latent_channels=max(1, round(dims / top)), cells_per_group=base.cells_per_group * 2)
        gap = abs(count_params(NVAE(cand)) - target)
        if best is None or gap < best[0]:
            best = (gap, cand)
    return best[1]


def arm_spectral_coeff(arm: str, cfg: ExperimentConfig) -> float:
    return 0.0 if arm == "no_spectral_reg" else cfg.spectral_coeff
