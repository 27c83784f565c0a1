"""Deep NNGP and NTK of fully connected networks through dual activations (numpy only).

Setting (Radhakrishnan, Belkin & Uhler 2023, "Wide and deep neural networks achieve consistency
for classification", PNAS 120, arXiv 2204.14126, §2): inputs on the unit sphere (or on the sphere
of radius √d₀ with the 1/√d₀ input scale of the NTK parameterization), no biases, an activation φ
normalized so that E[φ(z)²] = 1 for z ~ N(0, 1). Its dual activation (Daniely, Frostig & Singer
2016, "Toward deeper understanding of neural networks", arXiv 1602.05897, §4 Def. of the dual
activation) is

    ξ(ρ) = E[φ(u)φ(v)],   (u, v) standard Gaussians with correlation ρ,   ξ(1) = 1,

and its derivative is the dual of φ' (Daniely et al. 2016, Lemma 11 (Hermite expansion):
ξ(ρ) = Σ a_k² ρ^k for φ = Σ a_k h_k, so ξ'(ρ) = E[φ'(u)φ'(v)]). Every layer then keeps unit
variance and the kernels of a network with ``depth`` hidden layers of width → ∞ (NTK
parameterization, σ_w² = 1, Jacot, Gabriel & Hongler 2018, arXiv 1806.07572, Thm 1; Arora, Du, Hu,
Li, Salakhutdinov & Wang 2019, arXiv 1904.11955, eqs. (9)–(10) and Thm 3.1) are

    Σ¹ = ρ₀ = x·x'/(‖x‖‖x'‖),   Σ^{l+1} = ξ(Σ^l),   Σ̇^{l+1} = ξ'(Σ^l),
    Θ¹ = Σ¹,   Θ^{l+1} = Θ^l·Σ̇^{l+1} + Σ^{l+1}          (l = 1 … depth),

NNGP = Σ^{depth+1}, NTK = Θ^{depth+1} (the same recursion as Radhakrishnan et al., §2 eq. for
K^{(L)}, and as :func:`genlab.theory.kernels.relu_kernels` with σ_w² = 2, σ_b² = 0 for ReLU).
On the diagonal ρ = 1 at every layer, so Θ(x, x) = D_{depth+1} with D₁ = 1, D_{l+1} = 1 + ξ'(1)·D_l;
``normalize=True`` returns Θ/D, computed as a ratio at each layer so that activations with
ξ'(1) > 1 (diagonal growing like ξ'(1)^depth) do not overflow at large depth.

The activations (their duals on unit-variance inputs):

- ``relu``: φ = √2·relu, ξ(ρ) = (√(1−ρ²) + (π − arccos ρ)ρ)/π, ξ'(ρ) = (π − arccos ρ)/π (Cho & Saul
  2009, "Kernel methods for deep learning", NIPS, arc-cosine kernels of degree 1 and 0).
- ``erf``: φ = erf/c with c² = (2/π)·arcsin(2/3), ξ(ρ) = arcsin(2ρ/3)/arcsin(2/3) (Williams 1997,
  "Computing with infinite networks", NIPS, eq. (11) with unit input variance).
- ``sine`` (parameter a > 0): φ(z) = sin(√a·z)/√(e^{−a} sinh a), ξ(ρ) = sinh(aρ)/sinh(a) (from
  E[sin(bu)sin(bv)] = e^{−b²}·sinh(b²ρ) for unit-variance u, v). Radhakrishnan et al. use these
  duals ("sine_a" in their code, uhlerlab/inf_depth_ntks).
- ``hermite`` (coefficients c_k ≥ 0, Σc_k = 1): φ = Σ_k √c_k·He_k/√(k!), ξ(ρ) = Σ c_k ρ^k
  (Daniely et al. 2016, Lemma 11; O'Donnell 2014, "Analysis of Boolean functions", §11.2). The
  activations Radhakrishnan et al. build for consistency are of this form (e.g. ξ(ρ) = ρ/2 + ρ³/2,
  their "3d_opt", and ρ/2 + ρ⁷/2 ("2d_opt")).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["DualActivation", "dual_activation", "deep_dual_kernels", "dual_nngp", "dual_ntk"]


@dataclass(frozen=True)
class DualActivation:
    """A normalized activation's dual ξ and its derivative ξ' on [−1, 1], with the name and
    parameters that rebuild the activation itself (:func:`genlab.models.dual_activations.activation`)."""

    name: str
    xi: Callable[[np.ndarray], np.ndarray]
    dxi: Callable[[np.ndarray], np.ndarray]
    params: dict = field(default_factory=dict)

    @property
    def slope_at_one(self) -> float:
        """ξ'(1): the growth factor of the NTK's diagonal per layer."""
        return float(self.dxi(np.array(1.0)))

    @property
    def slope_at_zero(self) -> float:
        """ξ'(0)."""
        return float(self.dxi(np.array(0.0)))


def _relu() -> DualActivation:
    def xi(r):
        r = np.clip(r, -1.0, 1.0)
        return (np.sqrt(1.0 - r * r) + (np.pi - np.arccos(r)) * r) / np.pi

    return DualActivation("relu", xi, lambda r: (np.pi - np.arccos(np.clip(r, -1.0, 1.0))) / np.pi)


def _erf() -> DualActivation:
    c = math.asin(2.0 / 3.0)
    return DualActivation(
        "erf",
        lambda r: np.arcsin(2.0 * np.clip(r, -1.0, 1.0) / 3.0) / c,
        lambda r: (2.0 / 3.0) / np.sqrt(1.0 - 4.0 * np.clip(r, -1.0, 1.0) ** 2 / 9.0) / c,
    )


def _sine(a: float) -> DualActivation:
    if not (isinstance(a, (int, float)) and math.isfinite(a) and 0 < a <= 50):
        raise ValueError(f"a: got {a!r}; the sine activation's parameter must be in (0, 50]")
    s = math.sinh(a)
    return DualActivation("sine", lambda r: np.sinh(a * r) / s, lambda r: a * np.cosh(a * r) / s, {"a": float(a)})


def _hermite(coefficients: Sequence[float]) -> DualActivation:
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != 1 or len(c) < 2 or np.any(c < 0) or not np.all(np.isfinite(c)) or abs(c.sum() - 1) > 1e-9:
        raise ValueError(f"coefficients: got {coefficients!r}; need c_k >= 0 (k = 0, 1, …) with sum 1")
    dc = c[1:] * np.arange(1, len(c))
    return DualActivation(
        "hermite",
        lambda r: np.polynomial.polynomial.polyval(r, c),
        lambda r: np.polynomial.polynomial.polyval(r, dc),
        {"coefficients": [float(v) for v in c]},
    )


def dual_activation(name: str, **params) -> DualActivation:
    """The dual of a named normalized activation: ``relu``, ``erf``, ``sine`` (``a=``) or
    ``hermite`` (``coefficients=[c_0, c_1, …]``); see the module docstring."""
    if name == "relu":
        return _relu()
    if name == "erf":
        return _erf()
    if name == "sine":
        return _sine(params.get("a", 1.0))
    if name == "hermite":
        return _hermite(params.get("coefficients", [0.0, 1.0]))
    raise ValueError(f"activation: got {name!r}; allowed: 'relu', 'erf', 'sine', 'hermite'")


def _cosines(x1: np.ndarray, x2: np.ndarray | None) -> np.ndarray:
    a = np.atleast_2d(np.asarray(x1, dtype=np.float64))
    b = a if x2 is None else np.atleast_2d(np.asarray(x2, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x1 and x2 need the same number of features, got {a.shape[1]} and {b.shape[1]}")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if np.any(na == 0) or np.any(nb == 0):
        raise ValueError("inputs must be nonzero (the kernels are functions of the angle)")
    cos = np.clip((a / na[:, None]) @ (b / nb[:, None]).T, -1.0, 1.0)
    if x2 is None:  # exactly 1: arccos (ReLU's dual) turns a rounding error ε at 1 into √(2ε)
        np.fill_diagonal(cos, 1.0)
    return cos


def deep_dual_kernels(
    x1: np.ndarray,
    x2: np.ndarray | None,
    depths: int | Sequence[int],
    activation: DualActivation | str = "relu",
    *,
    normalize: bool = False,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{depth: (NNGP, NTK)} of shape (n1, n2) for each requested number of hidden layers, in one
    pass of the recursion of the module docstring (Arora et al. 2019, eqs. (9)–(10)). Inputs are
    used through their angles. ``normalize`` divides the NTK by its diagonal value D (the NNGP's
    diagonal is 1 already)."""
    act = dual_activation(activation) if isinstance(activation, str) else activation
    want = sorted({int(d) for d in ([depths] if isinstance(depths, (int, np.integer)) else depths)})
    if not want or want[0] < 0:
        raise ValueError(f"depths: got {depths!r}; need integers >= 0")
    rho = _cosines(x1, x2)
    theta = rho.copy()  # Θ¹ (divided by D₁ = 1 when normalized)
    inv = 1.0  # 1/D_l, kept instead of D_l (which overflows when ξ'(1) > 1)
    slope1 = act.slope_at_one
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if want[0] == 0:
        out[0] = (rho.copy(), theta.copy())
    for layer in range(1, want[-1] + 1):
        nxt, dot = act.xi(rho), act.dxi(rho)
        if normalize:  # Θ^{l+1}/D_{l+1} = (Θ^l/D_l)·ξ'·(D_l/D_{l+1}) + ξ/D_{l+1}
            ratio = 1.0 / (inv + slope1)  # D_l/D_{l+1} = D_l/(1 + ξ'(1)·D_l)
            theta = (theta * dot) * ratio + nxt * (inv * ratio)
            inv = inv * ratio
        else:
            theta = theta * dot + nxt
        rho = np.clip(nxt, -1.0, 1.0)
        if layer in want:
            out[layer] = (rho.copy(), theta.copy())
    return out


def dual_nngp(x1, x2=None, depth: int = 1, activation: DualActivation | str = "relu") -> np.ndarray:
    """NNGP Σ^{depth+1} of the normalized-activation network (Lee et al. 2018, arXiv 1711.00165,
    §2.3 recursion; module docstring)."""
    return deep_dual_kernels(x1, x2, depth, activation)[depth][0]


def dual_ntk(x1, x2=None, depth: int = 1, activation: DualActivation | str = "relu", *, normalize: bool = False) -> np.ndarray:
    """NTK Θ^{depth+1} of the normalized-activation network (Jacot et al. 2018, Thm 1; Arora et al.
    2019, eq. (10)); module docstring."""
    return deep_dual_kernels(x1, x2, depth, activation, normalize=normalize)[depth][1]
