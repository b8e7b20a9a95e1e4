"""DropHead: identity when off, whole heads dropped at the right rate, expectation kept, schedules."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from reproductions.drophead.model import (
    DropHead,
    DropHeadEncoderLayer,
    DropHeadSchedule,
    TextClassifier,
    drop_head,
    expected_drop_fraction,
    set_drophead_rate,
)


def _heads(b=64, h=8, t=5, d=6, seed=0):
    return torch.randn(b, h, t, d, generator=torch.Generator().manual_seed(seed)) + 3.0  # never exactly 0


def test_rate_zero_is_identity_in_training():
    x = _heads()
    m = DropHead(0.0).train()
    assert m(x) is x


def test_eval_mode_is_identity_at_any_rate():
    x = _heads()
    m = DropHead(0.7).eval()
    assert torch.equal(m(x), x)


def test_whole_heads_dropped_never_partial_and_kept_heads_scaled_by_h_over_k():
    x = _heads(b=200, h=6)
    y = drop_head(x, 0.5, generator=torch.Generator().manual_seed(1))
    zero = (y == 0)
    per_head = zero.flatten(2)  # (B, H, T*D)
    assert torch.all(per_head.all(-1) | ~per_head.any(-1)), "a head was partially dropped"
    dropped = per_head.all(-1)  # (B, H)
    kept = (~dropped).sum(1)
    assert kept.min() >= 1, "an example lost every head"
    ratio = y / x  # (B, H, T, D): 0 for dropped heads, H/K for kept
    expected = torch.where(dropped, 0.0, 6.0 / kept[:, None].float())
    assert torch.allclose(ratio, expected[:, :, None, None].expand_as(ratio), atol=1e-5)


@pytest.mark.parametrize("p,h", [(0.1, 8), (0.3, 4), (0.5, 2), (0.9, 4)])
def test_fraction_of_heads_dropped_matches_rate(p, h):
    n = 4000  # examples; n*h coin flips
    x = torch.ones(n, h, 1, 1)
    y = drop_head(x, p, generator=torch.Generator().manual_seed(2))
    frac = (y == 0).float().mean().item()
    expect = expected_drop_fraction(p, h)
    # Upper bound on the std of the mean of n*h Bernoulli(expect) draws (the rescue makes a row's
    # flips slightly negatively correlated, which only shrinks the variance); 4 sigma.
    sigma = math.sqrt(expect * (1 - expect) / (n * h))
    assert abs(frac - expect) < 4 * sigma + 1e-9, (frac, expect, sigma)


def test_the_tolerance_is_tight_enough_to_notice_a_wrong_rate():
    y = drop_head(torch.ones(4000, 4, 1, 1), 0.3, generator=torch.Generator().manual_seed(3))
    frac = (y == 0).float().mean().item()
    sigma = math.sqrt(0.3 * 0.7 / 16000)
    assert abs(frac - 0.35) > 4 * sigma  # a 5-point error in the rate would be caught


@pytest.mark.parametrize("p,h", [(0.2, 4), (0.6, 3), (0.95, 8)])
def test_rescaling_keeps_the_expectation(p, h):
    n = 20000
    x = torch.randn(1, h, 2, 3).expand(n, h, 2, 3).contiguous()
    y = drop_head(x, p, generator=torch.Generator().manual_seed(4))
    mean = y.mean(0)
    # per element: Var[x * keep * H/K] <= E[(H/K)^2 keep] x^2 <= H x^2; std of the mean over n draws
    tol = 5 * math.sqrt(h / n) * x[0].abs()
    assert torch.all((mean - x[0]).abs() <= tol + 1e-6)
    # dropout's 1/(1-p) with no rescue would also be unbiased; H/K additionally fixes each example's sum
    # over heads: (sum of kept, rescaled heads) has the same number of terms as the input's sum
    nonzero_heads = (y != 0).flatten(2).any(-1).sum(1)
    assert torch.all(nonzero_heads >= 1)


def test_drop_rate_out_of_range_is_an_error():
    with pytest.raises(ValueError):
        drop_head(_heads(), 1.5)


def test_gradients_flow_only_through_kept_heads():
    x = _heads(b=8, h=4).requires_grad_()
    y = drop_head(x, 0.5, generator=torch.Generator().manual_seed(5))
    y.sum().backward()
    dropped = (y == 0).flatten(2).all(-1)
    g = x.grad.flatten(2)
    assert torch.all(g[dropped] == 0) and torch.all(g[~dropped] > 0)


# ---------------------------------------------------------------- schedules

def test_v_schedule_values():
    s = DropHeadSchedule("v", total_steps=100, p_start=0.3, p_end=0.1, turn=0.5)
    assert s.rate(0) == pytest.approx(0.3)
    assert s.rate(25) == pytest.approx(0.15)
    assert s.rate(50) == pytest.approx(0.0)
    assert s.rate(75) == pytest.approx(0.05)
    assert s.rate(100) == pytest.approx(0.1)
    assert s.rate(1000) == pytest.approx(0.1)  # holds after the end
    rates = [s.rate(i) for i in range(101)]
    assert rates.index(min(rates)) == 50
    assert all(a >= b for a, b in zip(rates[:50], rates[1:51]))  # down, then up
    assert all(a <= b for a, b in zip(rates[50:], rates[51:]))


def test_v_schedule_with_early_turn_and_default_end():
    s = DropHeadSchedule("v", total_steps=1000, p_start=0.2, turn=0.2)
    assert s.rate(100) == pytest.approx(0.1)
    assert s.rate(200) == pytest.approx(0.0)
    assert s.rate(600) == pytest.approx(0.1)
    assert s.rate(1000) == pytest.approx(0.2)


def test_inverse_v_schedule_values():
    s = DropHeadSchedule("inverse_v", total_steps=10, p_start=0.4, turn=0.5)
    assert [round(s.rate(i), 6) for i in (0, 5, 10)] == [0.0, 0.4, 0.0]
    assert s.rate(2) == pytest.approx(0.16)
    assert s.rate(8) == pytest.approx(0.16)


def test_constant_schedule_and_bad_kind():
    assert DropHeadSchedule("constant", 10, 0.25).rate(7) == 0.25
    with pytest.raises(ValueError):
        DropHeadSchedule("cosine", 10, 0.25)


# ---------------------------------------------------------------- in a transformer layer

def test_encoder_layer_matches_torch_transformer_encoder_layer():
    torch.manual_seed(6)
    for norm_first in (False, True):
        ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=norm_first)
        ours = DropHeadEncoderLayer(32, 4, 64, dropout=0.0, drophead=0.0, norm_first=norm_first)
        state = dict(ref.state_dict())
        state["self_attn.qkv.weight"] = state.pop("self_attn.in_proj_weight")
        state["self_attn.qkv.bias"] = state.pop("self_attn.in_proj_bias")
        state["self_attn.out.weight"] = state.pop("self_attn.out_proj.weight")
        state["self_attn.out.bias"] = state.pop("self_attn.out_proj.bias")
        ours.load_state_dict(state)
        x = torch.randn(3, 7, 32)
        pad = torch.zeros(3, 7, dtype=torch.bool)
        pad[1, 5:] = True
        pad[2, 2:] = True
        ref.train(), ours.train()  # train mode: torch's fused eval fast path would zero padded rows
        out_ref = ref(x, src_key_padding_mask=pad)
        out = ours(x, src_key_padding_mask=pad)
        assert (out - out_ref).abs().max().item() < 1e-5


def test_drophead_in_a_layer_changes_training_output_only():
    torch.manual_seed(7)
    layer = DropHeadEncoderLayer(32, 4, 64, dropout=0.0, drophead=0.5)
    x = torch.randn(4, 6, 32)
    layer.eval()
    a, b = layer(x), layer(x)
    assert torch.equal(a, b)
    layer.train()
    assert not torch.allclose(layer(x), a)


def test_set_drophead_rate_reaches_every_layer():
    model = TextClassifier(vocab=50, max_len=10, layers=3)
    set_drophead_rate(model, 0.25)
    rates = [m.p for m in model.modules() if isinstance(m, DropHead)]
    assert rates == [0.25] * 3


# ---------------------------------------------------------------- statistics and the experiment

from pathlib import Path  # noqa: E402

from reproductions.api import RunContext  # noqa: E402
from reproductions.data import DatasetMissing  # noqa: E402
from reproductions.drophead import CARD  # noqa: E402
from reproductions.drophead import experiment  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_paired_difference_t_interval():
    a, b = [0.80, 0.82, 0.81, 0.85], [0.79, 0.80, 0.80, 0.81]
    d = experiment.paired_difference(a, b)
    diffs = [0.01, 0.02, 0.01, 0.04]
    m = sum(diffs) / 4
    s = math.sqrt(sum((x - m) ** 2 for x in diffs) / 3)
    half = 3.182 * s / 2  # t_{0.975, 3} * s / sqrt(4)
    assert d["mean"] == pytest.approx(m)
    assert d["ci95"] == pytest.approx([m - half, m + half])
    assert d["n"] == 4


def test_t_quantiles():
    assert experiment.t_quantile_975(1) == pytest.approx(12.706)
    assert experiment.t_quantile_975(4) == pytest.approx(2.776)
    assert 1.96 < experiment.t_quantile_975(200) < 1.97


def test_arms_share_data_order_and_init_and_differ_only_in_regulariser():
    cfg = CARD.config("smoke")
    assert experiment.arm_settings("none", cfg) == (0.0, None)
    drop, sched = experiment.arm_settings("scheduled_drophead", cfg)
    assert drop == cfg["dropout"] and sched.kind == "v"
    assert sched.rate(0) == cfg["drophead_start"] and sched.rate(cfg["steps"] // 2) == 0.0
    with pytest.raises(ValueError):
        experiment.arm_settings("dropconnect", cfg)


def test_cpu_preset_without_sst2_is_a_clear_error(tmp_path):
    ctx = RunContext(tmp_path / "run", data_dir=tmp_path / "empty", preset="cpu")
    with pytest.raises(DatasetMissing, match="sst2"):
        experiment.load_data(CARD.config("cpu"), ctx)


def test_smoke_without_sst2_falls_back_to_synthetic_and_says_so(tmp_path):
    ctx = RunContext(tmp_path / "run", data_dir=tmp_path / "empty", preset="smoke")
    (train, _), (test, _), vocab = experiment.load_data(CARD.config("smoke"), ctx)
    assert "synthetic" in ctx.notes["data"] and len(train) == 2000 and vocab > 10


def test_smoke_experiment_reports_every_arm_and_writes_the_plot(tmp_path):
    data_dir = SHARED_DATA if (SHARED_DATA / "sst2" / "dev.tsv").is_file() else tmp_path / "none"
    ctx = RunContext(tmp_path / "run", data_dir=data_dir, preset="smoke", seed=3)
    cfg = CARD.config("smoke", {"steps": 15, "seeds": 2, "dev_subset": 200})
    m = experiment.run(cfg, ctx)
    assert m["seeds"] == [3, 4]
    assert set(m["arms"]) == set(experiment.ARMS)
    for arm in experiment.ARMS:
        acc = m["arms"][arm]["accuracy"]
        assert len(acc["per_seed"]) == 2 and all(0.0 <= a <= 1.0 for a in acc["per_seed"])
        assert acc["mean"] == pytest.approx(sum(acc["per_seed"]) / 2)
    d = m["diff_scheduled_drophead_minus_dropout"]
    assert d["per_seed"] == pytest.approx([s - b for s, b in zip(m["arms"]["scheduled_drophead"]["accuracy"]["per_seed"],
                                                                   m["arms"]["dropout"]["accuracy"]["per_seed"])])
    assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]
    png = ctx.out_dir / "accuracy_by_arm.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (ctx.out_dir / "metrics.jsonl").read_text().splitlines()
    assert any('"drophead_rate"' in r for r in rows)


def test_same_seed_same_result_and_none_arm_is_deterministic(tmp_path):
    data_dir = tmp_path / "none"  # synthetic: fast and always there
    cfg = CARD.config("smoke", {"steps": 10})
    ctx = RunContext(tmp_path / "run", data_dir=data_dir, preset="smoke")
    train, test, vocab = experiment.load_data(cfg, ctx)
    r1 = experiment.train_one("scheduled_drophead", 5, cfg, train, test, vocab, ctx)
    r2 = experiment.train_one("scheduled_drophead", 5, cfg, train, test, vocab, ctx)
    assert r1["accuracy"] == r2["accuracy"] and r1["train_accuracy"] == r2["train_accuracy"]
