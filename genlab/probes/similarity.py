"""Representation similarity: linear and RBF centered kernel alignment (CKA).

Kornblith, Norouzi, Lee & Hinton 2019, "Similarity of Neural Network Representations Revisited"
(arXiv 1905.00414), Eqs. 1–4: for representations X (n×p₁) and Y (n×p₂) of the same n examples,
with Gram matrices K, L and the centering matrix H = I − 11ᵀ/n,
HSIC(K, L) = tr(KHLH)/(n−1)² and CKA(K, L) = HSIC(K, L)/√(HSIC(K, K)·HSIC(L, L)).
Linear kernel K = XXᵀ: CKA = ‖YᵀX‖²_F/(‖XᵀX‖_F‖YᵀY‖_F) on centered columns (Eq. 5).
RBF kernel k(x, x') = exp(−‖x − x'‖²/(2σ²)) with σ = ``sigma_frac`` × the median distance between
examples (the paper uses 0.2–0.8 of the median; as a training loss the bandwidth is held
fixed, not differentiated through). Invariant to orthogonal transforms and isotropic
scaling; not to arbitrary invertible linear maps. Differentiable torch code (used as a training loss).
"""

from __future__ import annotations

import torch

from genlab.errors import InputError


def _flat(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() < 1 or x.shape[0] < 2:
        raise InputError(f"{name}: needs at least 2 examples (rows), got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1)


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _flat(x, "x"), _flat(y, "y")
    if x.shape[0] != y.shape[0]:
        raise InputError(f"x and y: need the same number of examples, got {x.shape[0]} and {y.shape[0]}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def linear_cka(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Linear CKA of two representations (rows = examples), a scalar in [0, 1]."""
    x, y = _pair(x, y)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    if x.shape[0] < max(x.shape[1], y.shape[1]):  # fewer examples than features: n×n Gram matrices
        k, l = x @ x.T, y @ y.T  # ‖YᵀX‖²_F = ⟨XXᵀ, YYᵀ⟩_F, ‖XᵀX‖_F = ‖XXᵀ‖_F
        return (k * l).sum() / (k.norm() * l.norm() + eps)
    cross = (y.T @ x).pow(2).sum()
    return cross / ((x.T @ x).norm() * (y.T @ y).norm() + eps)


def _centered_rbf_gram(x: torch.Tensor, sigma_frac: float) -> torch.Tensor:
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)
    n = x.shape[0]
    off = d2[~torch.eye(n, dtype=torch.bool, device=x.device)]
    sigma2 = (sigma_frac**2) * off.detach().sqrt().median().pow(2)
    k = torch.exp(-d2 / (2 * sigma2.clamp_min(1e-30)))
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def rbf_cka(x: torch.Tensor, y: torch.Tensor, sigma_frac: float = 0.8, eps: float = 1e-12) -> torch.Tensor:
    """RBF-kernel CKA, bandwidth σ = ``sigma_frac`` × median pairwise distance of each representation."""
    if not sigma_frac > 0:
        raise InputError(f"sigma_frac: must be > 0, got {sigma_frac}")
    x, y = _pair(x, y)
    kc, lc = _centered_rbf_gram(x, sigma_frac), _centered_rbf_gram(y, sigma_frac)
    return (kc * lc).sum() / ((kc * kc).sum().sqrt() * (lc * lc).sum().sqrt() + eps)


def cka(x: torch.Tensor, y: torch.Tensor, kernel: str = "linear", sigma_frac: float = 0.8) -> torch.Tensor:
    """CKA with ``kernel`` "linear" or "rbf"."""
    if kernel == "linear":
        return linear_cka(x, y)
    if kernel == "rbf":
        return rbf_cka(x, y, sigma_frac)
    raise InputError(f"kernel: allowed 'linear' or 'rbf', got {kernel!r}")


__all__ = ["cka", "linear_cka", "rbf_cka"]
