"""Optimus reproduction: injection paths, the two anti-collapse tricks, the metrics, the tokenizer."""

import json
import math

import pytest
import torch

from reproductions.api import RunContext
from reproductions.optimus import CARD
from reproductions.optimus.experiment import collate, run
from reproductions.optimus.metrics import active_units, iw_log_likelihood, mutual_information, perplexity
from reproductions.optimus.model import Decoder, LanguageModel, OptimusConfig, OptimusVAE
from reproductions.optimus.objectives import cyclical_beta, kl_per_dim, thresholded_kl, vae_loss
from reproductions.optimus.tokenizer import Vocab

torch.set_num_threads(1)


def tiny_cfg(**kw) -> OptimusConfig:
    base = dict(vocab_size=23, max_len=16, d_model=16, n_head=2, n_enc_layer=1, n_dec_layer=3, d_latent=4,
                dropout=0.0)
    base.update(kw)
    return OptimusConfig(**base)


def ids(B=3, T=7, V=23, seed=0):
    return torch.randint(4, V, (B, T), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- latent injection

@pytest.mark.parametrize("memory,embedding", [(True, False), (False, True), (True, True)])
def test_z_changes_the_output(memory, embedding):
    torch.manual_seed(0)
    dec = Decoder(tiny_cfg(inject_memory=memory, inject_embedding=embedding)).eval()
    x = ids()
    a, b = dec(x, torch.randn(3, 4)), dec(x, torch.randn(3, 4))
    assert (a - b).abs().max() > 1e-4


def test_injection_off_is_the_plain_lm_bit_for_bit():
    torch.manual_seed(0)
    vae_dec = Decoder(tiny_cfg()).eval()
    lm = LanguageModel(tiny_cfg()).eval()
    missing, unexpected = lm.decoder.load_state_dict(vae_dec.state_dict(), strict=False)
    assert missing == [] and set(unexpected) == {"z_to_memory.weight", "z_to_embedding.weight"}
    x = ids()
    # z=None switches both injections off on the VAE decoder itself
    assert torch.equal(vae_dec(x), lm.decoder(x))
    # and a decoder built with both switches off, fed a z, ignores it
    off = Decoder(tiny_cfg(inject_memory=False, inject_embedding=False)).eval()
    off.load_state_dict(lm.decoder.state_dict())
    assert torch.equal(off(x, torch.randn(3, 4)), lm.decoder(x))


def test_memory_adds_exactly_one_attended_position_per_layer():
    torch.manual_seed(0)
    cfg = tiny_cfg(inject_embedding=False)
    dec = Decoder(cfg).eval()
    x, z = ids(T=6), torch.randn(3, 4)
    _, plain = dec(x, None, return_attn=True)
    _, with_mem = dec(x, z, return_attn=True)
    assert len(plain) == len(with_mem) == cfg.n_dec_layer
    for p, m in zip(plain, with_mem):
        assert p.shape == (3, cfg.n_head, 6, 6) and m.shape == (3, cfg.n_head, 6, 7)
        # every query (even the first, which sees only itself) gives the memory slot some weight
        assert (m[..., 0] > 0).all()
        # causality among tokens is kept: query i never attends to token j > i
        future = torch.ones(6, 6, dtype=torch.bool).triu(1)
        assert (m[..., 1:][..., future] == 0).all()
        torch.testing.assert_close(m.sum(-1), torch.ones_like(m[..., 0]))


def test_fast_attention_matches_reference_path():
    torch.manual_seed(0)
    vae = OptimusVAE(tiny_cfg()).eval()
    x, z = ids(), torch.randn(3, 4)
    torch.testing.assert_close(vae.decoder(x, z), vae.decoder(x, z, reference=True), atol=1e-5, rtol=1e-5)
    enc = torch.cat([ids(T=5), torch.zeros(3, 2, dtype=torch.long)], 1)  # right padding (pad id 0)
    enc[1, 5:] = ids(1, 2, seed=3)  # one row without padding
    mu_fast, _ = vae.encoder(enc)
    mu_ref, _ = vae.encoder(enc, reference=True)
    torch.testing.assert_close(mu_fast, mu_ref, atol=1e-5, rtol=1e-5)


def test_encoder_ignores_padding():
    torch.manual_seed(0)
    vae = OptimusVAE(tiny_cfg()).eval()
    x = ids(1, 5)
    padded = torch.cat([x, torch.zeros(1, 4, dtype=torch.long)], 1)
    torch.testing.assert_close(vae.encoder(x)[0], vae.encoder(padded)[0], atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------- KL threshold and beta schedule

def test_kl_threshold_clamps_per_dimension_and_kills_its_gradient():
    kl = torch.tensor([[0.1, 0.7, 2.0], [0.3, 0.9, 0.0]], requires_grad=True)  # batch means .2 .8 1.0
    loss = thresholded_kl(kl, lam=0.5)
    assert loss.item() == pytest.approx(0.5 + 0.8 + 1.0)
    loss.backward()
    # dimension 0 is below λ: no gradient; the others get d mean / d entry = 1/B
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]))
    assert thresholded_kl(kl, lam=0.0).item() == pytest.approx(0.2 + 0.8 + 1.0)


def test_kl_per_dim_closed_form_and_loss():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    kl = kl_per_dim(mu, logvar)
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.5 * (4 - math.log(4) - 1)]]))
    rec = torch.tensor([10.0, 20.0])
    assert vae_loss(rec, kl.repeat(2, 1), beta=0.5, lam=0.0).item() == pytest.approx(15 + 0.5 * kl.sum().item())


def test_cyclical_beta_values_at_chosen_steps():
    # 2 cycles of 100 steps: zero for 50, ramp over 25, hold for 25
    b = lambda s: cyclical_beta(s, 200, n_cycles=2, ratio_zero=0.5, ratio_increase=0.25)  # noqa: E731
    assert [b(s) for s in (0, 49, 50, 55, 60, 74, 75, 99, 100, 149, 160, 199)] == pytest.approx(
        [0, 0, 0, 0.2, 0.4, 0.96, 1, 1, 0, 0, 0.4, 1])
    assert cyclical_beta(70, 100, ratio_zero=0.5, ratio_increase=0.25, beta_max=0.5) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        cyclical_beta(0, 100, ratio_zero=0.9, ratio_increase=0.25)


def test_beta_schedule_of_each_arm():
    from reproductions.optimus.experiment import beta_at
    cfg = {"steps": 110, "ae_pretrain_steps": 10, "n_cycles": 1, "ratio_zero": 0.5, "ratio_increase": 0.25}
    assert beta_at("vae", 0, cfg) == 1.0
    assert [beta_at("optimus", s, cfg) for s in (0, 9, 10, 59, 70, 85, 109)] == pytest.approx(
        [0, 0, 0, 0, 0.4, 1, 1])


# ---------------------------------------------------------------- MI, AU, PPL on known answers

def test_mutual_information_gaussian_toy_posterior():
    # x ~ N(0, s² I), q(z|x) = N(x, σ² I): the aggregate posterior is N(0, (s²+σ²) I) and
    # I(x; z) = D/2 · log(1 + s²/σ²); here s² = 3, σ² = 1, D = 2 -> log 4.
    g = torch.Generator().manual_seed(0)
    estimates = []
    for _ in range(5):
        mu = torch.randn(1500, 2, generator=g) * math.sqrt(3.0)
        estimates.append(mutual_information(mu, torch.zeros(1500, 2), g))
    assert sum(estimates) / 5 == pytest.approx(math.log(4.0), abs=0.06)


def test_mutual_information_extremes():
    g = torch.Generator().manual_seed(1)
    # collapsed: every sentence has the same posterior -> no information
    assert mutual_information(torch.zeros(64, 8), torch.full((64, 8), -0.3), g) == pytest.approx(0.0, abs=1e-5)
    # far-apart sharp posteriors: each z identifies its x, MI saturates at log N
    mu = torch.randn(300, 3, generator=g) * 100
    assert mutual_information(mu, torch.full((300, 3), -4.0), g) == pytest.approx(math.log(300), abs=1e-3)


def test_active_units_threshold():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.0])  # variances 1, .25, .04, .0025, 0
    mu = torch.randn(5000, 5, generator=g) * scales
    au, var = active_units(mu)
    assert au == 3
    torch.testing.assert_close(var, scales ** 2, atol=0.05, rtol=0.1)


def test_perplexity_hand_checked():
    # two sentences, 3 and 1 words -> 4 + 2 tokens with <eos>; -ELBO = rec + KL per sentence
    neg_elbo = (6.0 + 1.5) + (3.0 + 1.5)
    assert perplexity(neg_elbo, 6) == pytest.approx(math.exp(2.0))
    assert perplexity(0.0, 5) == 1.0
    with pytest.raises(ValueError):
        perplexity(1.0, 0)


def test_iw_bound_is_exact_when_posterior_is_the_true_posterior():
    # p(z) = N(0,1), p(x|z) ∝ const: if q = prior, every weight equals p(x|z) -> log p(x) exactly
    z = torch.randn(2, 7, 1)
    log_px_z = torch.full((2, 7), -3.0)
    out = iw_log_likelihood(log_px_z, z, torch.zeros(2, 1), torch.zeros(2, 1))
    torch.testing.assert_close(out, torch.full((2,), -3.0))


# ---------------------------------------------------------------- tokenizer and batching

def test_tokenizer_round_trip():
    sents = [["the", "cat", "sat"], ["a", "cat", "<unk>", "N"]]
    v = Vocab.build(sents)
    assert v.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and v.itos[4] == "cat"
    for s in sents:
        enc = v.encode(s)
        assert enc[-1] == v.eos_id and v.decode(enc) == s
    assert v.decode(v.encode(["the", "dog"])) == ["the", "<unk>"]
    assert v.decode([v.bos_id, v.stoi["cat"], v.eos_id, v.stoi["the"]]) == ["cat"]


def test_collate_shifts_decoder_input_against_targets():
    v = Vocab.build([["a", "b", "c"]])
    enc = [v.encode(["a", "b"]), v.encode(["c"])]
    b = collate(enc, [0, 1], v, "cpu")
    a, bb, c, eos, bos, pad = v.stoi["a"], v.stoi["b"], v.stoi["c"], v.eos_id, v.bos_id, v.pad_id
    assert b["enc"].tolist() == [[bos, a, bb, eos], [bos, c, eos, pad]]
    assert b["dec"].tolist() == [[bos, a, bb], [bos, c, pad]]
    assert b["tgt"].tolist() == [[a, bb, eos], [c, eos, pad]]


# ---------------------------------------------------------------- end to end

def test_smoke_preset_runs_and_writes_its_artefacts(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_DATA", str(tmp_path / "no-data"))  # forces the synthetic fallback
    ctx = RunContext(tmp_path / "run", preset="smoke", seed=0)
    metrics = run(CARD.config("smoke"), ctx)
    for arm in ("lm", "vae", "optimus"):
        assert {"ppl", "kl", "mi", "au"} <= set(metrics[arm])
        assert metrics[arm]["ppl"] > 1 and math.isfinite(metrics[arm]["ppl"])
    assert metrics["optimus"]["ppl_iw"] <= metrics["optimus"]["ppl"] * 1.05
    assert "synthetic" in ctx.notes["data"]
    demos = json.loads((tmp_path / "run" / "demos.json").read_text())
    assert set(demos) == {"vae", "optimus"} and len(demos["optimus"]["interpolation"]["steps"]) == 5
    assert (tmp_path / "run" / "optimus_curves.png").stat().st_size > 1000
    assert CARD.name == "optimus" and set(CARD.presets) == {"smoke", "cpu", "gpu"}
