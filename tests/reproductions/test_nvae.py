"""Tests of the NVAE reproduction: each defining piece against an independent reference."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from reproductions.api import RunContext
from reproductions.data import DatasetMissing
from reproductions.nvae import CARD
from reproductions.nvae.cells import EncoderCell, GenerativeCell, SqueezeExcite
from reproductions.nvae.distributions import Normal, bernoulli_log_prob, kl_normal, kl_residual
from reproductions.nvae.experiment import (BatchStream, ConfigError, ExperimentConfig, arm_model_config,
                                           evaluate, load_data, run, schedule)
from reproductions.nvae.likelihood import importance_weighted_log_likelihood, iwae_bound
from reproductions.nvae.model import NVAE, NVAEConfig, count_params, readjust_batchnorm
from reproductions.nvae.regularizers import (SpectralRegularizer, balanced_kl, bn_scale_penalty, kl_warmup,
                                             power_iteration, spectral_norm_estimate)
from support.helpers import run_one_and_two_processes, shared_path
TINY = NVAEConfig(channels=4, latent_channels=2, groups_per_scale=(1, 2), pre_downs=2, expand=2)


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------ distributions

def test_residual_normal_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_p, ls_p = torch.randn(3, 4, 5, generator=g) * 2, torch.randn(3, 4, 5, generator=g)
    dmu, dls = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g) * 0.5
    ours = kl_residual(dmu, dls, ls_p)
    q = torch.distributions.Normal(mu_p + dmu, (ls_p + dls).exp())
    p = torch.distributions.Normal(mu_p, ls_p.exp())
    ref = torch.distributions.kl_divergence(q, p)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(kl_normal(mu_p + dmu, ls_p + dls, mu_p, ls_p), ref, rtol=1e-5, atol=1e-5)
    # the KL does not depend on the prior mean: shifting both leaves it unchanged
    torch.testing.assert_close(kl_residual(dmu, dls, ls_p), ours)


def test_residual_posterior_object_uses_the_shortcut_and_agrees():
    g = torch.Generator().manual_seed(1)
    prior = Normal.from_params(torch.randn(2, 6, 3, 3, generator=g))
    q = prior.residual(torch.randn(2, 6, 3, 3, generator=g))
    torch.testing.assert_close(q.kl(prior), kl_normal(q.mu, q.log_sigma, prior.mu, prior.log_sigma),
                               rtol=1e-5, atol=1e-5)
    z = q.rsample()
    ref = torch.distributions.Normal(q.mu, q.sigma).log_prob(z)
    torch.testing.assert_close(q.log_prob(z), ref, rtol=1e-5, atol=1e-5)


def test_bernoulli_log_prob_matches_torch():
    logits = torch.randn(4, 1, 28, 28)
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_log_prob(logits, x), ref)


# ------------------------------------------------------------------ importance-weighted bound

def _linear_gaussian(dim_z=2, dim_x=3, noise=0.5, seed=0):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, noise^2 I): log p(x) and p(z|x) in closed form."""
    g = torch.Generator().manual_seed(seed)
    W, b = torch.randn(dim_x, dim_z, generator=g, dtype=torch.float64), torch.randn(dim_x, generator=g,
                                                                                     dtype=torch.float64)
    cov_x = W @ W.T + noise ** 2 * torch.eye(dim_x, dtype=torch.float64)
    marginal = torch.distributions.MultivariateNormal(b, cov_x)
    post_cov = torch.linalg.inv(torch.eye(dim_z, dtype=torch.float64) + W.T @ W / noise ** 2)

    def posterior(x):  # exact p(z|x): N(post_cov W^T (x-b) / noise^2, post_cov)
        return torch.distributions.MultivariateNormal((x - b) @ W @ post_cov / noise ** 2, post_cov)

    def log_joint(x, z):
        return (torch.distributions.MultivariateNormal(torch.zeros(dim_z, dtype=torch.float64),
                                                       torch.eye(dim_z, dtype=torch.float64)).log_prob(z)
                + torch.distributions.Normal(z @ W.T + b, noise).log_prob(x).sum(-1))

    return marginal, posterior, log_joint


def test_iwae_is_exact_with_the_true_posterior_and_converges_with_k():
    torch.manual_seed(0)
    marginal, posterior, log_joint = _linear_gaussian()
    x = marginal.sample((5,))
    exact = marginal.log_prob(x)

    def weights_true(xs):
        q = posterior(xs)
        z = q.sample()
        return log_joint(xs, z) - q.log_prob(z)

    # with q = p(z|x) every weight equals p(x): the bound is exact for any k
    for k in (1, 7):
        torch.testing.assert_close(importance_weighted_log_likelihood(weights_true, x, k, max_batch=8), exact)

    def weights_broad(xs):  # a deliberately poor proposal: prior-centred, too wide
        q = torch.distributions.Normal(torch.zeros(xs.shape[0], 2, dtype=torch.float64), 1.5)
        z = q.sample()
        return log_joint(xs, z) - q.log_prob(z).sum(-1)

    gaps = []
    for k in (1, 10, 1000):
        est = torch.stack([importance_weighted_log_likelihood(weights_broad, x, k, max_batch=4096)
                           for _ in range(20)]).mean(0)
        gaps.append((exact - est).mean().item())
    assert gaps[0] > gaps[1] > gaps[2] >= -0.02, gaps  # the bound tightens with k
    assert gaps[2] < 0.1 * gaps[0]


def test_iwae_bound_is_log_mean_exp():
    w = torch.tensor([[0.0, 1.0], [math.log(3.0), 2.0]])
    torch.testing.assert_close(iwae_bound(w), torch.log(torch.exp(w).mean(0)))
    big = torch.full((4, 1), 1000.0)  # stable where exp() overflows
    torch.testing.assert_close(iwae_bound(big), torch.tensor([1000.0]))


# ------------------------------------------------------------------ regularisers

def test_power_iteration_spectral_norm_matches_matrix_norm():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(3, 16, 40, generator=g)
    u = torch.nn.functional.normalize(torch.randn(3, 16, generator=g), dim=1)
    v = torch.nn.functional.normalize(torch.randn(3, 40, generator=g), dim=1)
    u, v = power_iteration(W, u, v, iters=200)
    torch.testing.assert_close(spectral_norm_estimate(W, u, v), torch.linalg.matrix_norm(W, ord=2), rtol=1e-3,
                               atol=1e-4)


def test_spectral_regularizer_converges_over_steps_and_has_gradient():
    torch.manual_seed(0)
    model = NVAE(TINY)
    reg = SpectralRegularizer(model, init_iters=0)
    for _ in range(60):  # one power step per call, carried over like training steps
        total = reg()
    exact = 0.0
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):  # convolutions only (the official recipe); SE Linears are left out
            exact += torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2).item()
    assert total.item() == pytest.approx(exact, rel=0.02)
    total.backward()
    # weight norm: the gradient reaches the direction v and the per-channel scale g of the stem
    params = model.stem.parametrizations.weight
    assert params.original0.grad.abs().sum() > 0 and params.original1.grad.abs().sum() > 0
    se = next(m for m in model.modules() if isinstance(m, SqueezeExcite))
    assert se.fc1.weight.grad is None  # no spectral term on the SE layers
    with_linear = SpectralRegularizer(model, init_iters=60, include_linear=True)()
    assert with_linear.item() > total.item() + 0.1


def test_kl_warmup_and_balancing():
    assert kl_warmup(0, 100) == pytest.approx(1e-4)
    assert kl_warmup(50, 100) == pytest.approx(0.5)
    assert kl_warmup(500, 100) == 1.0
    kl = torch.tensor([[4.0, 1.0], [2.0, 1.0]])
    sizes = torch.tensor([1.0, 1.0])
    assert balanced_kl(kl, 1.0, sizes).item() == pytest.approx(4.0)  # plain ELBO term at beta = 1
    # during warm-up the group carrying more KL gets the larger coefficient (mean coefficient 1)
    m = kl.mean(0) + 0.01
    gamma = m / m.mean()
    assert balanced_kl(kl, 0.5, sizes).item() == pytest.approx(0.5 * (kl * gamma).sum(1).mean().item())
    assert gamma[0] > 1 > gamma[1]


# ------------------------------------------------------------------ cells and model shapes

def test_cells_shapes_and_squeeze_excite_gate():
    x = torch.randn(2, 8, 16, 16)
    assert EncoderCell(8)(x).shape == (2, 8, 16, 16)
    assert EncoderCell(8, 16, downsample=True)(x).shape == (2, 16, 8, 8)
    assert GenerativeCell(8)(x).shape == (2, 8, 16, 16)
    assert GenerativeCell(8, 4, upsample=True)(x).shape == (2, 4, 32, 32)
    se = SqueezeExcite(8)
    y = se(x)
    gate = y / x  # a per-channel factor in (0, 1), constant over space
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)
    assert (gate > 0).all() and (gate < 1).all()


def test_shapes_through_every_scale():
    cfg = NVAEConfig(channels=4, latent_channels=3, groups_per_scale=(1, 2, 2), pre_downs=1, expand=2)
    model = NVAE(cfg)
    x = (torch.rand(5, 1, 28, 28) > 0.5).float()
    feats = model.encode(x)
    # one feature per group, coarse first: scales 4x4 (1 group), 8x8 (2), 16x16 (2)
    assert [tuple(f.shape[1:]) for f in feats] == [(32, 4, 4), (16, 8, 8), (16, 8, 8), (8, 16, 16), (8, 16, 16)]
    out = model(x)
    assert out.logits.shape == (5, 1, 28, 28)
    assert [tuple(g.posterior_mean.shape[1:]) for g in out.groups] == [(3, 4, 4), (3, 8, 8), (3, 8, 8),
                                                                        (3, 16, 16), (3, 16, 16)]
    assert out.kl_per_group().shape == (5, 5) and (out.kl_per_group() >= 0).all()
    assert out.log_weight(x).shape == (5,)
    assert model.group_sizes().tolist() == [48.0, 192.0, 192.0, 768.0, 768.0]
    for t in (1.0, 0.5):
        s = model.sample(3, temperature=t)
        assert s.shape == (3, 1, 28, 28) and ((s >= 0) & (s <= 1)).all()


def test_temperature_scales_the_sampling_noise():
    torch.manual_seed(0)
    model = NVAE(TINY).eval()
    torch.manual_seed(1)
    a = model.sample(4, temperature=0.0)
    torch.manual_seed(2)
    b = model.sample(4, temperature=0.0)
    torch.testing.assert_close(a, b)  # t = 0: the deterministic prior-mean path
    torch.manual_seed(2)
    c = model.sample(4, temperature=1.0)
    assert not torch.allclose(a, c)


def test_plain_vae_arm_has_one_group_and_similar_size():
    base = NVAEConfig(**CARD.presets["cpu"]["model"] | {"groups_per_scale": (2, 2)})
    plain = arm_model_config("plain_vae", base)
    assert plain.groups_per_scale == (1,)
    n_base, n_plain = count_params(NVAE(base)), count_params(NVAE(plain))
    assert abs(n_plain - n_base) / n_base < 0.2
    assert not arm_model_config("no_residual_normal", base).residual_normal


def test_unknown_config_key_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown config keys"):
        ExperimentConfig.from_dict({"stepz": 3})
    with pytest.raises(ConfigError, match="unknown ablations"):
        ExperimentConfig.from_dict({"ablations": ["dropout"]})


# ------------------------------------------------------------------ weight norm, BN scale, BN statistics

def test_weight_norm_keeps_the_initial_function_and_reparameterises_every_conv():
    torch.manual_seed(3)
    plain = NVAE(NVAEConfig(**{**TINY.to_dict(), "weight_norm": False})).eval()
    torch.manual_seed(3)
    normed = NVAE(TINY).eval()
    convs = [m for m in normed.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    torch.manual_seed(0)
    a = plain(x).logits
    torch.manual_seed(0)
    b = normed(x).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_bn_scale_penalty_is_the_sum_of_each_layers_largest_scale():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
        net[2].weight.copy_(torch.tensor([0.1, 0.3, -0.2]))
    value = bn_scale_penalty(net)
    assert value.item() == pytest.approx(2.3)
    value.backward()
    assert net[1].weight.grad.tolist() == [0.0, -1.0, 0.0]  # only the largest |gamma| is pushed down


def test_readjust_batchnorm_sets_the_plain_average_over_the_passes():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    net[1].running_mean.fill_(50.0)  # stale statistics from "training"
    batches = [torch.randn(4, 1, 6, 6) + i for i in range(3)]
    readjust_batchnorm(net, [lambda b=b: net(b) for b in batches])
    with torch.no_grad():
        acts = [net[0](b) for b in batches]
    mean = torch.stack([a.mean((0, 2, 3)) for a in acts]).mean(0)
    var = torch.stack([a.var((0, 2, 3), unbiased=True) for a in acts]).mean(0)
    torch.testing.assert_close(net[1].running_mean, mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net[1].running_var, var, rtol=1e-5, atol=1e-5)
    assert not net.training and net[1].momentum == 0.1  # left in eval mode, momentum restored


# ------------------------------------------------------------------ data: dynamic binarization, shards

def _fake_data(n=40, dynamic=True):
    from reproductions.nvae.experiment import Data

    grey = torch.arange(n * 784).remainder(256).to(torch.uint8).reshape(n, 784)
    return Data(train=grey, test=torch.zeros(2, 1, 28, 28), dynamic=dynamic, description="fake", source="fake")


def test_dynamic_binarization_draws_fresh_pixels_with_the_grey_level_as_probability():
    data = _fake_data(n=8)
    stream = BatchStream(data, 8, torch.Generator().manual_seed(0), RunContext(Path("/tmp/nvae-unused")))
    draws, seen = [], []
    for _ in range(400):  # 400 epochs of the 8 images: each image visited 400 times
        x, idx = stream.next()
        draws.append(x.reshape(8, 784)[idx.argsort()])
        seen.append(sorted(idx.tolist()))
    assert all(s == list(range(8)) for s in seen)  # one epoch per batch: every image once
    draws = torch.stack(draws)  # (visits, 8, 784)
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(draws[0], draws[1])  # a fresh sample at every visit
    p = data.train.float() / 255
    assert (draws.mean(0) - p).abs().max() < 0.1  # frequency of ones -> grey / 255
    assert draws[:, p == 0].sum() == 0 and draws[:, p == 1].min() == 1


def test_ranks_get_disjoint_shards_whose_union_is_the_one_process_batch(tmp_path):
    data = _fake_data()
    one = BatchStream(data, 8, torch.Generator().manual_seed(5), RunContext(tmp_path / "a"))
    ranks = [BatchStream(data, 8, torch.Generator().manual_seed(5),
                         RunContext(tmp_path / f"r{r}", rank=r, world_size=2)) for r in (0, 1)]
    for _ in range(12):  # crosses epoch boundaries (40 images, batch 8)
        x1, i1 = one.next()
        (x0, i0), (xr, ir) = (s.next() for s in ranks)
        assert set(i0.tolist()).isdisjoint(ir.tolist())
        assert sorted(i0.tolist() + ir.tolist()) == sorted(i1.tolist())
        # the same binary pixels as the single process drew for those images
        torch.testing.assert_close(x0, x1[0::2])
        torch.testing.assert_close(xr, x1[1::2])


def _opened(load, cfg, ctx):
    """The data with its sealed test split opened, as the experiment does at its final evaluation."""
    from dataclasses import replace

    data = load(cfg, ctx)
    ctx.begin_final_evaluation()
    return replace(data, test=data.test.open())


def test_real_mnist_test_images_are_binarized_once_with_a_fixed_seed(tmp_path):
    data_dir = shared_path("data", "mnist").parent
    cfg = ExperimentConfig.from_dict({"test_images": 64, "iw_images": 64, "ablation_iw_images": 8})
    a, b = (_opened(load_data, cfg, RunContext(tmp_path / n, data_dir=data_dir)) for n in "ab")
    assert a.source == "mnist" and a.dynamic and len(a.train) == 60000
    assert "MNIST train (60k)" in a.description and "default_rng(0)" in a.description
    assert torch.equal(a.test, b.test) and set(a.test.unique().tolist()) == {0.0, 1.0}
    c = _opened(load_data, ExperimentConfig.from_dict({"test_images": 64, "test_binarization_seed": 1}),
                RunContext(tmp_path / "c", data_dir=data_dir))
    assert not torch.equal(a.test, c.test[:64])
    assert 0.10 < a.test.mean().item() < 0.16  # MNIST's ink fraction, not noise or blank images


# ------------------------------------------------------------------ budgets and schedules

def test_every_ablation_shares_the_control_arms_budget_seeds_and_iw_bound():
    smoke = ExperimentConfig.from_dict(CARD.config("smoke"))
    assert smoke.arms() == ["nvae", "nvae_control", "plain_vae", "no_residual_normal", "no_spectral_reg"]
    assert len({smoke.budget(arm) for arm in smoke.arms()[1:]}) == 1
    assert smoke.arm_seeds("nvae", 0) == [0] and smoke.arm_seeds("plain_vae", 0) == [0, 1]  # the main arm runs once
    # the cpu preset (issue 29): NVAE is its own control; every arm on the same 3 seeds, steps and IW bound
    cpu = ExperimentConfig.from_dict(CARD.config("cpu"))
    assert cpu.arms() == ["nvae", "plain_vae", "no_residual_normal", "no_spectral_reg"] and cpu.control_arm() == "nvae"
    assert len({cpu.budget(arm) for arm in cpu.arms()}) == 1
    assert {tuple(cpu.arm_seeds(arm, 0)) for arm in cpu.arms()} == {(0, 1, 2)}
    k, images = cpu.iw_budget("plain_vae")
    assert {cpu.iw_budget(arm) for arm in cpu.arms()} == {(k, images)} and k >= 100 and images >= 1000
    with pytest.raises(ConfigError, match="seeds"):
        ExperimentConfig.from_dict({"seeds": "three"})


def test_arms_of_one_seed_start_from_the_same_weights_and_batches(tmp_path):
    """Pairing by seed: on one seed the control and an ablation of the same architecture start from the
    same weights and draw the same first batch; another seed starts elsewhere."""
    from reproductions.nvae.batches import BatchStream
    from reproductions.nvae.training import arm_seed, train_arm

    cfg = ExperimentConfig.from_dict(CARD.config("smoke", {"steps": 0, "ablation_steps": 0, "seeds": [0, 1]}))
    ctx = RunContext(tmp_path, preset="smoke", data_dir=tmp_path / "none")
    data = _fake_data(n=40)
    mcfg = NVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()})

    def weights(arm, seed):
        model, _ = train_arm(arm, seed, cfg, mcfg, data, ctx, None, {})  # 0 steps: the initial weights
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(weights("nvae_control", 0), weights("no_spectral_reg", 0))
    assert not torch.equal(weights("nvae_control", 0), weights("nvae_control", 1))

    def first_batch(arm, seed):
        return BatchStream(data, 8, torch.Generator().manual_seed(arm_seed(seed, arm)), ctx).next()[1]

    assert torch.equal(first_batch("nvae_control", 1), first_batch("plain_vae", 1))


def test_adamax_follows_the_official_eps_and_weight_decay():
    """NVlabs/NVAE train.py: Adamax(..., weight_decay=3e-4, eps=1e-3). One step on a parameter whose loss
    gradient is zero: torch's Adamax with L2 decay moves it by lr * wd*p / (|wd*p| + eps) (by hand below)."""
    from reproductions.nvae.training import make_optimizer

    cfg = ExperimentConfig.from_dict({})
    assert (cfg.adam_eps, cfg.weight_decay) == (1e-3, 3e-4)
    p = torch.nn.Parameter(torch.tensor([2.0, -0.5]))
    opt = make_optimizer(torch.nn.ParameterList([p]), cfg)
    p.grad = torch.zeros(2)
    opt.step()
    g = 3e-4 * torch.tensor([2.0, -0.5])  # the decay's gradient
    expected = torch.tensor([2.0, -0.5]) - cfg.lr * g / (g.abs() + 1e-3)  # first step: bias correction cancels
    torch.testing.assert_close(p.detach(), expected)
    # the old eps 1e-8 would have moved both by almost the full lr
    assert (torch.tensor([2.0, -0.5]) - p.detach()).abs().max() < 0.5 * cfg.lr


def test_warmups_follow_steps_not_the_clock():
    cfg = ExperimentConfig.from_dict({"lr_warmup": 0.1, "kl_warmup": 0.5})
    early_clock, late_clock = schedule(10, 0.1, 100, cfg), schedule(10, 0.95, 100, cfg)
    assert early_clock[1] == late_clock[1] == pytest.approx(0.2)  # beta: step 10 of 50 warm-up steps
    assert schedule(5, 0.9, 100, cfg)[0] == pytest.approx(0.5 * cfg.lr)  # lr ramp: step 5 of 10
    assert schedule(60, 0.99, 100, cfg)[0] < schedule(60, 0.6, 100, cfg)[0]  # the decay may follow the clock


def test_slow_compilation_does_not_eat_the_training_budget(tmp_path, monkeypatch):
    """A fake torch.compile whose first call takes 3 s: the 2 s training budget is spent on steps."""
    real_compile = torch.compile

    def slow_compile(module, *args, **kwargs):
        state = {"first": True}

        def compiled(*a, **k):
            if state["first"]:
                time.sleep(3.0)
                state["first"] = False
            return module(*a, **k)

        return compiled

    monkeypatch.setattr(torch, "compile", slow_compile)
    cfg = CARD.config("smoke", {"compile": True, "steps": 100000, "train_seconds": 2.0, "ablations": [], "seeds": 1,
                                "batch_size": 4,
                                "iw_images": 2, "iw_samples": 2, "test_images": 4, "log_every": 1000})
    ctx = RunContext(tmp_path, preset="smoke", data_dir=tmp_path / "none")
    metrics = run(cfg, ctx)
    monkeypatch.setattr(torch, "compile", real_compile)
    assert metrics["compile_seconds"] >= 3.0
    assert 2.0 <= metrics["train_seconds"] < 3.0  # the clock ran for training only
    # the budget bought steps (counting compilation, the first step would have ended the arm)
    assert metrics["train_steps"] >= 3


# ------------------------------------------------------------------ the experiment

def _losses(path: Path, arm: str) -> dict[int, float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("arm") == arm and "loss" in r}


def test_smoke_preset_on_real_mnist_trains_and_writes_everything(tmp_path):
    from reproductions.claims import analyse_record

    data_dir = shared_path("data", "mnist").parent
    ctx = RunContext(tmp_path, preset="smoke", data_dir=data_dir)
    metrics = run(CARD.config("smoke"), ctx)  # 2 paired seeds; the main arm on the first only
    # which data it used: the real grey MNIST train images, never the synthetic fallback
    assert ctx.notes["data_source"] == "mnist"
    assert ctx.notes["data"].startswith("dynamically binarized MNIST: train MNIST train (60k)")
    assert ctx.notes["train_images"] == CARD.presets["smoke"]["train_images"]
    assert ctx.notes["paired_seeds"]["nvae"] == [0] and ctx.notes["paired_seeds"]["plain_vae"] == [0, 1]
    losses = list(_losses(tmp_path / "metrics.jsonl", "nvae").values())
    assert len(losses) == CARD.presets["smoke"]["steps"]
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5
    for key in ("nll_nats", "elbo_nats", "kl_per_group", "active_units", "images_per_s", "peak_mem_mb"):
        assert key in metrics
    (nll,), (elbo,) = metrics["nll_nats"]["per_seed"], metrics["elbo_nats"]["per_seed"]
    assert 0 < nll < 544 and 0 < elbo < 544  # below an untrained model's ~544
    assert nll <= elbo + 1.0  # IW bound (k=8) at least as tight as the ELBO
    assert len(metrics["kl_per_group"]) == 3
    assert set(metrics["ablations"]) == {"plain_vae", "no_residual_normal", "no_spectral_reg"}
    assert len(metrics["ablations"]["plain_vae"]["kl_per_group"]) == 1
    control = metrics["control"]
    assert control["arm"] == "nvae_control"
    assert control["train_steps"]["per_seed"] == [12, 12]
    assert all(a["train_steps"]["per_seed"] == [12, 12] for a in metrics["ablations"].values())
    # per-seed deltas, paired by seed, from the per-arm per-seed NLLs written to metrics.jsonl
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    final = {(r["arm"], r["seed"]): r["nll_nats"] for r in rows if "nll_nats" in r}
    for arm, a in metrics["ablations"].items():
        assert a["nll_nats"]["per_seed"] == [final[(arm, 0)], final[(arm, 1)]]
        assert metrics[f"delta_nats_{arm}"]["per_seed"] == pytest.approx(
            [final[(arm, s)] - final[("nvae_control", s)] for s in (0, 1)], abs=2e-3)
    # the claims read the per-seed values: two paired seeds give every ablation claim a test
    rows, _ = analyse_record({"metrics": metrics, "seeds": [0, 1]}, CARD.claims)
    ablation_rows = [r for r in rows if r["id"].startswith("ablation_")]
    assert len(ablation_rows) == 3 and all(r["n_seeds"] == 2 and r["verdict"] != "not measured" for r in ablation_rows)
    assert (tmp_path / "samples.png").stat().st_size > 0 and (tmp_path / "reconstructions.png").stat().st_size > 0


def test_bf16_importance_weights_agree_with_fp32(tmp_path):
    """iw_bf16 runs the IW bound's passes under bf16 autocast: on the same images and a briefly trained
    small model its bound stays within 1% of the fp32 bound (the oracle), and the run says which it used."""
    data_dir = shared_path("data", "mnist").parent
    cfg = ExperimentConfig.from_dict(CARD.config("smoke", {"test_images": 32, "iw_images": 32}))
    ctx = RunContext(tmp_path, preset="smoke", data_dir=data_dir)
    data = _opened(load_data, cfg, ctx)
    from reproductions.nvae.training import train_arm

    mcfg = NVAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()})
    model, _ = train_arm("nvae", 0, cfg, mcfg, data, ctx, None, {})
    results = {}
    for bf16 in (False, True):
        torch.manual_seed(3)
        results[bf16] = evaluate(model, data, replace_cfg(cfg, iw_bf16=bf16), ctx, 16, 32, 0)
    assert results[True]["iw_precision"].startswith("bf16") and results[False]["iw_precision"] == "fp32"
    assert results[True]["nll_nats"] == pytest.approx(results[False]["nll_nats"], rel=0.01)


def replace_cfg(cfg, **changes):
    from dataclasses import replace

    return replace(cfg, **changes)


def test_smoke_falls_back_to_synthetic_only_when_allowed_and_says_so(tmp_path):
    cfg = CARD.config("smoke", {"steps": 2, "ablations": [], "seeds": 1, "iw_images": 2, "iw_samples": 2,
                                "test_images": 4})
    ctx = RunContext(tmp_path / "smoke", preset="smoke", data_dir=tmp_path / "none")
    run(cfg, ctx)
    assert ctx.notes["data_source"] == "synthetic" and ctx.notes["data"].startswith("synthetic")
    with pytest.raises(DatasetMissing):
        run({**cfg, "allow_synthetic": False}, RunContext(tmp_path / "cpu", preset="cpu", data_dir=tmp_path / "none"))


def test_checkpoint_resume_gives_the_same_next_step_loss(tmp_path):
    cfg = CARD.config("smoke", {"steps": 5, "ablations": [], "seeds": 1, "iw_images": 4, "iw_samples": 2,
                                "test_images": 8})
    data_dir = tmp_path / "none"  # synthetic bars: this checks the checkpoint, not the data
    full = RunContext(tmp_path / "full", preset="smoke", data_dir=data_dir)
    run(cfg, full)
    halted = RunContext(tmp_path / "split", preset="smoke", data_dir=data_dir)
    assert run({**cfg, "halt_after": 3}, halted)["halted"]
    resumed = RunContext(tmp_path / "split", preset="smoke", data_dir=data_dir, resume=True)
    run(cfg, resumed)
    a, b = _losses(tmp_path / "full" / "metrics.jsonl", "nvae"), _losses(tmp_path / "split" / "metrics.jsonl", "nvae")
    assert sorted(b) == [1, 2, 3, 4, 5]
    assert b[4] == pytest.approx(a[4], abs=1e-4) and b[5] == pytest.approx(a[5], abs=1e-4)
    assert resumed.notes.get("resumed_nvae@0") == "from step 3"


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built in")
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, monkeypatch):
    """`run nvae --preset smoke --nproc 2`: world_size 2, half the batch per rank, equal examples per
    rank, and the same numbers as one process within 3% (BatchNorm and KL balancing see each rank's
    half batch, and the posterior noise differs, so they cannot agree exactly)."""
    data_dir = shared_path("data", "mnist").parent
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    overrides = {"ablations": [], "seeds": 1, "steps": 16, "test_images": 32, "iw_images": 16, "iw_samples": 4}
    results = run_one_and_two_processes("nvae", overrides, tmp_path, data_dir)
    two, one = results[2], results[1]
    assert two["runner"]["nproc"] == 2 and two["notes"]["world_size"] == 2
    assert two["notes"]["batch"] == {"global": 16, "per_rank": 8}
    assert two["notes"]["data_source"] == "mnist"
    assert two["metrics"]["examples_per_rank"] == [16 * 8, 16 * 8] and one["metrics"]["examples_per_rank"] == [256]
    for key in ("nll_nats", "elbo_nats", "final_train_loss"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=0.03), key
