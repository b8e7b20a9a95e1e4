"""White-box L-infinity attacks: FGSM and PGD, and accuracy under attack.

Images live in [0, 1]; every adversarial image is clipped back into that box and into
the ``eps``-ball around the clean image. The model is put in eval mode while attacked
(BatchNorm uses its running statistics, so the attack sees the deployed function).

FGSM (Goodfellow et al. 2015): one step ``x + eps * sign(grad_x loss)``.
PGD (Madry et al. 2018): ``steps`` steps of size ``alpha`` from a uniform random start
in the ball, projecting back after each step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """x (B, ...) in [0,1], y (B,) -> adversarial x (B, ...) with ||x_adv - x||_inf <= eps."""
    if eps == 0:
        return x.detach().clone()
    return (x + eps * _input_grad(model, x, y).sign()).clamp(0, 1).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 20,
        alpha: float | None = None, random_start: bool = True, generator: torch.Generator | None = None
        ) -> torch.Tensor:
    """Projected gradient ascent on the cross-entropy inside the L-inf ball of radius ``eps``."""
    if eps == 0:
        return x.detach().clone()
    alpha = alpha if alpha is not None else 2.5 * eps / steps  # Madry et al.'s rule of thumb
    x_adv = x.detach().clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device)
        x_adv = (x_adv + (2 * noise - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv + alpha * _input_grad(model, x_adv, y).sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()
    return x_adv


@torch.no_grad()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((model(x).argmax(1) == y).sum())


def accuracy_under_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str = "none",
                          eps: float = 0.0, *, batch_size: int = 500, pgd_steps: int = 20,
                          seed: int = 0) -> float:
    """Fraction of ``x`` classified correctly after ``attack`` (none | fgsm | pgd) at radius ``eps``."""
    if attack not in ("none", "fgsm", "pgd"):
        raise ValueError(f"unknown attack {attack!r} (choose none, fgsm or pgd)")
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    try:
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            if attack == "fgsm":
                xb = fgsm(model, xb, yb, eps)
            elif attack == "pgd":
                xb = pgd(model, xb, yb, eps, steps=pgd_steps, generator=gen)
            correct += _correct(model, xb, yb)
    finally:
        model.train(was_training)
    return correct / len(x)
