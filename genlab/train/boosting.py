"""Hidden units trained group by group on pseudo-residuals (gradient boosting of a one-hidden-layer net).

Emami & Martínez-Muñoz, "Sequential training of neural networks with gradient boosting" (arXiv
1909.12098; IEEE Access 2023), Algorithm 1: the output bias starts at the constant F₀ that minimizes
the mean loss; at step t = 1..T a new group of J hidden units with its own output weights, h_t, is
fitted by squared error to the pseudo-residuals r = −∂ℓ(F_{t−1}(x), y)/∂F of the current model,
earlier groups frozen; F_t = F_{t−1} + ν·h_t (ν the shrinkage). The T groups form one network with
T·J hidden units, and switching off the last-trained groups leaves the model F_t of an earlier step.

Losses: ``"squared"`` ℓ = ½‖F − y‖² (r = y − F, F₀ = mean y) and ``"cross_entropy"`` (r =
onehot(y) − softmax(F), F₀ = log class frequencies). With one group, ν = 1 and the squared loss,
the group's objective ½‖r − h‖² = ½‖y − (F₀ + h)‖² is ordinary training of the whole network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from genlab.errors import InputError
from genlab.train.optimizers import make_optimizer

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": torch.relu, "tanh": torch.tanh}
LOSSES = ("squared", "cross_entropy")


class GroupedNet(nn.Module):
    """f(x) = out(σ(hidden(x)) ⊙ mask) + base + Σ_{t on} group_bias_t: one hidden layer whose units
    come in ``groups`` groups of ``group_size``, each group with its own output-bias share;
    ``forward(x, groups=k)`` switches off every group after the k-th (units and bias share)."""

    def __init__(self, d_in: int, d_out: int, groups: int, group_size: int, activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InputError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.group_size, self.groups, self.activation = group_size, groups, activation
        self.hidden = nn.Linear(d_in, groups * group_size)
        self.out = nn.Linear(groups * group_size, d_out, bias=False)
        self.base = nn.Parameter(torch.zeros(d_out))
        self.group_bias = nn.Parameter(torch.zeros(groups, d_out))

    def forward(self, x: torch.Tensor, groups: int | None = None) -> torch.Tensor:
        k = self.groups if groups is None else max(0, min(groups, self.groups))
        h = ACTIVATIONS[self.activation](self.hidden(x))
        if k < self.groups:
            h = h * (torch.arange(h.shape[1]) < k * self.group_size).to(h.dtype)
        return self.out(h) + self.base + self.group_bias[:k].sum(0)


def initial_constant(loss: str, y: torch.Tensor, d_out: int) -> torch.Tensor:
    """F₀ = argmin_c mean ℓ(c, y): the mean target (squared) or the log class frequencies (cross-entropy)."""
    if loss == "squared":
        return y.reshape(len(y), -1).mean(0)
    freq = torch.bincount(y, minlength=d_out).to(torch.get_default_dtype()) / len(y)
    return torch.log(freq.clamp_min(1e-12))


def pseudo_residuals(loss: str, F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """r = −∂ℓ(F, y)/∂F per example: y − F (squared) or onehot(y) − softmax(F) (cross-entropy)."""
    if loss == "squared":
        return y.reshape(F.shape) - F
    return torch.nn.functional.one_hot(y, F.shape[1]).to(F.dtype) - torch.softmax(F, dim=1)


@dataclass
class BoostResult:
    """The assembled network, the shrinkage, and per group the final squared error of its fit."""

    model: GroupedNet
    shrinkage: float
    fit_loss: list[float] = field(default_factory=list)
    multipliers: list[float] = field(default_factory=list)


def _mean_loss(loss: str, F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if loss == "squared":
        return 0.5 * ((F - y.reshape(F.shape)) ** 2).sum(1).mean()
    return torch.nn.functional.cross_entropy(F, y)


def _line_search(loss: str, F: torch.Tensor, h: torch.Tensor, y: torch.Tensor, iters: int = 20) -> float:
    """ρ = argmin_ρ ≥ 0 mean ℓ(F + ρh): the loss is convex in ρ (squared error and cross-entropy are
    convex in F), so 1-D Newton steps from ρ = 1, kept ≥ 0, converge."""
    with torch.enable_grad():
        return _newton_1d(loss, F.detach(), h.detach(), y, iters)


def _newton_1d(loss: str, F: torch.Tensor, h: torch.Tensor, y: torch.Tensor, iters: int) -> float:
    rho = torch.ones((), dtype=F.dtype, requires_grad=True)
    for _ in range(iters):
        val = _mean_loss(loss, F + rho * h, y)
        (g,) = torch.autograd.grad(val, rho, create_graph=True)
        (hh,) = torch.autograd.grad(g, rho)
        with torch.no_grad():
            step = g / hh if hh > 0 else g
            rho.copy_((rho - step).clamp_min(0.0))
        if abs(float(step)) < 1e-10:
            break
    return float(rho.detach())


def boosted_fit(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str = "cross_entropy",
    groups: int = 4,
    group_size: int = 8,
    steps: int = 200,
    lr: float = 1e-2,
    optimizer: str = "adam",
    shrinkage: float = 1.0,
    activation: str = "relu",
    line_search: bool = False,
    seed: int = 0,
    **optimizer_options: Any,
) -> BoostResult:
    """Train a :class:`GroupedNet` group by group (module docstring): each group is a fresh
    ``Linear(d, group_size) → σ → Linear(group_size, d_out)`` (torch's default init from ``seed + t``)
    fitted by ``steps`` full-batch steps of ``optimizer`` to ½·mean‖r − h(x)‖². With ``line_search``
    the group enters with the multiplier ρ_t = argmin_ρ mean ℓ(F + ρ·h_t) (Friedman 2001, Algorithm 1,
    line 4), F_t = F_{t−1} + ν·ρ_t·h_t; without it ρ_t = 1."""
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    if groups < 1 or group_size < 1 or steps < 0:
        raise InputError(f"groups and group_size must be >= 1 and steps >= 0, got {groups}, {group_size}, {steps}")
    if not shrinkage > 0:
        raise InputError(f"shrinkage must be > 0, got {shrinkage}")
    d_in = x.shape[1]
    d_out = int(y.max()) + 1 if loss == "cross_entropy" else (1 if y.ndim == 1 else y.shape[1])
    net = GroupedNet(d_in, d_out, groups, group_size, activation).to(x.dtype)
    act = ACTIVATIONS[activation]
    F = initial_constant(loss, y, d_out).to(x.dtype).expand(len(x), d_out).clone()
    out = BoostResult(net, shrinkage)
    with torch.no_grad():
        net.base.copy_(F[0])
    for t in range(groups):
        r = pseudo_residuals(loss, F, y).detach()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + t)
            first, last = nn.Linear(d_in, group_size).to(x.dtype), nn.Linear(group_size, d_out).to(x.dtype)
        opt = make_optimizer(optimizer, list(first.parameters()) + list(last.parameters()), lr, **optimizer_options)
        for _ in range(steps):
            opt.zero_grad()
            fit = 0.5 * ((r - last(act(first(x)))) ** 2).sum(1).mean()
            fit.backward()
            opt.step()
        with torch.no_grad():
            h = last(act(first(x)))
            out.fit_loss.append(float(0.5 * ((r - h) ** 2).sum(1).mean()))
            rho = _line_search(loss, F, h, y) if line_search else 1.0
            out.multipliers.append(rho)
            F = F + shrinkage * rho * h
            sl = slice(t * group_size, (t + 1) * group_size)
            net.hidden.weight[sl] = first.weight
            net.hidden.bias[sl] = first.bias
            net.out.weight[:, sl] = shrinkage * rho * last.weight
            net.group_bias[t] = shrinkage * rho * last.bias
    return out
