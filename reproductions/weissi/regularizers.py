"""Weight penalties: plain L2 and the weight-scale-shift-invariant WEISSI term.

Why L2 misses its target
------------------------
In a ReLU network ``relu(c * z) = c * relu(z)`` for any ``c > 0``. Multiply the weights
and bias of layer ``l`` by ``c`` and the weights of layer ``l+1`` by ``1/c``: every
output is exactly what it was. The function did not change, yet the L2 penalty
``||W_l||^2 + ||W_{l+1}||^2`` did, and along this family of equivalent networks it is
smallest when the layer norms are equal. So weight decay can be lowered "for free" by
moving scale between layers, without making the function any simpler; what it does not
pin down is the product of the layer norms, the quantity that bounds the network's
input gradient (its Lipschitz constant).

The WEISSI term
---------------
Replace ``f(||W||) = ||W||^2`` by ``f(||W||) = log ||W||``. Then the shift above adds
``log c - log c = 0``: the penalty is a function of ``prod_l ||W_l||`` only. Its gradient
``W / ||W||^2`` is a weight decay whose strength falls as the layer grows, and is the
same for every member of an equivalent family. A second, also scale-free, term pushes
the *direction* of each weight matrix towards sparsity::

    R(W_1..W_L) = lambda_e * sum_l log ||W_l||_F  +  lambda_n * sum_l || W_l / ||W_l||_F ||_1

``||.||_F`` is the Frobenius norm (all entries of the matrix or conv kernel), ``||.||_1``
the entrywise L1 norm. Biases are not penalised (they scale with their layer, and a
penalty on them would break the invariance). This is the form given in the secondary
write-ups of arXiv 2008.02965 (Su Jianlin, kexue.fm/archives/7681; Zheng Zhijie's
paper notes); we could not read the paper itself, so its exact constants and any
per-layer weighting it may use are not confirmed — see the card's notes.

Everything here works on a list of tensors, so it composes with any optimizer: add
``penalty(weights)`` to the loss before ``backward()``. `decoupled_weissi_` is the
AdamW-style alternative for the log-norm part (our extension, not taken from the paper).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

_TINY = 1e-12  # keeps log/divide finite if a layer is ever exactly zero


def weight_matrices(model: nn.Module, layers: str | Sequence[str] = "all") -> list[torch.Tensor]:
    """The weight tensors of the model's Linear and Conv layers (never biases, never norm layers).

    ``layers="all"`` takes every such layer in definition order; a list of module names
    (``["net.0", "net.2"]``) takes exactly those and fails loudly on a typo.
    """
    found = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))}
    if layers == "all":
        return [m.weight for m in found.values()]
    missing = [n for n in layers if n not in found]
    if missing:
        raise KeyError(f"no Linear/Conv layer named {', '.join(missing)} (have: {', '.join(found)})")
    return [found[n].weight for n in layers]


def l2_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_l ||W_l||_F^2 / 2`` — the term whose gradient is plain weight decay ``W``."""
    return sum(0.5 * w.pow(2).sum() for w in weights)


def log_norm_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_l log ||W_l||_F = log prod_l ||W_l||_F`` — invariant to weight scale shifts."""
    return sum(torch.log(w.norm() + _TINY) for w in weights)


def direction_l1_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_l || W_l / ||W_l||_F ||_1`` — depends on each layer's direction only."""
    return sum(w.abs().sum() / (w.norm() + _TINY) for w in weights)


def weissi_penalty(weights: Sequence[torch.Tensor], lambda_e: float, lambda_n: float = 0.0) -> torch.Tensor:
    """The WEISSI term ``lambda_e * sum log||W|| + lambda_n * sum ||W/||W|| ||_1``."""
    total = lambda_e * log_norm_penalty(weights)
    if lambda_n:
        total = total + lambda_n * direction_l1_penalty(weights)
    return total


def weissi_penalty_reference(weights: Sequence[torch.Tensor], lambda_e: float, lambda_n: float = 0.0) -> float:
    """The same value entry by entry in plain Python floats — the slow path tests compare to."""
    import math

    total = 0.0
    for w in weights:
        entries = [float(v) for v in w.detach().flatten().tolist()]
        fro = math.sqrt(sum(v * v for v in entries))
        total += lambda_e * math.log(fro + _TINY) + lambda_n * sum(abs(v) for v in entries) / (fro + _TINY)
    return total


def weissi_grad(w: torch.Tensor, lambda_e: float, lambda_n: float = 0.0) -> torch.Tensor:
    """Closed-form gradient of one layer's WEISSI term (for tests and for the decoupled step).

    d/dW log||W||         = W / ||W||^2
    d/dW ||W||_1 / ||W||  = sign(W) / ||W|| - ||W||_1 * W / ||W||^3
    """
    n = w.norm()
    g = lambda_e * w / n**2
    if lambda_n:
        g = g + lambda_n * (torch.sign(w) / n - w.abs().sum() * w / n**3)
    return g


@torch.no_grad()
def decoupled_weissi_(weights: Iterable[torch.Tensor], lr: float, lambda_e: float) -> None:
    """AdamW-style step for the log-norm part: ``W <- W - lr * lambda_e * W / ||W||^2``.

    Call after ``optimizer.step()``. Unlike the coupled form it is not rescaled by an
    adaptive optimizer's second-moment estimate. Our extension: the secondary sources
    we could read describe only the coupled penalty.
    """
    for w in weights:
        w.mul_(1.0 - lr * lambda_e / (w.norm() ** 2 + _TINY))


@dataclass
class Regularizer:
    """One arm's penalty as config: ``kind`` in none | l2 | weissi | weissi_decoupled.

    ``penalty(model)`` is added to the loss; ``after_step(model, lr)`` applies the
    decoupled part (a no-op for the other kinds). ``lam`` is the L2 coefficient.
    """

    kind: str = "none"
    lam: float = 0.0  # l2: loss += lam * sum ||W||^2 / 2, i.e. weight decay lam
    lambda_e: float = 0.0  # weissi: coefficient of sum log ||W||
    lambda_n: float = 0.0  # weissi: coefficient of sum ||W/||W|| ||_1
    layers: str | tuple[str, ...] = "all"

    KINDS = ("none", "l2", "weissi", "weissi_decoupled")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown regularizer {self.kind!r} (choose from {', '.join(self.KINDS)})")

    def weights(self, model: nn.Module) -> list[torch.Tensor]:
        return weight_matrices(model, self.layers)

    def penalty(self, model: nn.Module) -> torch.Tensor:
        ws = self.weights(model)
        if self.kind == "l2":
            return self.lam * l2_penalty(ws)
        if self.kind == "weissi":
            return weissi_penalty(ws, self.lambda_e, self.lambda_n)
        if self.kind == "weissi_decoupled" and self.lambda_n:
            return self.lambda_n * direction_l1_penalty(ws)
        return ws[0].new_zeros(())

    def after_step(self, model: nn.Module, lr: float) -> None:
        if self.kind == "weissi_decoupled":
            decoupled_weissi_(self.weights(model), lr, self.lambda_e)
