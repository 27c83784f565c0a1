"""Learning dynamics of a two-layer linear network (Saxe, McClelland & Ganguli 2013).

Saxe, McClelland & Ganguli 2013/2014, "Exact solutions to the nonlinear dynamics of learning in
deep linear neural networks" (ICLR 2014; arXiv 1312.6120), Sec. 2: with whitened inputs
(Σ¹¹ = I), input–output correlation Σ³¹ = Σ_α s_α u_α v_αᵀ and decoupled balanced initial
conditions, each mode strength u = a·b obeys τ du/dt = 2u(s − u), so
    u(t) = s·e^{2st/τ} / (e^{2st/τ} − 1 + s/u₀)
and reaching u_f from u₀ takes t = (τ/2s)·ln[u_f(s − u₀) / (u₀(s − u_f))].
For gradient descent with step η on L = ½E‖y − W₂W₁x‖², t counts steps and τ = 1/η.
"""

from __future__ import annotations

import numpy as np


def saxe_mode_strength(t: np.ndarray | float, s: float, u0: float, tau: float) -> np.ndarray:
    """u(t) = s·e^{2st/τ} / (e^{2st/τ} − 1 + s/u₀) (Saxe et al. 2013, Sec. 2), for 0 < u₀, s > 0.

    Written as s / (1 + (s/u₀ − 1)e^{−2st/τ}) to stay finite for large t."""
    if s <= 0 or u0 <= 0 or tau <= 0:
        raise ValueError("need s > 0, u0 > 0, tau > 0")
    t = np.asarray(t, dtype=float)
    return s / (1.0 + (s / u0 - 1.0) * np.exp(-2.0 * s * t / tau))


def saxe_learning_time(s: float, u0: float, uf: float, tau: float) -> float:
    """Time for a mode to grow from u₀ to u_f: (τ/2s)·ln[u_f(s − u₀)/(u₀(s − u_f))] (Saxe et al. 2013, Sec. 2).

    Needs 0 < u₀ < s and 0 < u_f < s (the mode never reaches s itself)."""
    if not (0 < u0 < s and 0 < uf < s) or tau <= 0:
        raise ValueError("need 0 < u0 < s, 0 < uf < s and tau > 0")
    return tau / (2.0 * s) * float(np.log(uf * (s - u0) / (u0 * (s - uf))))
