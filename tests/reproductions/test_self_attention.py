"""Our attention against torch's: outputs and gradients, with masks, odd lengths, batch 1.

The comparison is only worth something if it can fail, so the classic mistakes are
kept here as deliberately wrong variants and the same comparison must reject each.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from reproductions.self_attention.model import (
    MultiHeadSelfAttention,
    SingleHeadSelfAttention,
    causal_mask,
    padding_mask,
)

TOL = 1e-5


def _masks(b: int, t: int, kind: str):
    """(ours: bool True = attend, broadcastable to (B, T, T)) for each mask kind; lengths for padding."""
    lengths = torch.tensor([t - 2 * i for i in range(b)]).clamp(min=1)  # shorter and shorter rows
    if kind == "none":
        return None, lengths
    if kind == "causal":
        return causal_mask(t), lengths
    if kind == "padding":
        return padding_mask(lengths, t), lengths
    if kind == "causal+padding":
        return causal_mask(t)[None] & padding_mask(lengths, t), lengths
    raise ValueError(kind)


def _grads(module: nn.Module, x: torch.Tensor, out: torch.Tensor, upstream: torch.Tensor):
    module.zero_grad()
    x.grad = None
    (out * upstream).sum().backward()
    return [x.grad.clone()] + [p.grad.clone() for p in module.parameters()]


def _max_err(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


# ---------------------------------------------------------------- single head vs SDPA

def _single_head_vs_sdpa(module: SingleHeadSelfAttention, b: int, t: int, mask_kind: str, seed: int = 0) -> float:
    """Max abs difference (output and every gradient) between ``module`` and SDPA on the same projections."""
    g = torch.Generator().manual_seed(seed)
    d_model = module.q.in_features
    x = torch.randn(b, t, d_model, generator=g, requires_grad=True)
    upstream = torch.randn(b, t, d_model, generator=g)
    mask, _ = _masks(b, t, mask_kind)

    ours = module(x, mask)
    g_ours = _grads(module, x, ours, upstream)

    q, k, v = module.q(x), module.k(x), module.v(x)
    ref = module.out(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    g_ref = _grads(module, x, ref, upstream)
    return max((ours - ref).abs().max().item(), _max_err(g_ours, g_ref))


@pytest.mark.parametrize("b,t", [(1, 1), (1, 7), (3, 13), (2, 32)])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "causal+padding"])
def test_single_head_matches_sdpa(b, t, mask_kind):
    torch.manual_seed(1)
    assert _single_head_vs_sdpa(SingleHeadSelfAttention(24, 16), b, t, mask_kind) < TOL


def test_single_head_matches_nn_multihead_attention_with_one_head():
    torch.manual_seed(2)
    ours, ref = SingleHeadSelfAttention(20), nn.MultiheadAttention(20, 1, batch_first=True)
    with torch.no_grad():
        w_q, w_k, w_v = ref.in_proj_weight.chunk(3)
        b_q, b_k, b_v = ref.in_proj_bias.chunk(3)
        for lin, w, bias in ((ours.q, w_q, b_q), (ours.k, w_k, b_k), (ours.v, w_v, b_v)):
            lin.weight.copy_(w)
            lin.bias.copy_(bias)
        ours.out.load_state_dict(ref.out_proj.state_dict())
    x = torch.randn(2, 9, 20, requires_grad=True)
    mask = causal_mask(9)
    a = ours(x, mask)
    r, _ = ref(x, x, x, attn_mask=~mask, need_weights=False)  # MHA's bool mask: True = blocked
    assert (a - r).abs().max().item() < TOL
    a.square().sum().backward()
    ga = x.grad.clone()
    x.grad = None
    r.square().sum().backward()
    assert (ga - x.grad).abs().max().item() < TOL
    assert (ours.q.weight.grad - ref.in_proj_weight.grad[:20]).abs().max().item() < TOL


# ---------------------------------------------------------------- multi-head vs nn.MultiheadAttention

def _copy_from_torch(ours: MultiHeadSelfAttention, ref: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        ours.qkv.weight.copy_(ref.in_proj_weight)
        ours.qkv.bias.copy_(ref.in_proj_bias)
        ours.out.weight.copy_(ref.out_proj.weight)
        ours.out.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("b,t", [(1, 5), (3, 11), (2, 16)])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "causal+padding"])
def test_multi_head_matches_nn_multihead_attention(b, t, mask_kind):
    torch.manual_seed(3)
    d, h = 32, 4
    ref = nn.MultiheadAttention(d, h, batch_first=True)
    ours = MultiHeadSelfAttention(d, h)
    _copy_from_torch(ours, ref)
    x = torch.randn(b, t, d, requires_grad=True)
    upstream = torch.randn(b, t, d)
    mask, lengths = _masks(b, t, mask_kind)

    out = ours(x, mask)
    g_ours = [*_grads(ours, x, out, upstream)]

    kw = {}
    if mask_kind in ("causal", "causal+padding"):
        kw["attn_mask"] = ~causal_mask(t)  # torch's bool masks mean "blocked"
    if mask_kind in ("padding", "causal+padding"):
        kw["key_padding_mask"] = ~padding_mask(lengths, t)[:, 0, :]
    r, _ = ref(x, x, x, need_weights=False, **kw)
    g_ref = _grads(ref, x, r, upstream)  # same parameter order: in_proj w, b, out_proj w, b

    assert (out - r).abs().max().item() < TOL
    assert _max_err(g_ours, g_ref) < TOL


@pytest.mark.parametrize("mask_kind", ["none", "causal+padding"])
def test_multi_head_matches_sdpa_per_head(mask_kind):
    torch.manual_seed(4)
    b, t, d, h = 2, 9, 24, 3
    ours = MultiHeadSelfAttention(d, h)
    x = torch.randn(b, t, d)
    mask, _ = _masks(b, t, mask_kind)
    # split by hand (not with ours.split_heads), so a wrong split would show here too
    q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in ours.qkv(x).split(d, -1))
    sdpa_mask = None if mask is None else mask.unsqueeze(1)
    heads = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask)
    ref = ours.out(heads.transpose(1, 2).reshape(b, t, d))
    assert (ours(x, mask) - ref).abs().max().item() < TOL


# ---------------------------------------------------------------- the comparison must catch mistakes

class KeyQueryTransposed(SingleHeadSelfAttention):
    """Mistake: scores[i, j] = k_i · q_j (k qᵀ) — the query and key roles swapped."""

    def forward(self, x, mask=None):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = k @ q.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return self.out(scores.softmax(-1) @ v)


class Unscaled(SingleHeadSelfAttention):
    """Mistake: no 1/√d — softmax saturates as d grows."""

    def forward(self, x, mask=None):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return self.out(scores.softmax(-1) @ v)


class SoftmaxOverQueries(SingleHeadSelfAttention):
    """Mistake: softmax over dim -2, so each key's weights sum to 1 instead of each query's."""

    def forward(self, x, mask=None):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return self.out(scores.softmax(-2).nan_to_num() @ v)


@pytest.mark.parametrize("wrong", [KeyQueryTransposed, Unscaled, SoftmaxOverQueries])
@pytest.mark.parametrize("mask_kind", ["none", "causal"])
def test_comparison_rejects_classic_mistakes(wrong, mask_kind):
    torch.manual_seed(5)
    module = wrong(24, 16)  # q and k have different random weights, so q·kᵀ is not symmetric
    err = _single_head_vs_sdpa(module, 2, 9, mask_kind)
    assert err > 1e-3, f"{wrong.__name__} passed the comparison (err {err:g}): the test does not discriminate"


def test_transposed_scores_with_tied_q_k_show_only_in_gradients():
    """With W_q = W_k the score matrix is symmetric and k qᵀ = q kᵀ: the *outputs* cannot
    see the swap, masked or not. The gradients still can — the swapped variant sends the
    query-side gradient into W_k and the key-side one into W_q — which is why the
    comparison checks parameter gradients too, not only outputs."""
    torch.manual_seed(6)
    wrong, right = KeyQueryTransposed(16, 16), SingleHeadSelfAttention(16, 16)
    with torch.no_grad():
        wrong.k.load_state_dict(wrong.q.state_dict())
    right.load_state_dict(wrong.state_dict())
    x = torch.randn(2, 9, 16, requires_grad=True)
    for mask in (None, causal_mask(9)):
        assert (wrong(x, mask) - right(x, mask)).abs().max().item() < TOL
    assert _single_head_vs_sdpa(wrong, 2, 9, "none") > 1e-3  # caught through d/dW_q, d/dW_k


def test_fully_masked_row_is_nan_like_sdpa():
    module = SingleHeadSelfAttention(8)
    x = torch.randn(1, 3, 8)
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    mask[:, 1:, :] = True  # query 0 sees nothing
    out = module(x, mask)
    assert torch.isnan(out[0, 0]).all() and not torch.isnan(out[0, 1:]).any()


# ---------------------------------------------------------------- the experiment

def test_smoke_experiment_learns_reversal_and_matches_sdpa(tmp_path):
    from reproductions.api import RunContext
    from reproductions.self_attention import CARD
    from reproductions.self_attention.experiment import run

    ctx = RunContext(tmp_path, preset="smoke")
    m = run(CARD.config("smoke"), ctx)
    assert m["max_abs_err_vs_sdpa"] < 1e-5
    assert m["accuracy"] >= CARD.presets["smoke"]["target_accuracy"], m
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") >= 2


def test_reversal_is_not_solvable_without_attention(tmp_path):
    """Control: the same model with attention switched off (each position sees only itself)
    stays near chance (1/vocab), so the accuracy above is attention's doing."""
    from reproductions.self_attention.experiment import ReversalConfig, evaluate, reversal_batch
    from reproductions.self_attention.model import TinyTransformer

    torch.manual_seed(0)
    cfg = ReversalConfig(seq_len=8, vocab=10, batch_size=64, eval_batches=4)
    model = TinyTransformer(10, 8, 32, 2, 1, 64)
    only_self = torch.eye(8, dtype=torch.bool)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        x, y = reversal_batch(64, 8, 10, g, "cpu")
        loss = F.cross_entropy(model(x, only_self).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()

    class Masked(nn.Module):
        def forward(self, x):
            return model(x, only_self)

    acc, _ = evaluate(Masked(), cfg, torch.Generator().manual_seed(1), "cpu")
    assert acc < 0.3


# ---------------------------------------------------------------- one core, true fp32, data parallel

def test_modules_and_bench_use_the_one_attention_core(monkeypatch):
    """Both modules and the bench go through `attention.attend`: replacing it changes all three."""
    import importlib.util
    import sys
    from pathlib import Path

    from reproductions.self_attention import model as model_mod

    calls = []

    def spy(q, k, v, mask=None, **kw):
        calls.append(q.shape)
        return torch.zeros(*q.shape[:-1], v.size(-1))

    monkeypatch.setattr(model_mod, "attend", spy)
    x = torch.randn(2, 5, 8)
    SingleHeadSelfAttention(8)(x)
    MultiHeadSelfAttention(8, 2)(x)
    assert calls == [(2, 5, 8), (2, 2, 5, 4)]  # (B, T, d) for one head; (B, H, T, d/H) for two
    bench_path = Path(__file__).resolve().parents[2] / "bench" / "attention.py"
    spec = importlib.util.spec_from_file_location("bench_attention", bench_path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_attention", bench)
    spec.loader.exec_module(bench)
    from reproductions.self_attention import attention

    assert bench.attend is attention.attend  # the bench times the shared function, not a copy
    q = torch.randn(1, 2, 6, 4)
    assert torch.equal(bench.ours(q, q, q, causal_mask(6)), attention.attend(q, q, q, causal_mask(6)))


def test_true_fp32_turns_tf32_off_inside_and_restores_it():
    from reproductions.self_attention.experiment import true_fp32

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with true_fp32():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_exactness_check_runs_with_tf32_off(monkeypatch):
    """Even when the runner has turned TF32 on (as it does on CUDA), the attention inside the
    check sees it off."""
    from reproductions.self_attention import experiment, model as model_mod

    seen = []
    real = model_mod.attend

    def spy(*a, **kw):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return real(*a, **kw)

    monkeypatch.setattr(model_mod, "attend", spy)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        err = experiment.max_abs_err_vs_sdpa(torch.device("cpu"))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    assert seen and all(flags == (False, False) for flags in seen)
    assert err < 1e-5


def test_ranks_take_disjoint_rows_whose_union_is_the_global_batch(tmp_path):
    from reproductions.api import RunContext

    for world in (2, 4):
        parts = [list(RunContext(tmp_path, rank=r, world_size=world).shard(64)) for r in range(world)]
        assert all(len(p) == RunContext(tmp_path, world_size=world).local_batch(64) for p in parts)
        assert sorted(i for p in parts for i in p) == list(range(64))  # disjoint, and nothing left out


def test_old_hyperparameter_names_are_refused():
    from reproductions.errors import RunnerUsageError
    from reproductions.run_request import resolve_config
    from reproductions.self_attention import CARD

    for old in ("heads", "layers"):
        with pytest.raises(RunnerUsageError, match="unknown --set key"):
            resolve_config(CARD, "smoke", {old: 2})
    config, _ = resolve_config(CARD, "smoke", {"n_head": 4, "n_layer": 2})
    assert config["n_head"] == 4 and config["n_layer"] == 2
    assert set(CARD.presets["gpu"]) == set(CARD.presets["smoke"]) == set(CARD.presets["cpu"])
    assert CARD.budget_s["gpu"] <= 90


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built in")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    """`--nproc 2` on the CPU (gloo): world_size 2 is recorded, each rank trained on half of each
    global batch, and the metrics equal the one-process run's within float tolerance (DDP averages
    the two half-batch gradients into the full-batch one; only the summation order differs)."""
    import json

    from reproductions import runner
    from reproductions.runner import RunRequest

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sets = {"steps": 40, "eval_batches": 2}
    one = runner.run(RunRequest(name="self-attention", preset="smoke", overrides=sets, out=tmp_path / "one",
                                progress=False), echo=lambda line: None)
    two = runner.run(RunRequest(name="self-attention", preset="smoke", overrides=sets, out=tmp_path / "two",
                                nproc=2, progress=False), echo=lambda line: None)
    assert one.status == "completed", one.error
    assert two.status == "completed", two.error
    rec = json.loads((two.run_dir / "run.json").read_text())
    assert rec["metrics"]["world_size"] == 2 and rec["notes"]["data_parallel"]["local_batch"] == 32
    assert rec.get("world_size", 2) == 2
    # the tolerance: 40 AdamW steps from identical starts, fp32, gradients summed in another order
    assert two.metrics["final_loss"] == pytest.approx(one.metrics["final_loss"], rel=1e-3)
    assert two.metrics["accuracy"] == pytest.approx(one.metrics["accuracy"], abs=0.01)
    assert one.metrics["max_abs_err_vs_sdpa"] < 1e-5 and two.metrics["max_abs_err_vs_sdpa"] < 1e-5
    logged = [json.loads(line) for line in (two.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == [r["step"] for r in (
        json.loads(line) for line in (one.run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
