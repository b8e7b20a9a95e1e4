"""Tests of the NVAE reproduction: each defining piece against an independent reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from reproductions.api import RunContext
from reproductions.nvae import CARD
from reproductions.nvae.cells import EncoderCell, GenerativeCell, SqueezeExcite
from reproductions.nvae.distributions import Normal, bernoulli_log_prob, kl_normal, kl_residual
from reproductions.nvae.experiment import ConfigError, ExperimentConfig, arm_model_config, run
from reproductions.nvae.likelihood import importance_weighted_log_likelihood, iwae_bound
from reproductions.nvae.model import NVAE, NVAEConfig, count_params
from reproductions.nvae.regularizers import (SpectralRegularizer, balanced_kl, kl_warmup, power_iteration,
                                             spectral_norm_estimate)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
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
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            exact += torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1), ord=2).item()
    assert total.item() == pytest.approx(exact, rel=0.02)
    total.backward()
    assert model.stem.weight.grad is not None and model.stem.weight.grad.abs().sum() > 0


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


# ------------------------------------------------------------------ the experiment

def _losses(path: Path, arm: str) -> dict[int, float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r.get("arm") == arm and "loss" in r}


def test_smoke_preset_trains_lowers_the_loss_and_writes_everything(tmp_path):
    ctx = RunContext(tmp_path, preset="smoke", data_dir=SHARED / "data" if SHARED.exists() else tmp_path / "none")
    metrics = run(CARD.config("smoke"), ctx)
    losses = list(_losses(tmp_path / "metrics.jsonl", "nvae").values())
    assert len(losses) == CARD.presets["smoke"]["steps"]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    for key in ("nll_nats", "elbo_nats", "kl_per_group", "active_units", "images_per_s", "peak_mem_mb"):
        assert key in metrics
    assert 0 < metrics["nll_nats"] < 544 and 0 < metrics["elbo_nats"] < 544  # below an untrained model's ~544
    assert len(metrics["kl_per_group"]) == 3
    assert set(metrics["ablations"]) == {"plain_vae", "no_residual_normal", "no_spectral_reg"}
    assert len(metrics["ablations"]["plain_vae"]["kl_per_group"]) == 1
    assert (tmp_path / "samples.png").stat().st_size > 0 and (tmp_path / "reconstructions.png").stat().st_size > 0
    assert "data" in ctx.notes


def test_checkpoint_resume_gives_the_same_next_step_loss(tmp_path):
    cfg = CARD.config("smoke", {"steps": 5, "ablations": [], "iw_images": 4, "iw_k": 2, "test_images": 8})
    data_dir = SHARED / "data" if SHARED.exists() else tmp_path / "none"
    full = RunContext(tmp_path / "full", preset="smoke", data_dir=data_dir)
    run(cfg, full)
    halted = RunContext(tmp_path / "split", preset="smoke", data_dir=data_dir)
    assert run({**cfg, "halt_after": 3}, halted)["halted"]
    resumed = RunContext(tmp_path / "split", preset="smoke", data_dir=data_dir, resume=True)
    run(cfg, resumed)
    a, b = _losses(tmp_path / "full" / "metrics.jsonl", "nvae"), _losses(tmp_path / "split" / "metrics.jsonl", "nvae")
    assert sorted(b) == [1, 2, 3, 4, 5]
    assert b[4] == pytest.approx(a[4], abs=1e-4) and b[5] == pytest.approx(a[5], abs=1e-4)
    assert resumed.notes.get("resumed_nvae") == "from step 3"
