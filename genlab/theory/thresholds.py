"""Linear-stability thresholds of first-order optimizers on a quadratic (numpy only).

On L(x) = ½λx² an optimizer is a linear recurrence in x; it converges from every start iff every
root of its characteristic polynomial lies strictly inside the unit circle. The thresholds below
are the boundary of that region, written two ways: the largest stable *normalized step* ηλ, and
the largest stable *sharpness* λ for a given step η (what the Monitor compares λ_max against).

- GD, x ← x − ηλx: stable iff ηλ < 2 (e.g. Cohen, Kaur, Li, Kolter & Talwalkar 2021,
  arXiv 2103.00065, §2; Wu, Ma & E 2018).
- Heavy-ball momentum β ∈ [0, 1), v ← βv + λx, x ← x − ηv (torch.optim.SGD's convention): stable iff
  ηλ < 2(1 + β) (Goh 2017, "Why momentum really works", Distill, §"The critical step size";
  Cohen et al. 2021, Appendix on momentum).
- Nesterov momentum (torch.optim.SGD, ``nesterov=True``): stable iff ηλ < 2(1 + β)/(1 + 2β)
  (characteristic polynomial z² − (1 + β)(1 − ηλ)z + β(1 − ηλ); the same bound appears in
  Cohen et al. 2021, Appendix, for Nesterov).
- Delayed GD, x_{t+1} = x_t − ηλ x_{t−τ}: stable iff ηλ < 2 sin(π / (2(2τ + 1))) — the classical
  result for the delay-difference equation (Levin & May 1976, "A note on difference-delay
  equations", Theor. Popul. Biol. 9; Kuruklis 1994, J. Math. Anal. Appl. 188); ≈ π/(2τ + 1) for
  large τ, so the stable step falls as 1/τ (Giladi, Nacson, Hoffer & Soudry 2020, "At stability's
  edge", ICLR, arXiv 1909.12340, §3).
- Delayed heavy-ball (momentum on τ-stale gradients): no closed form is used here; the threshold is
  the boundary of the root condition of z^{τ+1} − (1 + β)z^τ + βz^{τ−1} + ηλ = 0, found numerically
  (:func:`delayed_momentum_step_threshold`). Giladi et al. 2020 (§4) show that momentum lowers it.
- Adam with a frozen preconditioner P = diag(√v̂ + ε): m ← β₁m + (1 − β₁)g, x ← x − ηP⁻¹m is
  heavy-ball on P⁻¹H with step η(1 − β₁) and momentum β₁, so it is stable iff the preconditioned
  sharpness λ_max(P⁻¹H) < (2 + 2β₁)/((1 − β₁)η) — 38/η at β₁ = 0.9 (Cohen, Ghorbani, Krishnan,
  Agarwal, Medapati, Badura, Suo, Cardoze, Nado, Dahl & Gilmer 2022, "Adaptive gradient methods at
  the edge of stability", arXiv 2207.14484, §3 and eq. 2). Bias correction of m is ignored
  (it tends to 1).
"""

from __future__ import annotations

import math

import numpy as np


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _momentum(beta: float) -> float:
    b = float(beta)
    if not (0.0 <= b < 1.0):
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    return b


def _delay(tau: int) -> int:
    if isinstance(tau, bool) or int(tau) != tau or tau < 0:
        raise ValueError(f"tau must be an integer >= 0, got {tau!r}")
    return int(tau)


# -- largest stable normalized step ηλ -------------------------------------------------------------
def gd_step_threshold() -> float:
    """Largest stable ηλ of gradient descent on a quadratic: 2."""
    return 2.0


def heavy_ball_step_threshold(beta: float) -> float:
    """Largest stable ηλ of heavy-ball momentum β (torch.optim.SGD convention): 2(1 + β) (Goh 2017)."""
    return 2.0 * (1.0 + _momentum(beta))


def nesterov_step_threshold(beta: float) -> float:
    """Largest stable ηλ of Nesterov momentum β (torch.optim.SGD, nesterov=True): 2(1 + β)/(1 + 2β)."""
    b = _momentum(beta)
    return 2.0 * (1.0 + b) / (1.0 + 2.0 * b)


def delayed_gd_step_threshold(tau: int) -> float:
    """Largest stable ηλ of GD with a fixed delay τ, x_{t+1} = x_t − ηλ x_{t−τ}:
    2 sin(π / (2(2τ + 1))) (Levin & May 1976; Kuruklis 1994). τ = 0, 1, 2 give 2, 1, 0.618."""
    t = _delay(tau)
    return 2.0 * math.sin(math.pi / (2.0 * (2 * t + 1)))


def delayed_momentum_polynomial(a: float, tau: int, beta: float = 0.0) -> np.ndarray:
    """Coefficients (highest power first) of the characteristic polynomial of
    x_{t+1} = (1 + β)x_t − βx_{t−1} − a·x_{t−τ}, a = ηλ (heavy-ball on τ-stale gradients)."""
    t, b = _delay(tau), _momentum(beta)
    n = max(t + 1, 2)  # degree: the state spans x_t … x_{t−max(τ,1)}
    c = np.zeros(n + 1)  # c[k] multiplies z^{n−k}
    c[0] = 1.0
    c[1] -= 1.0 + b
    c[2] += b
    c[1 + t] += a  # a·z^{n−1−τ} ↔ a·x_{t−τ}
    return c


def delayed_momentum_spectral_radius(a: float, tau: int, beta: float = 0.0) -> float:
    """Largest root modulus of :func:`delayed_momentum_polynomial` (< 1 ⇔ stable)."""
    return float(np.max(np.abs(np.roots(delayed_momentum_polynomial(a, tau, beta)))))


def delayed_momentum_step_threshold(tau: int, beta: float = 0.0, tol: float = 1e-10) -> float:
    """Largest stable ηλ of heavy-ball momentum β on τ-stale gradients, by bisection on the
    spectral radius of the recurrence (the stable set in a = ηλ is an interval (0, a*): the roots
    leave the unit disk once, as the scan in the tests confirms). With β = 0 it equals
    :func:`delayed_gd_step_threshold`; Giladi et al. 2020 (arXiv 1909.12340, §4) show β > 0 lowers it
    at large delays."""
    t, b = _delay(tau), _momentum(beta)
    lo, hi = 0.0, 2.0 * (1.0 + b) + 1e-9  # the τ = 0 bound is an upper bound for every τ
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if delayed_momentum_spectral_radius(mid, t, b) < 1.0:
            lo = mid
        else:
            hi = mid
    return lo


def adam_step_threshold(beta1: float) -> float:
    """Largest stable η·λ(P⁻¹H) of Adam with a frozen preconditioner: (2 + 2β₁)/(1 − β₁)
    (Cohen et al. 2022, arXiv 2207.14484, eq. 2)."""
    b = _momentum(beta1)
    return (2.0 + 2.0 * b) / (1.0 - b)


# -- largest stable sharpness for a step η -----------------------------------------------------------
def gd_sharpness_threshold(eta: float) -> float:
    """2/η: GD at step η is linearly stable only where λ_max(∇²L) < 2/η."""
    return gd_step_threshold() / _positive("eta", eta)


def heavy_ball_sharpness_threshold(eta: float, beta: float) -> float:
    """2(1 + β)/η: the sharpness heavy-ball momentum β at step η can stay at (Goh 2017)."""
    return heavy_ball_step_threshold(beta) / _positive("eta", eta)


def nesterov_sharpness_threshold(eta: float, beta: float) -> float:
    """2(1 + β)/((1 + 2β)η) for Nesterov momentum β at step η."""
    return nesterov_step_threshold(beta) / _positive("eta", eta)


def delayed_gd_sharpness_threshold(eta: float, tau: int) -> float:
    """2 sin(π/(2(2τ + 1)))/η for GD on gradients τ steps stale (Giladi et al. 2020)."""
    return delayed_gd_step_threshold(tau) / _positive("eta", eta)


def adam_sharpness_threshold(eta: float, beta1: float) -> float:
    """(2 + 2β₁)/((1 − β₁)η): the preconditioned sharpness λ_max(P⁻¹H) at which Adam's edge of
    stability sits (Cohen et al. 2022, arXiv 2207.14484, eq. 2); 38/η at β₁ = 0.9."""
    return adam_step_threshold(beta1) / _positive("eta", eta)
