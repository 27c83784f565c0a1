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
    exact = _rowwise_hessian if _has_train_mode_batchnorm(model) else hessian
    for weight, batch in zip(chunk_weights(chunks), chunks):
        total += weight * exact(lambda t: fm.loss(t, loss_fn, batch))(theta)
    return total


def _has_train_mode_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())


def _rowwise_hessian(f):
    """The Hessian one row at a time by plain double backward (no vmap).

    Used for train-mode BatchNorm: with torch 2.13, ``torch.func.hessian`` and
    ``jacrev(jacrev(f))`` return a non-symmetric, wrong Hessian there (entries coupling the
    BatchNorm scale with the bias of the layer before it, whose true value is 0), while plain
    autograd agrees with finite differences (tests/test_dense_hessian.py)."""

    def h(theta: torch.Tensor) -> torch.Tensor:
        t = theta.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(t), t, create_graph=True)
        rows = []
        for i in range(t.numel()):
            (row,) = torch.autograd.grad(g[i], t, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(t) if row is None else row)
        return torch.stack(rows)

    return h


def dense_eigenvalues(model: torch.nn.Module, loss_fn: LossFn, data: Data) -> torch.Tensor:
    """All Hessian eigenvalues, descending."""
    return torch.linalg.eigvalsh(dense_hessian(model, loss_fn, data)).flip(0)


def dense_top_eigenvalue(model: torch.nn.Module, loss_fn: LossFn, data: Data) -> float:
    """λ_max(∇²L(θ)): the sharpness (Cohen et al. 2021; Mulayoff et al. 2021)."""
    return float(dense_eigenvalues(model, loss_fn, data)[0])
