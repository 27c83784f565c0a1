"""Exact dense Hessians for small models — the reference every curvature probe is tested against,
and the sharpness measurement of the small experiments (a 301-parameter network: a few ms).

Mode: ``mode="eval"`` (default), ``"train"`` (train-mode BatchNorm uses the batch statistics of
each chunk; dropout masks drawn from ``seed``, the same for every evaluation) or ``"as-is"``;
buffers are read, never updated. Same data layouts as every probe (:mod:`genlab.probes._setup`).
"""

from __future__ import annotations

import torch
from torch.func import hessian

from genlab.probes._functional import Data, FlatModel, LossFn
from genlab.errors import InputError
from genlab.probes._operators import _asymmetry_cause
from genlab.probes._setup import probe_call, seeded


def dense_hessian(
    model: torch.nn.Module, loss_fn: LossFn, data: Data, *, mode: str = "eval", seed: int = 0, output_fn=None,
    batch_size_fn=None,
) -> torch.Tensor:
    """The full Hessian ∇²L(θ) (P × P, in the model's dtype) of the mean loss over ``data``,
    by forward-over-reverse automatic differentiation (``torch.func.hessian``), or row by row by
    plain double backward where torch.func cannot go (train-mode BatchNorm, random operations,
    modules without batching rules such as RNNs, ``nn.MultiheadAttention`` — where torch 2.13's
    ``torch.func.hessian`` is off by ~2% and not symmetric while double backward agrees with finite
    differences —, operations without forward-mode AD). A Hessian that is not symmetric (a
    parametrization such as weight_norm, whose double backward is wrong) is refused in one line."""
    with probe_call(model, loss_fn, data, mode=mode, seed=seed, output_fn=output_fn, batch_size_fn=batch_size_fn) as s:
        fm = FlatModel(s.model, output_fn)
        theta = fm.flat()
        total = torch.zeros(fm.size, fm.size, dtype=theta.dtype)
        rowwise = s.random or _has_train_mode_batchnorm(s.model) or _has_rnn(s.model)
        for b, (weight, batch) in enumerate(zip(s.data.weights(), s.data.batches)):

            def f(t: torch.Tensor, batch=batch, b=b) -> torch.Tensor:
                with seeded(seed, b):
                    return fm.loss(t, loss_fn, batch)

            try:
                total += weight * (_rowwise_hessian if rowwise else hessian)(f)(theta)
            except NotImplementedError:  # no forward-mode AD for an operation
                rowwise = True
                total += weight * _rowwise_hessian(f)(theta)
        asym = float((total - total.T).abs().max())
        if asym > 1e4 * torch.finfo(total.dtype).eps * max(float(total.abs().max()), 1e-300):
            raise InputError(
                f"model: the Hessian is not symmetric (relative asymmetry {asym / float(total.abs().max()):.2g}): "
                f"{_asymmetry_cause(s.model)}; its second derivatives are wrong"
            )
    return total


def _has_rnn(model: torch.nn.Module) -> bool:
    return any(isinstance(m, (torch.nn.RNNBase, torch.nn.MultiheadAttention)) for m in model.modules())


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


def dense_eigenvalues(model: torch.nn.Module, loss_fn: LossFn, data: Data, **kwargs) -> torch.Tensor:
    """All Hessian eigenvalues, descending (keywords as :func:`dense_hessian`)."""
    return torch.linalg.eigvalsh(dense_hessian(model, loss_fn, data, **kwargs)).flip(0)


def dense_top_eigenvalue(model: torch.nn.Module, loss_fn: LossFn, data: Data, **kwargs) -> float:
    """λ_max(∇²L(θ)): the sharpness (Cohen et al. 2021; Mulayoff et al. 2021)."""
    return float(dense_eigenvalues(model, loss_fn, data, **kwargs)[0])
