"""Curvature matrices as linear operators on the flat parameter vector: v ↦ Hv and v ↦ Gv.

Every curvature probe (Lanczos eigenvalues, trace, spectrum, GFS sharpness) only needs products
with the loss Hessian H = ∇²L(θ) or the generalized Gauss-Newton matrix G = Jᵀ ∇²ℓ J
(Schraudolph 2002, "Fast curvature matrix-vector products for second-order gradient descent",
Neural Computation 14(7), eq. 6), never the matrix itself.

- Hessian-vector products by reverse-over-reverse differentiation (Pearlmutter 1994, "Fast exact
  multiplication by the Hessian", Neural Computation 6(1)): Hv = ∇_θ (∇_θ L · v). When ``data``
  is a single ``(inputs, targets)`` pair the graph of ∇L is built once and reused for every
  product; for an iterable of chunks it is rebuilt chunk by chunk, so memory stays bounded by one
  chunk, and the per-chunk products are weighted by chunk size (mean loss over all examples).
- GGN-vector products: Gv = Jᵀ (∇²_f ℓ (J v)), with J v by forward mode (``torch.func.jvp``),
  the output Hessian product by forward-over-reverse, and Jᵀ by reverse mode.

Mode: the module is evaluated in the train/eval mode it is in (in train mode BatchNorm uses the
statistics of each chunk). Buffers are cloned before every evaluation, so running statistics that
the forward pass updates in place never reach the model: its parameters and buffers are unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.func import functional_call, grad, jvp, vjp

from genlab.probes._functional import Batch, Data, FlatModel, LossFn, batches, iter_batches

Curvature = Literal["hessian", "ggn"]


class CurvatureOperator:
    """The symmetric matrix H (or G) of the mean loss over ``data`` at the model's current parameters.

    ``op @ v`` (or ``op.matvec(v)``) multiplies a flat vector of length ``op.size``; ``op.matvecs``
    counts the products made. ``op.loss_and_grad(theta)`` evaluates the mean loss and its gradient
    at other parameters (used by the gradient flow of :mod:`genlab.probes.gfs`).
    """

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, data: Data, curvature: Curvature = "hessian"):
        if curvature not in ("hessian", "ggn"):
            raise ValueError(f"curvature must be 'hessian' or 'ggn', got {curvature!r}")
        self.fm = FlatModel(model)
        self.loss_fn = loss_fn
        self.curvature = curvature
        self.theta = self.fm.flat()
        self.dtype = self.theta.dtype
        self.device = self.theta.device
        self.size = self.fm.size
        self.matvecs = 0
        self._single = isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor)
        # A re-iterable (list, DataLoader) is re-read for every product (memory bounded by one chunk);
        # a one-shot iterator is materialized once so that repeated products see the same data.
        if self._single:
            self._data: Data = [data]
        elif iter(data) is data:  # type: ignore[arg-type]
            self._data = batches(data)
        else:
            self._data = data
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def _forward(self, flat: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        params = {**self.fm.frozen, **self.fm.unflatten(flat)}
        buffers = {n: b.clone() for n, b in self.fm.buffers.items()}
        return functional_call(self.fm.model, (params, buffers), (inputs,))

    def _loss(self, flat: torch.Tensor, batch: Batch) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self._forward(flat, x), y)

    def chunks(self):
        """Yield ``(weight, batch)``: chunk sizes over the total, turning chunk means into the overall mean."""
        sizes = [int(x.shape[0]) for x, _ in iter_batches(self._data)]
        if not sizes:
            raise ValueError("data is empty")
        total = float(sum(sizes))
        for s, batch in zip(sizes, iter_batches(self._data)):
            yield s / total, batch

    # -- products ------------------------------------------------------------------------------
    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """H v (or G v) for a flat vector ``v``."""
        v = v.to(dtype=self.dtype, device=self.device)
        self.matvecs += 1
        if self.curvature == "ggn":
            return self._ggn_vp(v)
        if self._single:
            if self._cached is None:
                theta = self.theta.clone().requires_grad_(True)
                g = torch.autograd.grad(self._loss(theta, self._data[0]), theta, create_graph=True)[0]
                self._cached = (theta, g)
            theta, g = self._cached
            (hv,) = torch.autograd.grad(g, theta, grad_outputs=v, retain_graph=True, allow_unused=True)
            return torch.zeros_like(v) if hv is None else hv.detach()
        out = torch.zeros_like(v)
        for w, batch in self.chunks():
            theta = self.theta.clone().requires_grad_(True)
            g = torch.autograd.grad(self._loss(theta, batch), theta, create_graph=True)[0]
            (hv,) = torch.autograd.grad(g, theta, grad_outputs=v, allow_unused=True)
            if hv is not None:
                out.add_(hv.detach(), alpha=w)
        return out

    def _ggn_vp(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for w, (x, y) in self.chunks():
            f = lambda t: self._forward(t, x)  # noqa: E731
            output, jv = jvp(f, (self.theta,), (v,))
            loss_of_output = lambda o: self.loss_fn(o, y)  # noqa: E731
            _, hjv = jvp(grad(loss_of_output), (output.detach(),), (jv.detach(),))
            _, pullback = vjp(f, self.theta)
            out.add_(pullback(hjv)[0].detach(), alpha=w)
        return out

    __matmul__ = matvec

    def matmat(self, vs: torch.Tensor) -> torch.Tensor:
        """Products with the columns of a (size × m) matrix."""
        return torch.stack([self.matvec(vs[:, j]) for j in range(vs.shape[1])], dim=1)

    def loss_and_grad(self, theta: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
        """Mean loss over the data and its gradient at ``theta`` (default: the model's parameters)."""
        theta = self.theta if theta is None else theta
        total = 0.0
        gsum = torch.zeros_like(theta)
        for w, batch in self.chunks():
            t = theta.detach().clone().requires_grad_(True)
            loss = self._loss(t, batch)
            (g,) = torch.autograd.grad(loss, t, allow_unused=True)
            total += w * float(loss.detach())
            if g is not None:
                gsum.add_(g, alpha=w)
        return total, gsum

    def at(self, theta: torch.Tensor) -> "CurvatureOperator":
        """The same operator at other parameters (same model, loss and data)."""
        new = object.__new__(CurvatureOperator)
        new.__dict__.update(self.__dict__)
        new.theta = theta.detach().clone()
        new.matvecs = 0
        new._cached = None
        return new
