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
    s = DropHeadSchedule("v", total_steps=100, p_start=0.3, p_end=0.1, turn_step=50)
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
    s = DropHeadSchedule("v", total_steps=1000, p_start=0.2, turn_step=200)
    assert s.rate(100) == pytest.approx(0.1)
    assert s.rate(200) == pytest.approx(0.0)
    assert s.rate(600) == pytest.approx(0.1)
    assert s.rate(1000) == pytest.approx(0.2)


def test_v_schedule_needs_a_turn_inside_training():
    for turn in (None, 0, 100):
        with pytest.raises(ValueError, match="turn_step"):
            DropHeadSchedule("v", total_steps=100, p_start=0.2, turn_step=turn)


def test_inverse_v_schedule_values():
    s = DropHeadSchedule("inverse_v", total_steps=10, p_start=0.4, turn_step=5)
    assert [round(s.rate(i), 6) for i in (0, 5, 10)] == [0.0, 0.4, 0.0]
    assert s.rate(2) == pytest.approx(0.16)
    assert s.rate(8) == pytest.approx(0.16)


def test_default_v_turns_at_the_end_of_the_lr_warmup():
    """The experiment's V (our reading of §3.2, unchecked against the text): p_start falls to 0 by
    the end of the learning-rate warm-up, then rises to p_end at the last step — not at mid-training."""
    cfg = experiment.load_config(dict(CARD.presets["cpu"], seeds=1))
    assert cfg.turn is None
    _, sched = experiment.arm_settings("scheduled_drophead", cfg)
    warmup = cfg.warmup_steps
    assert warmup == int(cfg.warmup * cfg.steps) and warmup < cfg.steps // 4
    rates = [sched.rate(i) for i in range(cfg.steps + 1)]
    assert rates[0] == pytest.approx(cfg.drophead_start) and rates[-1] == pytest.approx(cfg.drophead_end)
    assert rates.index(0.0) == warmup and rates[warmup] == 0.0
    assert all(a > b for a, b in zip(rates[:warmup], rates[1:warmup + 1]))  # strictly down during warm-up
    assert all(a < b for a, b in zip(rates[warmup:], rates[warmup + 1:]))  # strictly up after it
    assert rates[cfg.steps // 2] < cfg.drophead_end * 0.6  # mid-training is on the way up, not the turn
    # the rise is linear: halfway from the turn to the end, half of p_end
    mid = warmup + (cfg.steps - warmup) // 2
    assert rates[mid] == pytest.approx(cfg.drophead_end * (mid - warmup) / (cfg.steps - warmup))
    # an explicit turn still works (the old mid-training V, for ablation)
    _, mid_v = experiment.arm_settings("scheduled_drophead", experiment.load_config(
        dict(CARD.presets["cpu"], turn=0.5)))
    assert mid_v.turn_step == cfg.steps // 2 and mid_v.rate(cfg.steps // 2) == 0.0


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
    model = TextClassifier(vocab=50, max_len=10, n_layer=3)
    set_drophead_rate(model, 0.25)
    rates = [m.p for m in model.modules() if isinstance(m, DropHead)]
    assert rates == [0.25] * 3


# ---------------------------------------------------------------- statistics and the experiment


from reproductions.api import RunContext  # noqa: E402
from reproductions.data import DatasetMissing  # noqa: E402
from reproductions.drophead import CARD  # noqa: E402
from reproductions.drophead import experiment  # noqa: E402

from support.helpers import shared_path  # noqa: E402


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


def _first_batches(arm: str, seed: int, cfg, train, test, vocab, ctx, steps: int = 2):
    """(local indices of the first `steps` batches, initial weights) as train_one really used them."""
    seen, init = [], {}

    def on_batch(step, idx, model):
        seen.append(idx.tolist())
        if step == 0:
            init.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    experiment.train_one(arm, seed, cfg, train, test, vocab, ctx, on_batch=on_batch)
    return seen, init


def test_arms_share_data_order_and_init_and_differ_only_in_regulariser(tmp_path):
    cfg = experiment.load_config(dict(CARD.presets["smoke"], steps=2, dev_subset=50))
    ctx = RunContext(tmp_path / "run", data_dir=tmp_path / "none", preset="smoke")
    splits = experiment.load_data(cfg, ctx)
    train, vocab = splits.train, splits.vocab_size
    ctx.begin_final_evaluation()
    test = splits.test.open()
    batches_a, init_a = _first_batches("none", 3, cfg, train, test, vocab, ctx)
    batches_b, init_b = _first_batches("scheduled_drophead", 3, cfg, train, test, vocab, ctx)
    batches_c, init_c = _first_batches("none", 4, cfg, train, test, vocab, ctx)
    assert batches_a == batches_b and len(batches_a[0]) == cfg.batch_size
    assert init_a.keys() == init_b.keys() and all(torch.equal(init_a[k], init_b[k]) for k in init_a)
    # ... and the check can fail: another seed gives another order and other weights
    assert batches_a != batches_c
    assert not torch.equal(init_a["tok.weight"], init_c["tok.weight"])
    # the arms differ in their regulariser only
    assert experiment.arm_settings("none", cfg) == (0.0, None)
    drop, sched = experiment.arm_settings("scheduled_drophead", cfg)
    assert drop == cfg.dropout and sched.kind == "v" and sched.rate(0) == cfg.drophead_start
    with pytest.raises(ValueError):
        experiment.arm_settings("dropconnect", cfg)


def test_ranks_see_disjoint_rows_whose_union_is_the_training_slice(tmp_path):
    """With 2 processes each rank trains on its rows of the same global batches: over one epoch the
    two ranks' examples are disjoint and together are the whole training slice, each example once."""
    n, bs = 96, 32
    seen = []
    for rank in (0, 1):
        ctx = RunContext(tmp_path, rank=rank, world_size=2)
        batches = experiment.global_batches(n, bs, seed=5)
        rows = [experiment.local_rows(next(batches), ctx) for _ in range(n // bs)]  # one epoch
        assert all(len(r) == ctx.local_batch(bs) for r in rows)
        seen.append([i for r in rows for i in r.tolist()])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(n))
    one = RunContext(tmp_path)  # one process: the whole global batch
    assert experiment.local_rows(next(experiment.global_batches(n, bs, seed=5)), one).tolist() == \
        next(experiment.global_batches(n, bs, seed=5)).tolist()


def test_config_is_typed_and_old_names_are_refused():
    from reproductions.api import ConfigError
    from reproductions.errors import RunnerUsageError
    from reproductions.run_request import resolve_config

    cfg = experiment.load_config(CARD.presets["cpu"])
    assert isinstance(cfg, experiment.DropHeadConfig) and cfg.n_head == CARD.presets["cpu"]["n_head"]
    assert isinstance(cfg.arms, tuple) and cfg.arms == tuple(CARD.presets["cpu"]["arms"])  # a JSON list becomes a tuple
    with pytest.raises(ConfigError, match="unknown config keys"):
        experiment.load_config({**CARD.presets["cpu"], "heads": 4})
    with pytest.raises(ConfigError, match="unknown arms"):
        experiment.load_config({**CARD.presets["cpu"], "arms": ["none", "dropconnect"]})
    for old in ("heads", "layers"):
        with pytest.raises(RunnerUsageError, match="unknown --set key"):
            resolve_config(CARD, "cpu", {old: 2})
    for preset in CARD.presets.values():  # every preset names every key, so --set works everywhere
        assert set(preset) == {f.name for f in __import__("dataclasses").fields(experiment.DropHeadConfig)}


def test_cpu_preset_without_sst2_is_a_clear_error(tmp_path):
    ctx = RunContext(tmp_path / "run", data_dir=tmp_path / "empty", preset="cpu")
    with pytest.raises(DatasetMissing, match="sst2"):
        experiment.load_data(experiment.load_config(CARD.config("cpu")), ctx)


def test_smoke_without_sst2_falls_back_to_synthetic_and_says_so(tmp_path):
    ctx = RunContext(tmp_path / "run", data_dir=tmp_path / "empty", preset="smoke")
    splits = experiment.load_data(experiment.load_config(CARD.config("smoke")), ctx)
    assert ctx.notes["data"].startswith("synthetic") and len(splits.train[0]) == 2000 and splits.vocab_size > 10


def test_smoke_experiment_on_real_sst2_reports_every_arm_and_writes_the_plot(tmp_path):
    """On the real files (CI has ../shared): the run must say it used GLUE SST-2, with the subset
    sizes asked for, so a broken loader cannot hide behind the synthetic fallback."""
    data_dir = shared_path("data")
    ctx = RunContext(tmp_path / "run", data_dir=data_dir, preset="smoke", seed=3)
    cfg = CARD.config("smoke", {"steps": 15, "seeds": 2, "dev_subset": 200})
    m = experiment.run(cfg, ctx)
    assert ctx.notes["data"].startswith("GLUE SST-2: train.tsv"), ctx.notes["data"]
    assert "2000 train / 0 validation / 200 test" in ctx.notes["data"] and "synthetic" not in ctx.notes["data"]
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
    cfg = experiment.load_config(CARD.config("smoke", {"steps": 10}))
    ctx = RunContext(tmp_path / "run", data_dir=data_dir, preset="smoke")
    splits = experiment.load_data(cfg, ctx)
    train, vocab = splits.train, splits.vocab_size
    ctx.begin_final_evaluation()
    test = splits.test.open()
    r1 = experiment.train_one("scheduled_drophead", 5, cfg, train, test, vocab, ctx)
    r2 = experiment.train_one("scheduled_drophead", 5, cfg, train, test, vocab, ctx)
    assert r1["accuracy"] == r2["accuracy"] and r1["train_accuracy"] == r2["train_accuracy"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built in")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    """`--nproc 2` on the CPU (gloo) through the runner: world_size 2 recorded, each rank trained on
    half of every global batch (examples counted per rank), and the `none` arm (no randomness in
    training) ends with the one-process run's loss and accuracy. Tolerance: 1e-4 relative on the
    final loss (fp32 gradients summed in another order over 20 AdamW steps) and one test sentence
    (1/200) on the accuracy. Synthetic data: always present, and the split logic is the same."""
    import json

    from reproductions import runner
    from reproductions.runner import RunRequest

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sets = {"steps": 20, "seeds": 1, "arms": ["none"], "train_subset": 640, "dev_subset": 200}

    def run(out, nproc):
        result = runner.run(RunRequest(name="drophead", preset="smoke", overrides=sets, out=out, nproc=nproc,
                                       data_dir=tmp_path / "no-data", progress=False), echo=lambda line: None)
        assert result.status == "completed", result.error
        return result

    one, two = run(tmp_path / "one", 1), run(tmp_path / "two", 2)
    rec = json.loads((two.run_dir / "run.json").read_text())
    assert rec["metrics"]["world_size"] == 2 and rec.get("world_size", 2) == 2
    assert rec["notes"]["data_parallel"] == {"world_size": 2, "global_batch": 32, "local_batch": 16,
                                             "rows_of_each_batch": "rank::world_size"}
    assert rec["notes"]["data"].startswith("synthetic")
    assert two.metrics["examples_seen_rank0"] == 20 * 16 and two.metrics["examples_seen_all_ranks"] == 20 * 32
    assert one.metrics["examples_seen_rank0"] == 20 * 32
    a, b = one.metrics["arms"]["none"], two.metrics["arms"]["none"]
    assert b["final_loss_mean"] == pytest.approx(a["final_loss_mean"], rel=1e-4)
    assert b["accuracy"]["mean"] == pytest.approx(a["accuracy"]["mean"], abs=1 / 200 + 1e-9)
    assert b["train_accuracy_mean"] == pytest.approx(a["train_accuracy_mean"], abs=1 / 640 + 1e-9)


# ---------------------------------------------------------------- the rate-matched arm and the validation split

@pytest.mark.parametrize("p_start,p_end,total,turn", [(0.2, 0.2, 3000, 300), (0.3, 0.1, 100, 10), (0.1, 0.4, 57, 20)])
def test_v_schedule_mean_rate_matches_the_closed_form(p_start, p_end, total, turn):
    """Mean over steps 0..T-1 of the V: the descent sums to p_start (turn + 1) / 2, the ascent
    (steps turn+1..T-1) to p_end (T - 1 - turn) / 2 — arithmetic series summed by hand."""
    s = DropHeadSchedule("v", total_steps=total, p_start=p_start, p_end=p_end, turn_step=turn)
    oracle = (p_start * (turn + 1) / 2 + p_end * (total - 1 - turn) / 2) / total
    assert s.mean_rate() == pytest.approx(oracle, rel=1e-12)
    assert s.peak_rate() == pytest.approx(max(p_start, p_end))
    if p_start == p_end:
        assert s.mean_rate() == pytest.approx(p_start / 2)  # whatever the turn: two triangles of height p


def test_rate_matched_arm_drops_at_the_schedules_mean_and_the_fixed_arm_at_its_peak(tmp_path):
    """Read the rate every DropHead module really had at each training step (through on_batch):
    the scheduled arm's average equals the drophead_mean arm's constant rate, and the drophead
    arm's constant equals the schedule's largest rate, as the cpu preset sets them."""
    cfg = experiment.load_config(CARD.config("smoke", {"steps": 40, "train_subset": 320, "dev_subset": 50,
                                                       "drophead_start": 0.3, "drophead_end": 0.3, "drophead": 0.3}))
    ctx = RunContext(tmp_path / "run", data_dir=tmp_path / "none", preset="smoke")
    splits = experiment.load_data(cfg, ctx)
    ctx.begin_final_evaluation()
    test = splits.test.open()

    def rates_of(arm):
        seen = []

        def on_batch(step, idx, model):
            ps = {m.p for m in model.modules() if isinstance(m, DropHead)}
            assert len(ps) == 1  # every layer at the same rate
            seen.append(ps.pop())

        r = experiment.train_one(arm, 1, cfg, splits.train, test, splits.vocab_size, ctx, on_batch=on_batch)
        assert r["mean_drophead_rate"] == pytest.approx(sum(seen) / len(seen))
        return seen

    sched, matched, fixed = rates_of("scheduled_drophead"), rates_of("drophead_mean"), rates_of("drophead")
    assert len(set(matched)) == 1 and len(set(fixed)) == 1 and len(set(sched)) > 10
    assert matched[0] == pytest.approx(sum(sched) / len(sched), rel=1e-12)
    assert matched[0] == pytest.approx(0.15)  # p/2 when start == end (closed form above)
    assert fixed[0] == pytest.approx(max(sched)) == 0.3
    assert experiment.arm_settings("drophead_mean", cfg)[0] == cfg.dropout  # on top of the same dropout


def test_cpu_preset_arms_are_the_issue_s_rate_matched_design():
    p = CARD.presets["cpu"]
    cfg = experiment.load_config(p)
    assert {"dropout", "drophead", "drophead_mean", "scheduled_drophead"} <= set(cfg.arms)
    assert cfg.drophead == max(cfg.drophead_start, cfg.drophead_end)  # the fixed arm sits at the V's peak
    assert cfg.n_head == 8 and 2 <= cfg.n_layer <= 4 and cfg.val_size > 0 and cfg.train_subset is None
    assert isinstance(cfg.seeds, int) and cfg.seeds >= 8 and CARD.presets["gpu"]["seeds"] >= 16
    keys = {c.key for c in CARD.claims}
    assert "scheduled_vs_rate_matched" in keys
    matched = next(c for c in CARD.claims if c.key == "scheduled_vs_rate_matched")
    assert matched.arms == ("arms.scheduled_drophead", "arms.drophead_mean")


def test_validation_is_carved_out_of_train_fixed_disjoint_and_the_test_stays_sealed(tmp_path):
    from reproductions.data import load_sst2
    from reproductions.drophead.data import carve_validation
    from reproductions.splits import TestSplitSealed

    rows = load_sst2(shared_path("data"))["train"]
    tagged = [(f"{i}\t{s}", y) for i, (s, y) in enumerate(rows)]  # the index makes repeated sentences distinct
    train, val = carve_validation(tagged, 2000)
    train2, val2 = carve_validation(tagged, 2000)
    assert val == val2 and train == train2  # fixed: the same carve-out every time
    ids_train = [int(s.split("\t")[0]) for s, _ in train]
    ids_val = {int(s.split("\t")[0]) for s, _ in val}
    assert len(ids_val) == 2000 and not ids_val & set(ids_train)
    assert sorted(ids_val | set(ids_train)) == list(range(67349))  # GLUE SST-2 train size (data README)
    assert ids_train == sorted(ids_train)  # the rest keeps its order
    assert carve_validation(tagged, 2000, seed=1)[1] != val  # the seed is what fixes it
    with pytest.raises(ValueError):
        carve_validation(tagged[:10], 10)
    # through the loader: the sizes are recorded, and dev (the test set) cannot be read yet
    cfg = experiment.load_config(CARD.config("smoke", {"val_size": 2000, "train_subset": None, "dev_subset": None}))
    ctx = RunContext(tmp_path / "run", data_dir=shared_path("data"), preset="smoke")
    splits = experiment.load_data(cfg, ctx)
    assert "65349 train / 2000 validation / 872 test" in ctx.notes["data"], ctx.notes["data"]
    assert len(splits.val[1]) == 2000 and len(splits.train[1]) == 65349
    with pytest.raises(TestSplitSealed):
        splits.test.open()


def test_length_buckets_keep_each_epoch_a_permutation_and_cut_the_padding():
    """Bucketed batches: one epoch still uses every sentence once (but the dropped tail), the same
    seed gives the same batches, and the padded tokens of the batches (oracle: summed by hand
    from the lengths) fall well below those of random batches of the same seed."""
    gen = torch.Generator().manual_seed(11)
    lengths = torch.randint(1, 50, (3200,), generator=gen)
    n, bs = len(lengths), 32

    def epoch(**kw):
        it = experiment.global_batches(n, bs, seed=9, **kw)
        return [next(it) for _ in range(n // bs)]

    plain, bucketed = epoch(), epoch(lengths=lengths, pool_batches=20)
    assert sorted(torch.cat(bucketed).tolist()) == list(range(n))  # 3200 = 100 full batches: nothing dropped
    assert all(torch.equal(a, b) for a, b in zip(bucketed, epoch(lengths=lengths, pool_batches=20)))
    padded = lambda batches: sum(len(b) * int(lengths[b].max()) for b in batches)  # noqa: E731
    assert padded(bucketed) < 0.7 * padded(plain)
    # the batches are not in length order: the epoch's batches are shuffled after bucketing
    longest = [int(lengths[b].max()) for b in bucketed]
    assert longest != sorted(longest)
    # and the cpu preset uses it
    assert CARD.presets["cpu"]["length_buckets"] > 0
