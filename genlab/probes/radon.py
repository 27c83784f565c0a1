"""Function-space norms of a trained two-layer ReLU network on ℝ^d (exact for that model).

For f(x) = Σ_k a_k[w_kᵀx + b_k]_+ (+ vᵀx) + c, the gradient jumps by a_k‖w_k‖ across each unit's
hyperplane, so the R-norm (Ongie, Willett, Soudry & Srebro 2020, arXiv 1910.01635) and the
g-weighted Radon norm of Δf bounded by minima stability (Nacson, Mulayoff, Ongie, Michaeli &
Soudry 2023, arXiv 2306.17499) are finite sums over the merged hyperplanes
(:mod:`genlab.theory.r_norm`, :mod:`genlab.theory.multivariate_stability`).

Accepted models: :class:`genlab.models.ShallowReLU` (parameters ``w``, ``b``, ``a``) or an
``nn.Sequential(Linear(d, k), ReLU(), Linear(k, 1))``. The model is read, never modified.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genlab.theory.multivariate_stability import weighted_laplacian_norm
from genlab.theory.r_norm import r_norm


def relu_units(model: nn.Module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w (k, d), b (k,), a (k,)) of a two-layer ReLU network with a scalar output, as float64."""
    if all(hasattr(model, n) for n in ("w", "b", "a")):
        ps = (model.w, model.b, model.a)
    elif (isinstance(model, nn.Sequential) and len(model) == 3 and isinstance(model[0], nn.Linear)
          and isinstance(model[1], nn.ReLU) and isinstance(model[2], nn.Linear) and model[2].out_features == 1):
        b = model[0].bias if model[0].bias is not None else torch.zeros(model[0].out_features)
        ps = (model[0].weight, b, model[2].weight[0])
    else:
        raise ValueError("model must be a ShallowReLU or nn.Sequential(Linear(d, k), ReLU(), Linear(k, 1))")
    return tuple(p.detach().double().cpu().numpy().copy() for p in ps)  # type: ignore[return-value]


def network_r_norm(model: nn.Module, merge_tol: float = 1e-9) -> float:
    """R(f_θ) = Σ over merged hyperplanes of |Σ a_k‖w_k‖| (the linear part is free)."""
    return r_norm(*relu_units(model), tol=merge_tol)


def stability_norm(model: nn.Module, x_train: torch.Tensor | np.ndarray, merge_tol: float = 1e-9) -> float:
    """Σ_hyperplanes |jump|·g(u, t) with g from the training inputs ``x_train`` (n, d): the
    quantity linear stability bounds by 1/η − 1/2 at an interpolating minimum."""
    x = x_train.detach().double().cpu().numpy() if isinstance(x_train, torch.Tensor) else np.asarray(x_train, float)
    return weighted_laplacian_norm(*relu_units(model), x, tol=merge_tol)
