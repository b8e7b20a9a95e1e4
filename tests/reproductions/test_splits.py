"""Selection on validation only: no reproduction reads its test split before the final evaluation."""

from __future__ import annotations

import json

import pytest

from reproductions.api import RunContext
from reproductions.splits import TestSplitSealed


class PhaseWatch(RunContext):
    """A real RunContext that remembers what had happened when the test split was unsealed."""

    def begin_final_evaluation(self, fixed: str = "") -> None:
        self.at_final = {"examples_seen": self.examples_seen, "selections": len(self.phase.selections),
                         "rows": self._rows()}
        super().begin_final_evaluation(fixed)

    def _rows(self) -> list[dict]:
        path = self.out_dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_sealed_split_opens_only_in_the_final_evaluation_and_then_no_choice_is_possible(tmp_path):
    ctx = RunContext(tmp_path)
    sealed = ctx.seal([1, 2, 3], "toy test")
    with pytest.raises(TestSplitSealed, match="toy test is sealed"):
        sealed.open()
    ctx.select("lr", split="toy valid", chosen=0.1, grid=[0.1, 1.0], scores=[0.9, 0.5], rule="best")
    ctx.begin_final_evaluation(fixed="steps by the preset")
    assert sealed.open() == [1, 2, 3]
    with pytest.raises(TestSplitSealed, match="after the final evaluation"):
        ctx.select("steps", split="toy valid", chosen=10)
    assert ctx.notes["selection"][0]["split"] == "toy valid"
    assert "1 choice(s) made on validation" in ctx.notes["final_evaluation"]


def test_drophead_loader_seals_the_sst2_test_set(tmp_path):
    from reproductions.drophead import CARD, experiment

    ctx = RunContext(tmp_path, data_dir=tmp_path / "none", preset="smoke")
    sealed = experiment.load_data(experiment.load_config(CARD.config("smoke")), ctx).test
    with pytest.raises(TestSplitSealed):
        sealed.open()
    ctx.begin_final_evaluation()
    tokens, labels = sealed.open()
    assert len(tokens) == len(labels) > 0


def test_weissi_loader_seals_mnist_test_and_lambdas_are_chosen_before_it_opens(tmp_path):
    from reproductions.weissi import CARD
    from reproductions.weissi.experiment import ExperimentConfig, load_data, run

    cfg = CARD.config("smoke")
    ctx = PhaseWatch(tmp_path / "load", data_dir=tmp_path / "none")
    with pytest.raises(TestSplitSealed):
        load_data(ExperimentConfig.from_dict(cfg), ctx).test.open()
    small = dict(cfg, epochs=1, seeds=1, train_images=300, test_images=100, holdout_images=100, d_hidden=16,
                 pgd_steps=1, l2_grid=[5e-4, 5e-3], lambda_e_grid=[0.1], lambda_n_grid=[1e-3])
    ctx = PhaseWatch(tmp_path / "run", data_dir=tmp_path / "none")
    run(small, ctx)
    assert ctx.at_final["selections"] == 3  # all three lambdas chosen while the test split was sealed
    assert [s["split"] for s in ctx.notes["selection"]] == ["held-out 100 training images"] * 3


def test_nvae_loader_seals_the_test_images(tmp_path):
    from reproductions.nvae import CARD
    from reproductions.nvae.experiment import ExperimentConfig, load_data

    ctx = RunContext(tmp_path, data_dir=tmp_path / "none")
    data = load_data(ExperimentConfig.from_dict(CARD.config("smoke")), ctx)
    with pytest.raises(TestSplitSealed):
        data.test.open()
    ctx.begin_final_evaluation()
    assert data.test.open().shape[1:] == (1, 28, 28)


def test_self_attention_trains_before_it_samples_its_test_sequences(tmp_path):
    from reproductions.self_attention import CARD
    from reproductions.self_attention.experiment import run

    ctx = PhaseWatch(tmp_path)
    run(CARD.config("smoke", {"steps": 4}), ctx)
    assert ctx.at_final["examples_seen"] == ctx.examples_seen == 4 * 64  # every training batch came first
    assert "nothing selected" in ctx.notes["final_evaluation"]


def test_optimus_chooses_lambda_on_ptb_valid_before_the_test_split_opens(tmp_path):
    from reproductions.optimus import CARD
    from reproductions.optimus.experiment import run

    ctx = PhaseWatch(tmp_path)
    cfg = CARD.config("smoke", {"lambda_grid": [0.1, 0.5], "select_steps": 4, "steps": 6, "ae_pretrain_steps": 2,
                                "iw_samples": 2, "demo_sentences": 1})
    run(cfg, ctx)
    (choice,) = ctx.notes["selection"]
    assert choice["what"] == "kl_threshold" and choice["split"].startswith("PTB valid") and choice["grid"] == [0.1, 0.5]
    before = ctx.at_final["rows"]
    assert {r["split"] for r in before if "split" in r} <= {"train", "valid", "selection"}  # nothing on test yet
    after = ctx._rows()[len(before):]
    assert any(r.get("split") == "test" for r in after)
