"""Convergence per kernel mode: the training residual projected onto the NTK's eigenvectors.

In the kernel regime, gradient descent with step η on L = (1/2n)‖f(X) − y‖² moves the residual
r = f(X) − y by r_{t+1} = (I − η·K/n)·r_t with K = Θ(X, X) the (fixed) tangent kernel, so in the
eigenbasis K/n = Σ λ_i v_i v_iᵀ each coordinate c_i = v_iᵀr decays geometrically,

    c_i(t) = (1 − ηλ_i)^t · c_i(0)

(Jacot, Gabriel & Hongler 2018, arXiv 1806.07572, §5; Arora, Du, Hu, Li & Wang 2019, "Fine-grained
analysis of optimization and generalization for overparameterized two-layer neural networks",
arXiv 1901.08584, Thm 4.1: ‖r_t‖² ≈ Σ_i (1 − ηλ_i)^{2t}(v_iᵀy)²). The probe measures the c_i along
training and fits each mode's rate; against (1 − ηλ_i) it says how far a network is from the
kernel regime, mode by mode (for a linear model the rates are exact).

- :func:`kernel_modes` — eigen-decomposition of the empirical NTK on the training inputs, K/n.
- :func:`residual_projection` — c = Vᵀ(f(X) − y) at the model's current parameters.
- :func:`mode_rates` — per-mode factor q_i fitted to a recorded sequence c_i(t) (least squares of
  log|c_i| on t, the sign from the successive ratios), with the prediction 1 − ηλ_i when η is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import InputError
from genlab.probes._setup import load_data, model_mode, check_mode
from genlab.probes.kernels import empirical_ntk

__all__ = ["KernelModes", "ModeRates", "kernel_modes", "residual_projection", "mode_rates"]


@dataclass(frozen=True)
class KernelModes:
    """Eigenvalues λ (descending) and eigenvectors (columns) of K(X, X)/n."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    def project(self, residual: np.ndarray) -> np.ndarray:
        """c = Vᵀ r for a residual vector r of length n."""
        r = np.asarray(residual, dtype=np.float64).reshape(-1)
        if r.shape[0] != self.eigenvectors.shape[0]:
            raise InputError(f"residual: got length {r.shape[0]}; the kernel has n = {self.eigenvectors.shape[0]}")
        return self.eigenvectors.T @ r

    def predicted_factors(self, lr: float) -> np.ndarray:
        """1 − η·λ_i: each mode's per-step factor under GD with step η in the kernel regime."""
        return 1.0 - float(lr) * self.eigenvalues

    def scalars(self) -> dict[str, float]:
        return {"lambda_max": float(self.eigenvalues[0]), "lambda_min": float(self.eigenvalues[-1])}


def kernel_modes(model: torch.nn.Module, x, *, mode: str = "eval", output_fn=None) -> KernelModes:
    """Eigen-decomposition of K/n with K the empirical NTK (:func:`genlab.probes.kernels.empirical_ntk`)
    of a scalar-output model on the n inputs ``x`` (float64 eigh)."""
    k = empirical_ntk(model, x, mode=mode, output_fn=output_fn).detach().double().numpy()
    if k.ndim != 2:
        raise InputError("model: residual modes need a scalar-output model (outputs (n,) or (n, 1))")
    n = k.shape[0]
    lam, vec = np.linalg.eigh((k + k.T) / (2 * n))
    return KernelModes(eigenvalues=lam[::-1].copy(), eigenvectors=vec[:, ::-1].copy())


@torch.no_grad()
def residual_projection(model: torch.nn.Module, data, modes: KernelModes, *, mode: str = "eval", output_fn=None) -> np.ndarray:
    """c = Vᵀ(f(X) − y) for ``data`` = (inputs, targets) (or batches of them, concatenated in
    order, which must be the order of the kernel's inputs); the model is left as it was."""
    check_mode(mode)
    d = load_data(data)
    x, y = d.whole()
    with model_mode(model, mode):
        out = model(x)
    if output_fn is not None:
        out = output_fn(out)
    if out.numel() != y.numel():
        raise InputError(f"model: outputs {tuple(out.shape)} do not match targets {tuple(y.shape)}; a scalar output is needed")
    return modes.project((out.reshape(-1) - y.reshape(-1).to(out.dtype)).double().numpy())


@dataclass(frozen=True)
class ModeRates:
    """Per-mode factors q_i fitted to c_i(t) ≈ c_i(0)·q_i^t, and the kernel prediction 1 − ηλ_i."""

    steps: np.ndarray
    projections: np.ndarray  # (T, n)
    factors: np.ndarray  # fitted q_i (nan where a mode had fewer than 2 usable points)
    predicted: np.ndarray | None  # 1 − ηλ_i, or None

    def scalars(self) -> dict[str, float]:
        out = {"rate_mode0": float(self.factors[0])}
        if self.predicted is not None:
            ok = np.isfinite(self.factors)
            out["max_rate_error"] = float(np.max(np.abs(self.factors[ok] - self.predicted[ok]))) if ok.any() else float("nan")
        return out


def mode_rates(
    steps, projections, *, modes: KernelModes | None = None, lr: float | None = None, floor: float = 1e-3
) -> ModeRates:
    """Fit q_i per mode from projections (T, n) recorded at ``steps`` (T increasing integers):
    |q_i| = exp(slope of log|c_i(t)| on t) over the first stretch of points where
    |c_i(t)| > ``floor``·|c_i(t_0)| (once a mode has decayed that far, what is left of it is fed
    by the other modes through the kernel's change at finite width, or is rounding noise),
    sign(q_i) = the sign of the median ratio c_i(t+1)/c_i(t) on consecutive steps of that
    stretch. A mode with fewer than 2 such points gets nan. With ``modes`` and ``lr``, also 1 − ηλ_i."""
    t = np.asarray(steps, dtype=np.float64).reshape(-1)
    c = np.asarray(projections, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != t.shape[0] or t.shape[0] < 2:
        raise InputError(f"projections: got shape {c.shape}; need (T, n) with T = len(steps) >= 2")
    if np.any(np.diff(t) <= 0):
        raise InputError("steps: must be strictly increasing")
    factors = np.full(c.shape[1], np.nan)
    for i in range(c.shape[1]):
        a = np.abs(c[:, i])
        above = a > floor * a[0]
        stop = int(np.argmin(above)) if not above.all() else len(a)  # the first point at or below the floor
        keep = np.zeros(len(a), dtype=bool)
        keep[:stop] = True
        if a[0] == 0 or keep.sum() < 2:
            continue
        slope = np.polyfit(t[keep], np.log(a[keep]), 1)[0]
        pairs = keep[:-1] & keep[1:] & (np.diff(t) == 1)
        ratios = c[1:, i][pairs] / c[:-1, i][pairs]
        sign = -1.0 if ratios.size and np.median(ratios) < 0 else 1.0
        factors[i] = sign * np.exp(slope)
    predicted = modes.predicted_factors(lr) if (modes is not None and lr is not None) else None
    return ModeRates(steps=t, projections=c, factors=factors, predicted=predicted)
