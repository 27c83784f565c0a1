"""Flatness measures by weight perturbation: PAC-Bayes σ search and worst-case (ε-ascent) sharpness.

Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020 ("Fantastic generalization measures and where to
find them", arXiv 1912.02178, Sec. 7 and Appendix C.3–C.4):

- PAC-Bayes flatness 1/σ'²: σ' is the largest σ for which Gaussian weight noise u ~ N(0, σ²I)
  lowers the training accuracy by at most ``target`` (0.1) on average (Eq. 47, after McAllester
  1999 and Dziugaite & Roy 2017, arXiv 1703.11008). The magnitude-aware variant draws
  u_i ~ N(0, σ²w_i² + ε²) (Eq. 51, ε = 10⁻³). The noise has standard deviation σ — not σ²: a
  public reimplementation drew it with std σ², which changes every value of the measure.
- Sharpness flatness 1/α'²: α' is the largest α for which the worst perturbation in the box
  |u_i| ≤ α (magnitude-aware: |u_i| ≤ α|w_i| + ε) lowers the training accuracy by at most
  ``target``; the worst perturbation is searched by projected sign-gradient ascent on the loss
  (Keskar et al. 2017, arXiv 1609.04836; Jiang et al. Eqs. 52–55).

Both searches bisect on a log scale with the same random draws for every σ (common random numbers),
so the accuracy drop is a deterministic function of σ; the result satisfies the bisection
invariant drop(σ') ≤ target < drop(σ'·(1 + rtol)) unless the bracket is hit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from genlab.errors import InputError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FlatnessResult:
    """The σ' (or α') found, 1/σ'², the accuracy drop there and the bracket's end points."""

    scale: float
    upper: float  # the bisection's last scale with drop > target (= scale when the bracket was hit)
    flatness: float
    drop: float
    accuracy: float
    evaluations: int

    def scalars(self) -> dict[str, float]:
        return {"scale": self.scale, "flatness": self.flatness, "drop": self.drop}


def perturbation(
    params: list[torch.Tensor], sigma: float, generator: torch.Generator, magnitude_aware: bool = False, eps: float = 1e-3
) -> list[torch.Tensor]:
    """Gaussian noise for each tensor: std σ (``magnitude_aware``: std sqrt(σ²w² + ε²) per entry)."""
    out = []
    for p in params:
        z = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        std = torch.sqrt(sigma**2 * p.detach().double() ** 2 + eps**2) if magnitude_aware else torch.full_like(z, sigma)
        out.append((z * std).to(p.dtype))
    return out


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(-1) == y).double().mean())


def bisect_scale(drop: Callable[[float], float], target: float, lo: float, hi: float, rtol: float = 0.02) -> tuple[float, float, int]:
    """Largest s in [lo, hi] (log-scale bisection) with drop(s) ≤ target: returns (s, s_up, evaluations).

    Invariant: drop(lo) ≤ target < drop(hi) for the returned lo and the final hi, hi/lo ≤ 1 + rtol.
    If drop(hi) ≤ target already, hi is returned; if drop(lo) > target, lo is returned."""
    if not (0 < lo < hi):
        raise InputError(f"bracket: need 0 < lo < hi, got lo={lo!r}, hi={hi!r}")
    n = 2
    if drop(hi) <= target:
        return hi, hi, 1
    if drop(lo) > target:
        return lo, lo, n
    while hi / lo > 1 + rtol:
        mid = math.sqrt(lo * hi)
        n += 1
        if drop(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo, hi, n


def _check(target: float, draws: int) -> None:
    if not 0 < target < 1:
        raise InputError(f"target: got {target!r}; must be an accuracy drop in (0, 1)")
    if not (isinstance(draws, int) and draws >= 1):
        raise InputError(f"draws: got {draws!r}; must be an integer >= 1")


def pac_bayes_sigma(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: float = 0.1,
    draws: int = 8,
    magnitude_aware: bool = False,
    eps: float = 1e-3,
    bracket: tuple[float, float] = (1e-5, 10.0),
    rtol: float = 0.02,
    seed: int = 0,
) -> FlatnessResult:
    """σ' of the PAC-Bayes flatness (Jiang et al. Eqs. 47 and 51): the largest σ with
    E_u[acc(w)] − E_u[acc(w + u)] ≤ ``target``, the expectation over ``draws`` noise draws
    (the same draws for every σ). Every parameter is perturbed; the model is measured in eval mode
    on a copy (never modified)."""
    _check(target, draws)
    net = copy.deepcopy(model).eval()
    params = list(net.parameters())
    w0 = [p.detach().clone() for p in params]
    acc0 = _accuracy(net, x, y)
    # standard normal directions once (common random numbers): u = σ·z (or z·sqrt(σ²w² + ε²))
    g = torch.Generator().manual_seed(seed)
    zs = [perturbation(w0, 1.0, g, False, 0.0) for _ in range(draws)]

    @torch.no_grad()
    def drop(sigma: float) -> float:
        accs = []
        for z in zs:
            for p, w, zi in zip(params, w0, z):
                std = torch.sqrt(sigma**2 * w.double() ** 2 + eps**2).to(w.dtype) if magnitude_aware else sigma
                p.copy_(w + zi * std)
            accs.append(_accuracy(net, x, y))
        for p, w in zip(params, w0):
            p.copy_(w)
        return acc0 - sum(accs) / len(accs)

    s, up, n = bisect_scale(drop, target, *bracket, rtol=rtol)
    return FlatnessResult(scale=s, upper=up, flatness=1.0 / s**2, drop=drop(s), accuracy=acc0, evaluations=n + 1)


def pac_bayes_bound(dist_sq: float, sigma: float, m: int) -> float:
    """Jiang et al.'s PAC-Bayes measure (Eq. 46, "pacbayes.init"): ‖w − w⁰‖²/(4σ'²) + log(m/σ') + 10."""
    return dist_sq / (4 * sigma**2) + math.log(m / sigma) + 10.0


def box_ascent(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    radius: float,
    steps: int = 10,
    restarts: int = 1,
    magnitude_aware: bool = False,
    eps: float = 1e-3,
    seed: int = 0,
) -> tuple[float, list[torch.Tensor]]:
    """The largest loss found in the box |u_i| ≤ r_i (r_i = radius, or radius·|w_i| + ε) by
    projected sign-gradient ascent (step 2r/steps; first step from a uniform random point of the
    box, ``restarts`` starts): returns (max loss found, its perturbation). A lower bound on the max."""
    if not (radius > 0 and math.isfinite(radius)):
        raise InputError(f"radius: got {radius!r}; must be a finite number > 0")
    net = copy.deepcopy(model).eval()
    params = [p for p in net.parameters() if p.requires_grad]
    w0 = [p.detach().clone() for p in params]
    r = [(radius * w.abs() + eps) if magnitude_aware else torch.full_like(w, radius) for w in w0]
    g = torch.Generator().manual_seed(seed)
    best, best_u = -math.inf, [torch.zeros_like(w) for w in w0]
    for _ in range(restarts):
        u = [(torch.rand(w.shape, generator=g, dtype=w.dtype) * 2 - 1) * ri for w, ri in zip(w0, r)]
        for it in range(steps + 1):
            with torch.no_grad():
                for p, w, ui in zip(params, w0, u):
                    p.copy_(w + ui)
            loss = loss_fn(net(x), y)
            if float(loss.detach()) > best:
                best, best_u = float(loss.detach()), [ui.clone() for ui in u]
            if it == steps:
                break
            grads = torch.autograd.grad(loss, params)
            u = [torch.maximum(torch.minimum(ui + 2 * ri / steps * gi.sign(), ri), -ri) for ui, gi, ri in zip(u, grads, r)]
    return best, best_u


def sharpness_alpha(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    target: float = 0.1,
    steps: int = 10,
    restarts: int = 1,
    magnitude_aware: bool = False,
    eps: float = 1e-3,
    bracket: tuple[float, float] = (1e-5, 10.0),
    rtol: float = 0.02,
    seed: int = 0,
) -> FlatnessResult:
    """α' of the sharpness flatness (Jiang et al. Eqs. 53 and 55): the largest α whose worst
    perturbation found by :func:`box_ascent` lowers the training accuracy by at most ``target``."""
    _check(target, restarts)
    net = copy.deepcopy(model).eval()
    acc0 = _accuracy(net, x, y)

    def drop(alpha: float) -> float:
        _, u = box_ascent(net, loss_fn, x, y, alpha, steps, restarts, magnitude_aware, eps, seed)
        moved = copy.deepcopy(net)
        with torch.no_grad():
            for p, ui in zip([p for p in moved.parameters() if p.requires_grad], u):
                p.add_(ui)
        return acc0 - _accuracy(moved, x, y)

    s, up, n = bisect_scale(drop, target, *bracket, rtol=rtol)
    return FlatnessResult(scale=s, upper=up, flatness=1.0 / s**2, drop=drop(s), accuracy=acc0, evaluations=n + 1)
