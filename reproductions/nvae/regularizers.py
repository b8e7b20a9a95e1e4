"""What keeps a deep hierarchical VAE trainable (paper Sec. 3.2 and Appendix A).

* **Spectral regularisation.** The KL between two Gaussians whose parameters come
  from networks can be driven to huge values by small input changes; NVAE bounds
  that by making every layer smooth: it adds ``lambda * sum_i s_i`` to the loss,
  where ``s_i`` is the largest singular value of layer i's weight (reshaped to
  ``(C_out, C_in*k*k)``), estimated by one step of power iteration per training
  step with the singular vectors carried over from the step before.
* **KL warm-up.** The KL term is multiplied by ``beta`` rising linearly from ~0 to 1
  over the first part of training, so the decoder learns to use the latents before
  the KL pushes them to the prior.
* **BN-scale penalty.** BatchNorm's scale can undo the smoothing above (a large
  gamma after a smooth conv is not smooth), so the largest ``|gamma|`` of every BN
  layer is penalised with the same ``lambda`` (the official recipe does this too).
* **KL balancing.** During warm-up each group's KL gets a coefficient proportional
  to its own (batch-mean) KL divided by its size, normalised to mean 1: groups that
  carry little information are penalised less, which keeps groups from collapsing
  (posterior collapse). At ``beta = 1`` this is switched off and the plain ELBO remains.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn as nn
import torch.nn.functional as F


def power_iteration(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, iters: int = 1):
    """Refine the top singular vectors of a batch of matrices.

    weight: (G, m, n); u: (G, m); v: (G, n) -> updated (u, v), unit norm, no grad.
    """
    with torch.no_grad():
        for _ in range(iters):
            v = F.normalize(torch.bmm(weight.transpose(1, 2), u.unsqueeze(2)).squeeze(2), dim=1, eps=1e-3)
            u = F.normalize(torch.bmm(weight, v.unsqueeze(2)).squeeze(2), dim=1, eps=1e-3)
    return u, v


def spectral_norm_estimate(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``u^T W v`` for each matrix of the batch (G,), differentiable in W."""
    return torch.einsum("gm,gmn,gn->g", u, weight, v)


class SpectralRegularizer:
    """Sum of the estimated spectral norms of the convolution weights of a model.

    Convolutions only, as in the official recipe; ``include_linear=True`` adds the
    squeeze-and-excitation MLPs. Weights are read from their modules at every call, so
    a weight-normalised conv contributes its effective weight ``g * v / ||v||``.
    Weights of the same shape are stacked and handled in one batched matmul, so the
    cost is a few small bmm calls per step instead of a Python loop over layers.
    """

    def __init__(self, model: nn.Module, init_iters: int = 20, include_linear: bool = False):
        kinds = (nn.Conv2d, nn.Linear) if include_linear else (nn.Conv2d,)
        by_shape: dict[tuple[int, int], list[nn.Module]] = defaultdict(list)
        for module in model.modules():
            if isinstance(module, kinds):
                w = module.weight
                by_shape[(w.shape[0], w[0].numel())].append(module)
        self.groups = list(by_shape.items())
        self.u: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        gen = torch.Generator().manual_seed(0)
        for (m, n), modules in self.groups:
            dev = modules[0].weight.device
            u = F.normalize(torch.randn(len(modules), m, generator=gen), dim=1).to(dev)
            v = F.normalize(torch.randn(len(modules), n, generator=gen), dim=1).to(dev)
            with torch.no_grad():
                u, v = power_iteration(self._stack(modules), u, v, init_iters)
            self.u.append(u)
            self.v.append(v)

    @staticmethod
    def _stack(modules: list[nn.Module]) -> torch.Tensor:  # -> (G, m, n)
        return torch.stack([mod.weight.reshape(mod.weight.shape[0], -1) for mod in modules]).float()

    def __call__(self, iters: int = 1) -> torch.Tensor:
        """One power-iteration step for every weight, then the differentiable sum of norms."""
        total = 0.0
        for i, (_, modules) in enumerate(self.groups):
            w = self._stack(modules)
            self.u[i], self.v[i] = power_iteration(w.detach(), self.u[i], self.v[i], iters)
            total = total + spectral_norm_estimate(w, self.u[i], self.v[i]).sum()
        return total

    def state_dict(self) -> dict:
        return {"u": [t.clone() for t in self.u], "v": [t.clone() for t in self.v]}

    def load_state_dict(self, state: dict) -> None:
        self.u = [t.to(u.device) for t, u in zip(state["u"], self.u)]
        self.v = [t.to(v.device) for t, v in zip(state["v"], self.v)]


def bn_scale_penalty(model: nn.Module) -> torch.Tensor:
    """``sum over BatchNorm layers of max_c |gamma_c|`` (differentiable; 0 without BN)."""
    total = 0.0
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.weight is not None:
            total = total + module.weight.abs().max()
    return total


def kl_warmup(step: int, warmup_steps: int, floor: float = 1e-4) -> float:
    """``beta`` for this step: linear from ``floor`` to 1 over ``warmup_steps``, then 1."""
    if warmup_steps <= 0:
        return 1.0
    return max(floor, min(1.0, step / warmup_steps))


def balanced_kl(kl_groups: torch.Tensor, beta: float, group_sizes: torch.Tensor) -> torch.Tensor:
    """The KL term of the loss, ``beta * sum_l gamma_l * KL_l`` averaged over the batch.

    kl_groups: (B, L) per-image KL of each group; group_sizes: (L,) latent dims per group.
    While ``beta < 1`` the coefficients ``gamma_l`` (mean 1, no gradient) balance the
    groups; afterwards every ``gamma_l = 1`` and this is the ELBO's KL.
    """
    if beta >= 1.0:
        return kl_groups.sum(1).mean()
    with torch.no_grad():
        per_group = kl_groups.abs().mean(0) + 0.01  # (L,) small floor: an unused group keeps a weight
        gamma = per_group / group_sizes
        gamma = gamma / gamma.mean()
    return beta * (kl_groups * gamma).sum(1).mean()
