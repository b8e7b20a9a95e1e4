"""Evaluation quantities of the VAE language-model literature.

* **ELBO perplexity** — for each sentence x with |x| words plus one ``<eos>``,
  -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) >= -log p(x). Hence

      PPL_ELBO = exp( Σ_x -ELBO(x) / Σ_x (|x| + 1) ) >= exp( Σ_x -log p(x) / Σ_x (|x| + 1) ) = PPL,

  an *upper bound* on the model's true perplexity. The importance-weighted bound with
  K samples, log p(x) >= log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x), is tighter (equal
  to the ELBO at K = 1) and tends to log p(x) as K grows.
* **MI** between x and z under q — the estimator of Hoffman & Johnson (2016) as used by
  He et al. (2019): I_q = E_x E_{q(z|x)}[log q(z|x)] - E_{q(z)}[log q(z)], where the
  aggregate posterior q(z) is approximated by the mixture of the posteriors of the
  other sentences in the same batch (so it can never exceed log(batch size)).
* **AU** (active units, Burda et al. 2016) — a dimension is active when
  Cov_x(E_q[z_i|x]) > 0.01.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def perplexity(total_nll: float, total_tokens: int) -> float:
    """exp(summed NLL in nats / number of predicted tokens, <eos> included)."""
    if total_tokens <= 0:
        raise ValueError("perplexity needs at least one token")
    return math.exp(total_nll / total_tokens)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dim (broadcasting)."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + LOG_2PI).sum(dim=-1)


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> float:
    """Batch MI estimate I_q(x; z) in nats for posteriors (N, D) of N sentences."""
    N, D = mu.shape
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + eps * (0.5 * logvar).exp()  # one sample per sentence, (N, D)
    # log q(z_j | x_i) for every pair: (N_j, 1, D) against (1, N_i, D) -> (N, N)
    log_q_zj_xi = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    # E_q[log q(z|x)] from the same samples (the diagonal) rather than the closed-form entropy:
    # same expectation, but the sampling noise cancels against log q(z) below, so identical
    # posteriors give exactly 0 instead of 0 ± O(sqrt(D / N)).
    log_q_z_given_x = log_q_zj_xi.diagonal()
    # log q(z_j) ≈ log (1/N) Σ_i q(z_j | x_i): the aggregate posterior as a mixture over the batch
    log_qz = torch.logsumexp(log_q_zj_xi, dim=1) - math.log(N)
    return float((log_q_z_given_x - log_qz).mean())


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """(count of dims with Var_x(E_q[z_i|x]) > threshold, the per-dim variances) for means (N, D)."""
    var = mu.var(dim=0, unbiased=True)
    return int((var > threshold).sum()), var


def iw_log_likelihood(log_px_given_z: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
                      logvar: torch.Tensor) -> torch.Tensor:
    """Importance-weighted log p(x) from K samples: (B, K), (B, K, D), (B, D), (B, D) -> (B,)."""
    K = z.shape[1]
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))  # (B, K)
    log_qz = gaussian_log_density(z, mu[:, None], logvar[:, None])  # (B, K)
    return torch.logsumexp(log_px_given_z + log_pz - log_qz, dim=1) - math.log(K)
