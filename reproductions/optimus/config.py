"""The Optimus experiment's typed config: every key a preset may set, checked on load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reproductions.api import ConfigError, config_from_dict
from reproductions.optimus.model import OptimusConfig
from reproductions.optimus.objectives import THRESHOLD_MODES
from reproductions.optimus.tokenizer import Vocab

ARMS = ("lm", "vae", "optimus")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a preset may set; `from_dict` refuses unknown keys."""

    # data (0 = no limit)
    allow_synthetic: bool = False  # smoke only: template sentences when PTB is missing
    max_words: int = 0  # keep only sentences of at most this many words, in every split
    max_vocab: int = 0  # keep the most frequent words of train, the rest become <unk>
    max_train_sentences: int = 0
    max_valid_sentences: int = 0
    max_test_sentences: int = 0
    max_len: int = 96  # positions, <bos> included; longer eval sentences are cut
    max_train_len: int = 50  # training sentences longer than this (tokens incl. <eos>) are skipped
    # model (names shared with the other reproductions)
    d_model: int = 64
    n_head: int = 4
    n_layer: int = 2  # decoder layers
    n_enc_layer: int = 1
    d_ff: int = 256
    d_latent: int = 16
    dropout: float = 0.1
    inject_memory: bool = True
    inject_embedding: bool = True
    memory_kv: str = "raw"  # "raw" (paper) | "projected" (through each layer's K/V)
    # objective
    kl_threshold: float = 0.5  # λ, Optimus arm only
    kl_threshold_mode: str = "example"  # "example" (official code) | "batch" (batch-mean KL per dim)
    ae_pretrain_steps: int = 0  # β = 0 steps before the cyclical schedule (Optimus arm)
    n_cycles: int = 1
    ratio_zero: float = 0.5
    ratio_increase: float = 0.25
    beta_max: float = 1.0
    # the official --length_weighted_loss: each sentence's reconstruction NLL divided by its token
    # count (a per-token loss, as a GPT-2 LM is trained), the KL term not; applied to every arm alike
    length_weighted_loss: bool = False
    # pre-train then fine-tune: the LM is trained pretrain_steps first (the stand-in for a
    # pre-trained GPT-2); then every arm starts from its decoder and trains `steps` more. 0: from scratch
    pretrain_steps: int = 0
    pretrain_lr: float = 0.0  # peak LR of the pre-training (0: lr)
    # optimisation; batch_size is the global batch (split over ranks)
    batch_size: int = 32
    steps: int = 100  # per arm (after pre-training: the fine-tuning steps)
    warmup_steps: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # evaluation and output
    eval_batch_size: int = 100
    log_every: int = 20
    eval_every: int = 100
    iw_samples: int = 20  # K of the importance-weighted bound on the test split (0: skip)
    iw_plain_vae: bool = True  # also the IW bound for the plain VAE arm (its KL ~ 0 makes it ~ its ELBO)
    arms: tuple[str, ...] = ARMS
    demo_sentences: int = 5
    demo_max_tokens: int = 30
    threads: int = 0  # torch.set_num_threads when > 0
    # seeds the experiment runs itself (empty: the runner's one seed, flat metrics); the runner
    # turns the preset's count into a list
    seeds: tuple[int, ...] | int = ()
    # selection on PTB valid (test sealed), with the first seed only: train the Optimus arm for
    # select_steps (0: steps) per lambda of lambda_grid and the LM the same, keep the rule's choice;
    # selection_only stops there
    lambda_grid: tuple[float, ...] = ()
    select_steps: int = 0
    select_iw_samples: int = 0  # K of the IW bound on valid during the selection (0: iw_samples)
    selection_only: bool = False

    def __post_init__(self):
        if isinstance(self.seeds, int):  # the preset's count, before the runner turns it into a list
            object.__setattr__(self, "seeds", tuple(range(self.seeds)))
        bad = [a for a in self.arms if a not in ARMS]
        if bad or not self.arms:
            raise ConfigError(f"optimus: arms must be a non-empty subset of {ARMS}, got {list(self.arms)}")
        if self.kl_threshold_mode not in THRESHOLD_MODES:
            raise ConfigError(f"optimus: kl_threshold_mode must be one of {THRESHOLD_MODES}")
        if self.steps <= self.ae_pretrain_steps:
            raise ConfigError("optimus: steps must exceed ae_pretrain_steps")
        if self.pretrain_steps < 0 or self.select_steps < 0:
            raise ConfigError("optimus: pretrain_steps and select_steps must be >= 0")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"optimus: seeds must differ, got {list(self.seeds)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        return config_from_dict(cls, d, name="optimus")

    @property
    def trial_steps(self) -> int:
        """Steps of one selection trial."""
        return self.select_steps or self.steps

    def model_config(self, vocab: Vocab) -> OptimusConfig:
        return OptimusConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, max_len=self.max_len,
                             d_model=self.d_model, n_head=self.n_head, n_layer=self.n_layer,
                             n_enc_layer=self.n_enc_layer, d_ff=self.d_ff, d_latent=self.d_latent,
                             dropout=self.dropout, inject_memory=self.inject_memory,
                             inject_embedding=self.inject_embedding, memory_kv=self.memory_kv)
