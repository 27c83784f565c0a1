"""Exact dense Hessians for small models — the reference every curvature probe is tested against,
and the sharpness measurement of the small experiments (a 301-parameter network: a few ms).

Mode: the module is evaluated in whatever train/eval mode it is in (train-mode BatchNorm uses the
batch statistics of each chunk); buffers are read, never updated.
"""

from __future__ import annotations

import torch
from torch.func import hessian

from genlab.probes._functional import Data, FlatModel, LossFn, batches, chunk_weights


def dense_hessian(model: torch.nn.Module, loss_fn: LossFn, data: Data) -> torch.Tensor:
    """The full Hessian ∇²L(θ) (P × P, in the model's dtype) of the mean loss over ``data``,
    by forward-over-reverse automatic differentiation (``torch.func.hessian``)."""
    fm = FlatModel(model)
    theta = fm.flat()
    chunks = batches(data)
    total = torch.zeros(fm.size, fm.size, dtype=theta.dtype)
    for weight, batch in zip(chunk_weights(chunks), chunks):
        total += weight * hessian(lambda t: fm.loss(t, loss_fn, batch))(theta)
    return total


def dense_eigenvalues(model: torch.nn.Module, loss_fn: LossFn, data: Data) -> torch.Tensor:
    """All Hessian eigenvalues, descending."""
    return torch.linalg.eigvalsh(dense_hessian(model, loss_fn, data)).flip(0)


def dense_top_eigenvalue(model: torch.nn.Module, loss_fn: LossFn, data: Data) -> float:
    """λ_max(∇²L(θ)): the sharpness (Cohen et al. 2021; Mulayoff et al. 2021)."""
    return float(dense_eigenvalues(model, loss_fn, data)[0])
