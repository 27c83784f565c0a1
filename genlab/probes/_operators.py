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

- GGN-vector products fall back to reverse-over-reverse (J v = ∂/∂u [(Jᵀu)·v], a double vjp)
  when forward-mode AD is not implemented for an operation (e.g. ``mkldnn_rnn_layer`` of a float32
  LSTM); the result says so in its notes.

Mode: the public probes set the mode (:func:`genlab.probes._setup.probe_call`); the operator
evaluates the module as it is. Buffers are cloned before every evaluation, so running statistics
that train-mode BatchNorm updates in place never reach the model. Every evaluation of batch b runs
under the random draw (seed, b): dropout masks are the same for every product, so the operator is
one fixed symmetric matrix. The data are held in memory for the call (a DataLoader is read once).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Literal

import torch
from torch.func import grad, jvp, vjp

from genlab.errors import InputError
from genlab.probes._functional import Batch, FlatModel, LossFn
from genlab.probes._setup import Data, load_data, probe_call, seeded

Curvature = Literal["hessian", "ggn"]
Symmetry = Literal["raise", "warn", "off"]


class CurvatureOperator:
    """The symmetric matrix H (or G) of the mean loss over ``data`` at the model's current parameters.

    ``op @ v`` (or ``op.matvec(v)``) multiplies a flat vector of length ``op.size``; ``op.matvecs``
    counts the products made. ``op.loss_and_grad(theta)`` evaluates the mean loss and its gradient
    at other parameters (used by the gradient flow of :mod:`genlab.probes.gfs`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        data: Any,
        curvature: Curvature = "hessian",
        *,
        seed: int = 0,
        output_fn: Callable | None = None,
        random: bool = True,
    ):
        if curvature not in ("hessian", "ggn"):
            raise InputError(f"curvature: got {curvature!r}; allowed: 'hessian', 'ggn'")
        self.fm = FlatModel(model, output_fn)
        self.loss_fn = loss_fn
        self.curvature = curvature
        self.seed = int(seed)
        self.random = random  # False: no random operations, no need to fix their draw
        self.theta = self.fm.flat()
        self.dtype = self.theta.dtype
        self.device = self.theta.device
        self.size = self.fm.size
        self.matvecs = 0
        self.data: Data = data if isinstance(data, Data) else load_data(data)
        self.notes: list[str] = []
        self._forward_ad = True
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None
        self._batched = True  # False once a batched backward failed (no batching rule)

    # -- plumbing ------------------------------------------------------------------------------
    def _forward(self, flat: torch.Tensor, inputs: Any, b: int) -> torch.Tensor:
        if not self.random:
            return self.fm.forward(flat, inputs)
        with seeded(self.seed, b):
            return self.fm.forward(flat, inputs)

    def _loss(self, flat: torch.Tensor, batch: Batch, b: int) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self._forward(flat, x, b), y)

    def chunks(self):
        """Yield ``(weight, index, batch)``: chunk sizes over the total turn chunk means into the overall mean."""
        for b, (w, batch) in enumerate(zip(self.data.weights(), self.data.batches)):
            yield w, b, batch

    # -- products ------------------------------------------------------------------------------
    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """H v (or G v) for a flat vector ``v``."""
        v = v.to(dtype=self.dtype, device=self.device)
        self.matvecs += 1
        if self.curvature == "ggn":
            return self._ggn_vp(v)
        return self._hessian_products(v, batched=False)

    def _jv(self, f: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(θ), J v): forward mode, or reverse-over-reverse where forward AD is not implemented."""
        if self._forward_ad:
            try:
                return jvp(f, (self.theta,), (v,))
            except (RuntimeError, NotImplementedError) as err:
                self._forward_ad = False
                self.notes.append(f"GGN: forward-mode AD unsupported ({str(err).splitlines()[0][:80]}); J v by reverse-over-reverse")
        theta = self.theta.clone().requires_grad_(True)
        out = f(theta)
        u = torch.zeros_like(out, requires_grad=True)
        (jtu,) = torch.autograd.grad(out, theta, grad_outputs=u, create_graph=True)
        (jv,) = torch.autograd.grad(jtu, u, grad_outputs=v)
        return out.detach(), jv.detach()

    def _ggn_vp(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for w, b, (x, y) in self.chunks():
            f = lambda t: self._forward(t, x, b)  # noqa: E731
            loss_of_output = lambda o: self.loss_fn(o, y)  # noqa: E731
            if self.random:
                # torch.func transforms draw dropout masks differently from plain autograd: all
                # products by plain autograd, so that H and G see the same masks
                theta = self.theta.clone().requires_grad_(True)
                output = f(theta)
                u = torch.zeros_like(output, requires_grad=True)
                (jtu,) = torch.autograd.grad(output, theta, grad_outputs=u, create_graph=True)
                (jv,) = torch.autograd.grad(jtu, u, grad_outputs=v)
                _, hjv = jvp(grad(loss_of_output), (output.detach(),), (jv.detach(),))
                (gv,) = torch.autograd.grad(output, theta, grad_outputs=hjv)
                out.add_(gv.detach(), alpha=w)
                continue
            output, jv = self._jv(f, v)
            _, hjv = jvp(grad(loss_of_output), (output.detach(),), (jv.detach(),))
            _, pullback = vjp(f, self.theta)
            out.add_(pullback(hjv)[0].detach(), alpha=w)
        return out

    __matmul__ = matvec

    def matmat(self, vs: torch.Tensor, block: int = 1) -> torch.Tensor:
        """Products with the columns of a (size × m) matrix, ``block`` columns per backward pass.

        ``block > 1`` (Hessian): one batched backward through the reused gradient graph per block
        of columns (``torch.autograd.grad(..., is_grads_batched=True)``, i.e. ``vmap`` over the
        backward) instead of one backward per column; memory grows with the block. Where an
        operation has no batching rule, or for the GGN, the columns are multiplied one by one (a
        note says so). The default is column by column: on a CPU thread the batched backward
        was measured 1.1–1.5× *slower* per product (MLPs of 0.08M and 0.5M parameters, a small
        CNN; 1000 MNIST-1D-sized examples, blocks of 10 and 30), since the matrix products that
        dominate are already compute-bound and batching adds copies. Counts ``m`` products."""
        vs = vs.to(dtype=self.dtype, device=self.device)
        if vs.ndim != 2 or vs.shape[0] != self.size:
            raise ValueError(f"vs must be ({self.size} × m), got {tuple(vs.shape)}")
        m = vs.shape[1]
        block = max(1, int(block))
        if self.curvature != "hessian" or not self._batched or m == 1 or block == 1:
            return torch.stack([self.matvec(vs[:, j]) for j in range(m)], dim=1)
        out = torch.empty_like(vs)
        for lo in range(0, m, block):
            part = vs[:, lo:lo + block]
            try:
                out[:, lo:lo + block] = self._hessian_products(part.T.contiguous(), batched=True).T
            except (RuntimeError, NotImplementedError) as err:
                self._batched = False
                self._cached = None  # a failed batched backward may have consumed the graph
                self.notes.append(f"Hessian block products: no batching rule ({str(err).splitlines()[0][:80]}); column by column")
                out[:, lo:] = torch.stack([self.matvec(vs[:, j]) for j in range(lo, m)], dim=1)
                return out
            self.matvecs += part.shape[1]
        return out

    def _hessian_products(self, vs: torch.Tensor, batched: bool) -> torch.Tensor:
        """H v for a vector ``vs``, or (``batched``) H vᵢ for each row vᵢ of ``vs`` (b × size) by one
        batched backward; through the cached gradient graph for one batch, else chunk by chunk."""
        kw = {"allow_unused": True, "is_grads_batched": batched}
        if len(self.data.batches) == 1:
            theta, g = self._graph()
            if not g.requires_grad:  # the loss is linear in θ
                return torch.zeros_like(vs)
            (hv,) = torch.autograd.grad(g, theta, grad_outputs=vs, retain_graph=True, **kw)
            return torch.zeros_like(vs) if hv is None else hv.detach()
        out = torch.zeros_like(vs)
        for w, b, batch in self.chunks():
            theta = self.theta.clone().requires_grad_(True)
            g = torch.autograd.grad(self._loss(theta, batch, b), theta, create_graph=True)[0]
            if not g.requires_grad:
                continue
            (hv,) = torch.autograd.grad(g, theta, grad_outputs=vs, **kw)
            if hv is not None:
                out.add_(hv.detach(), alpha=w)
        return out

    def _graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(θ, ∇L(θ)) with the graph of ∇L kept, built once for single-batch data."""
        if self._cached is None:
            theta = self.theta.clone().requires_grad_(True)
            g = torch.autograd.grad(self._loss(theta, self.data.batches[0], 0), theta, create_graph=True)[0]
            self._cached = (theta, g)
        return self._cached

    def loss_and_grad(self, theta: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
        """Mean loss over the data and its gradient at ``theta`` (default: the model's parameters)."""
        theta = self.theta if theta is None else theta
        total = 0.0
        gsum = torch.zeros_like(theta)
        for w, b, batch in self.chunks():
            t = theta.detach().clone().requires_grad_(True)
            loss = self._loss(t, batch, b)
            (g,) = torch.autograd.grad(loss, t, allow_unused=True) if loss.requires_grad else (None,)
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

    def check_symmetry(self, policy: Symmetry = "raise") -> float:
        """|uᵀHv − vᵀHu| / (‖Hu‖‖v‖ + ‖Hv‖‖u‖) on one random pair (from ``seed``); above
        1e4·eps of the dtype (rounding of two products) the operator is not symmetric: autograd's
        second derivatives are wrong for some operation (a parametrization such as weight_norm,
        a custom autograd.Function). ``policy`` raises, warns, or skips (two products)."""
        if policy == "off":
            return float("nan")
        if policy not in ("raise", "warn"):
            raise InputError(f"symmetry: got {policy!r}; allowed: 'raise', 'warn', 'off'")
        g = torch.Generator().manual_seed(self.seed + 7)
        u = torch.randn(self.size, generator=g, dtype=torch.float64).to(self.dtype)
        v = torch.randn(self.size, generator=g, dtype=torch.float64).to(self.dtype)
        hu, hv = self.matvec(u), self.matvec(v)
        self.matvecs -= 2
        scale = float(hu.norm() * v.norm() + hv.norm() * u.norm())
        asym = abs(float(torch.dot(u, hv) - torch.dot(v, hu))) / scale if scale > 0 else 0.0
        if asym > 1e4 * torch.finfo(self.dtype).eps:
            msg = (
                f"model: the {self.curvature} operator is not symmetric (relative asymmetry {asym:.2g} on a random pair): "
                f"{_asymmetry_cause(self.fm.model)}; its second derivatives are wrong, eigenvalues would be too"
            )
            if policy == "raise":
                raise InputError(msg + " (symmetry='warn' to measure anyway)")
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            self.notes.append(msg)
        return asym


def _asymmetry_cause(model: torch.nn.Module) -> str:
    import torch.nn.utils.parametrize as P

    for name, m in model.named_modules():
        if P.is_parametrized(m):
            kinds = {type(p).__name__ for ps in m.parametrizations.values() for p in ps}
            return f"module '{name}' is parametrized ({', '.join(sorted(kinds))})"
        for hook in m._forward_pre_hooks.values():
            if type(hook).__name__ in ("WeightNorm", "SpectralNorm"):
                return f"module '{name}' uses {type(hook).__name__}"
    return "an operation with a wrong double backward (a custom autograd.Function?)"


@contextlib.contextmanager
def curvature_call(
    model: Any,
    loss_fn: Any,
    data: Any,
    curvature: Curvature = "hessian",
    *,
    mode: str = "eval",
    seed: int = 0,
    output_fn: Callable | None = None,
    batch_size_fn: Callable | None = None,
    symmetry: Symmetry = "raise",
):
    """The frame of a curvature probe: :func:`probe_call`, the operator, its symmetry checked.
    Yields ``(op, info)``; ``info`` (a :class:`ProbeInfo`) collects the operator's notes."""
    if curvature == "ggn" and symmetry not in ("raise", "warn", "off"):
        raise InputError(f"symmetry: got {symmetry!r}; allowed: 'raise', 'warn', 'off'")
    with probe_call(model, loss_fn, data, mode=mode, seed=seed, output_fn=output_fn, batch_size_fn=batch_size_fn) as s:
        op = CurvatureOperator(s.model, loss_fn, s.data, curvature, seed=seed, output_fn=output_fn, random=s.random)
        op.check_symmetry(symmetry)
        info = s.info(op.dtype, op.device)
        info.notes.extend(op.notes)
        op.notes = info.notes  # later notes (GGN fallback) land in the result's info
        yield op, info
