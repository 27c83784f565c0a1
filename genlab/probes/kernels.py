"""Kernel-regime probes: the empirical neural tangent kernel and how far training moves it.

- :func:`empirical_ntk` — Θ(x, x') = J(x) J(x')ᵀ with J = ∂f/∂θ (Jacot, Gabriel & Hongler 2018,
  "Neural tangent kernel: convergence and generalization in neural networks", arXiv 1806.07572,
  Def. of Θ in §4), computed by Jacobian contractions over chunks of inputs so memory stays bounded.
- :func:`kernel_distance` — 1 − ⟨K0, K1⟩_F / (‖K0‖_F ‖K1‖_F) (Fort, Dziugaite, Paul, Kharaghani,
  Roy & Ganguli 2020, "Deep learning versus kernel learning", arXiv 2010.15110, §3 "kernel distance").
- :func:`kernel_alignment` — centered kernel–target alignment (Cortes, Mohri & Rostamizadeh 2012,
  "Algorithms for learning kernels based on centered alignment", JMLR 13, Def. 1–2).
- :func:`relative_weight_change` — ‖θ − θ0‖ / ‖θ0‖, the laziness measure of Chizat, Oyallon & Bach
  2019 ("On lazy training in differentiable programming", arXiv 1812.07956, §1–2).

The model is seen as a pure function of its trainable parameters (:class:`FlatModel`); it is
evaluated in its current train/eval mode and never modified.
"""

from __future__ import annotations

from typing import Literal, Mapping

import numpy as np
import torch
from torch.func import jacrev

from genlab.probes._functional import FlatModel

ArrayLike = torch.Tensor | np.ndarray

__all__ = ["empirical_ntk", "kernel_distance", "kernel_alignment", "relative_weight_change"]


def _jacobian(fm: FlatModel, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """J of shape (m, c, P): derivative of each of the c outputs at each of the m inputs."""

    def f(t: torch.Tensor) -> torch.Tensor:
        out = fm.forward(t, x)
        return out.reshape(x.shape[0], -1)

    return jacrev(f)(theta)


def empirical_ntk(
    model: torch.nn.Module,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    outputs: Literal["trace", "full"] = "trace",
    max_elements: int = 2**24,
) -> torch.Tensor:
    """The empirical NTK Θ(x1_a, x2_b) = Σ_p ∂f(x1_a)/∂θ_p · ∂f(x2_b)/∂θ_p at the current θ.

    Jacot et al. 2018 (arXiv 1806.07572), §4: Θ = Σ_p ∂_θp F ⊗ ∂_θp F.

    Args:
        x1, x2: inputs (first axis indexes examples); ``x2=None`` means ``x2 = x1``.
        outputs: for a model with c > 1 outputs, ``"full"`` returns the (n1, n2, c, c) kernel
            Θ_{ab,kl} = ⟨∂f_k(x1_a)/∂θ, ∂f_l(x2_b)/∂θ⟩, ``"trace"`` its trace Σ_k Θ_{ab,kk}
            (shape (n1, n2)). A scalar-output model (outputs (n,) or (n, 1)) gives (n1, n2) either way.
        max_elements: bound on the number of Jacobian entries held at once (chunk size m is
            chosen so that m·c·P ≤ max_elements, at least one example per chunk).

    Returns a tensor in the model's dtype.
    """
    if outputs not in ("trace", "full"):
        raise ValueError(f"outputs must be 'trace' or 'full', got {outputs!r}")
    if max_elements < 1:
        raise ValueError(f"max_elements must be >= 1, got {max_elements}")
    fm = FlatModel(model)
    theta = fm.flat()
    symmetric = x2 is None
    x2 = x1 if x2 is None else x2
    with torch.no_grad():
        c = int(fm.forward(theta, x1[:1]).reshape(1, -1).shape[1])
    scalar = c == 1
    per_example = c * fm.size
    n1, n2 = int(x1.shape[0]), int(x2.shape[0])
    # All Jacobian blocks are kept when they fit in the budget; otherwise two blocks of `chunk`
    # examples live at once and the column blocks are recomputed for every row block.
    cache_all = (n1 + (0 if symmetric else n2)) * per_example <= max_elements
    chunk = max(n1, n2) if cache_all else max(1, max_elements // (2 * per_example))
    full = torch.empty(n1, n2, c, c, dtype=theta.dtype) if (outputs == "full" and not scalar) else None
    red = torch.empty(n1, n2, dtype=theta.dtype) if full is None else None
    blocks2: dict[int, torch.Tensor] = {}

    def block2(j: int) -> torch.Tensor:
        if j in blocks2:
            return blocks2[j]
        jac = _jacobian(fm, theta, x2[j : j + chunk])
        if cache_all:
            blocks2[j] = jac
        return jac

    for i in range(0, n1, chunk):
        ja = blocks2[i] if (symmetric and i in blocks2) else _jacobian(fm, theta, x1[i : i + chunk])
        if symmetric and cache_all:
            blocks2[i] = ja
        for j in range(0, n2, chunk):
            if symmetric and j < i:  # Θ(x_a, x_b) = Θ(x_b, x_a)ᵀ over the output indices
                if full is not None:
                    full[i : i + chunk, j : j + chunk] = full[j : j + chunk, i : i + chunk].permute(1, 0, 3, 2)
                else:
                    red[i : i + chunk, j : j + chunk] = red[j : j + chunk, i : i + chunk].T
                continue
            jb = ja if (symmetric and i == j) else block2(j)
            if full is not None:
                full[i : i + chunk, j : j + chunk] = torch.einsum("akp,blp->abkl", ja, jb)
            else:
                red[i : i + chunk, j : j + chunk] = torch.einsum("akp,bkp->ab", ja, jb)
    return full if full is not None else red


def _as_numpy(k: ArrayLike) -> np.ndarray:
    if isinstance(k, torch.Tensor):
        return k.detach().cpu().numpy()
    return np.asarray(k)


def kernel_distance(k0: ArrayLike, k1: ArrayLike) -> float:
    """1 − ⟨K0, K1⟩_F / (‖K0‖_F ‖K1‖_F): 0 for kernels equal up to scale, up to 2.

    Fort et al. 2020 (arXiv 2010.15110, §3, "kernel distance"). Any shapes, equal."""
    a, b = _as_numpy(k0).astype(np.float64), _as_numpy(k1).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"kernels must have the same shape, got {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("kernel_distance is undefined for a zero kernel")
    return float(1.0 - np.sum(a * b) / (na * nb))


def kernel_alignment(k: ArrayLike, y: ArrayLike) -> float:
    """Centered kernel–target alignment ⟨K_c, (yyᵀ)_c⟩_F / (‖K_c‖_F ‖(yyᵀ)_c‖_F), K_c = HKH,
    H = I − 11ᵀ/n (Cortes, Mohri & Rostamizadeh 2012, JMLR 13, Def. 1 and 2).

    ``y`` is (n,) or (n, c) (e.g. one-hot labels: the target kernel is YYᵀ). In [−1, 1]."""
    kk = _as_numpy(k).astype(np.float64)
    yy = _as_numpy(y).astype(np.float64)
    if yy.ndim == 1:
        yy = yy[:, None]
    n = kk.shape[0]
    if kk.shape != (n, n) or yy.shape[0] != n:
        raise ValueError(f"need K of shape (n, n) and y with n rows, got {kk.shape} and {yy.shape}")
    kc = kk - kk.mean(0, keepdims=True) - kk.mean(1, keepdims=True) + kk.mean()
    yc = yy - yy.mean(0, keepdims=True)
    t = yc @ yc.T
    nk, nt = np.linalg.norm(kc), np.linalg.norm(t)
    if nk == 0 or nt == 0:
        raise ValueError("kernel_alignment is undefined when the centered kernel or target is zero")
    return float(np.sum(kc * t) / (nk * nt))


def relative_weight_change(
    model: torch.nn.Module, init_state: Mapping[str, torch.Tensor] | torch.Tensor
) -> float:
    """‖θ − θ0‖₂ / ‖θ0‖₂ over the trainable parameters (Chizat, Oyallon & Bach 2019, arXiv 1812.07956:
    lazy training is when this stays small while the loss falls).

    ``init_state`` is a ``state_dict``-like mapping (parameters missing from it are an error)
    or the flat vector of :meth:`FlatModel.flat` taken at initialization."""
    fm = FlatModel(model)
    now = fm.flat()
    if isinstance(init_state, torch.Tensor):
        start = init_state.detach().reshape(-1).to(now.dtype)
        if start.numel() != now.numel():
            raise ValueError(f"init_state has {start.numel()} entries, the model {now.numel()} trainable ones")
    else:
        missing = [n for n in fm.names if n not in init_state]
        if missing:
            raise ValueError(f"init_state lacks parameters {missing}")
        start = torch.cat([init_state[n].detach().reshape(-1).to(now.dtype) for n in fm.names])
    denom = float(torch.linalg.vector_norm(start))
    if denom == 0:
        raise ValueError("relative_weight_change is undefined when θ0 = 0")
    return float(torch.linalg.vector_norm(now - start)) / denom
