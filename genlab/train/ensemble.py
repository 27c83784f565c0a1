"""Vectorized ensembles of two-layer univariate ReLU networks trained by full-batch GD.

E independent networks f_e(x) = Σ_k v_ek·relu(w_ek·x + b_ek) + c_e (the model of
:class:`genlab.models.TwoLayerReLU1D`; Mulayoff, Michaeli & Soudry 2021, eq. 20), each with its own
data, initialization and step size, are trained as one batched computation on the loss
L_e = (1/2n) Σ_j (f_e(x_ej) − y_ej)², with the same stopping rules as :class:`genlab.train.Trainer`
(gradient-norm tolerance, step budget, non-finite loss = diverged) applied per member: a member
that stops is frozen and removed from the batch, the others go on.

Gradients are closed forms (no autograd). With a_ejk = [w_ek x_ej + b_ek > 0] and r_ej = f_e(x_ej) − y_ej:
    ∂L/∂v_k = (1/n) Σ_j a_jk (w_k x_j + b_k) r_j,   ∂L/∂w_k = v_k (1/n) Σ_j a_jk x_j r_j,
    ∂L/∂b_k = v_k (1/n) Σ_j a_jk r_j,               ∂L/∂c = (1/n) Σ_j r_j.
Two kernels compute them:

* ``dense``: the (E, n, k) pre-activations and batched matrix products (``torch.bmm``), about
  8·n·k floating-point operations per member and step — memory-bound at large E.
* ``sorted``: exact for this model and O((n + k)·log) per member. Neuron k is active on one side of
  its knot t_k = −b_k/w_k; with the inputs sorted, a neuron with w_k > 0 is active on the suffix
  j ≥ #{x_j ≤ t_k} and one with w_k < 0 on the prefix j < #{x_j < t_k} (``searchsorted``). So
  f(x_j) = x_j·A_j + B_j + c with A_j, B_j prefix/suffix sums of v_k w_k, v_k b_k over the neurons
  active at j (``scatter_add`` + ``cumsum``), and the sums over j in the gradients are prefix
  sums of r_j x_j and r_j read at each neuron's boundary (``gather``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from genlab.models.relu1d import TwoLayerReLU1D

Params = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # w, b, v (E, k); c (E,)


def stack_models(models: Sequence[TwoLayerReLU1D]) -> Params:
    """The parameters of ``models`` (same width) stacked along a leading member axis (copies)."""
    w = torch.stack([m.w.detach() for m in models]).clone()
    b = torch.stack([m.b.detach() for m in models]).clone()
    v = torch.stack([m.v.detach() for m in models]).clone()
    c = torch.stack([m.c.detach() for m in models]).clone()
    return w, b, v, c


def init_params(
    width: int,
    seeds: Sequence[int],
    in_scale: float = 1.0,
    out_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> Params:
    """Stacked initial parameters, member e exactly as ``TwoLayerReLU1D(width, Generator().manual_seed(seeds[e]), …)``."""
    return stack_models(
        [TwoLayerReLU1D(width, torch.Generator().manual_seed(int(s)), in_scale, out_scale, dtype) for s in seeds]
    )


def to_model(params: Params, e: int) -> TwoLayerReLU1D:
    """Member ``e`` as a :class:`TwoLayerReLU1D` (a copy of its parameters)."""
    w, b, v, c = params
    model = TwoLayerReLU1D(w.shape[1], dtype=w.dtype)
    with torch.no_grad():
        model.w.copy_(w[e])
        model.b.copy_(b[e])
        model.v.copy_(v[e])
        model.c.copy_(c[e])
    return model


def forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Outputs (E, m) of every member at inputs ``x`` of shape (m,) (shared) or (E, m)."""
    w, b, v, c = params
    xe = x.expand(w.shape[0], -1) if x.dim() == 1 else x
    return torch.bmm(torch.relu(xe[:, :, None] * w[:, None, :] + b[:, None, :]), v[:, :, None])[:, :, 0] + c[:, None]


def dense_loss_grad(
    params: Params, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, Params]:
    """Loss (E,) and gradients of every member by dense batched products; ``x``, ``y`` (E, n).

    ``weights`` (E, n): the loss is (1/2)Σ_j ω_j r_j² (default ω_j = 1/n); zero weights pad
    members with fewer data points to a common n."""
    w, b, v, c = params
    n = x.shape[1]
    pre = x[:, :, None] * w[:, None, :] + b[:, None, :]  # (E, n, k), as TwoLayerReLU1D.forward
    h = torch.relu(pre)
    r = torch.bmm(h, v[:, :, None])[:, :, 0] + c[:, None] - y  # (E, n)
    rn = r / n if weights is None else r * weights
    loss = 0.5 * (r * rn).sum(dim=1)
    gv = torch.bmm(rn[:, None, :], h)[:, 0, :]  # Σ_j h_jk r_j / n
    act = (pre > 0).to(x.dtype)
    s = torch.bmm(torch.stack((rn * x, rn), dim=1), act)  # (E, 2, k): Σ_j a_jk x_j r_j / n, Σ_j a_jk r_j / n
    return loss, (v * s[:, 0], v * s[:, 1], gv, rn.sum(dim=1))


def sorted_loss_grad(
    params: Params, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, Params]:
    """Same as :func:`dense_loss_grad` in O((n + k)·log) per member; ``x`` (E, n) sorted ascending per row.

    Neuron k with w_k ≥ 0 is a "suffix" neuron (active on j ≥ m_k), with w_k < 0 a "prefix" neuron
    (active on j < m_k), where m_k = #{j: x_j ≤ t_k}; a neuron with w_k = 0 gets t_k = −∞ (always
    active) when b_k > 0, else +∞ (never). A data point exactly on a knot (a null event) may be
    counted on the other side than the dense kernel counts it."""
    w, b, v, c = params
    E, n = x.shape
    w = w + 0.0  # −0.0 → +0.0, so that w = 0 gives t = −∞ (b > 0: always active) or +∞ / NaN (never)
    t = -b / w
    m = torch.searchsorted(x, t, right=True, out_int32=True)  # (E, k) in [0, n]
    # one index into a buffer of 2(n+1) slots: [suffix boundaries | prefix boundaries]
    slot = m.add_((w < 0).to(torch.int32), alpha=n + 1).unsqueeze(1).expand(-1, 2, -1)
    vals = torch.stack((v * w, v * b), dim=1)  # (E, 2, k)
    buf = torch.zeros(E, 2, 2 * (n + 1), dtype=x.dtype).scatter_add_(2, slot, vals)
    # suffix neurons with boundary m count at j >= m (cumsum from the left); prefix neurons at
    # j < m (cumsum from the right, read one further)
    ab = buf[:, :, : n].cumsum(dim=2) + buf[:, :, n + 2 :].flip(2).cumsum(dim=2).flip(2)
    r = x * ab[:, 0] + ab[:, 1] + c[:, None] - y
    rn = r / n if weights is None else r * weights
    loss = 0.5 * (r * rn).sum(dim=1)
    q = torch.stack((rn * x, rn), dim=1)  # (E, 2, n)
    P = torch.zeros(E, 2, 2 * (n + 1), dtype=x.dtype)
    torch.cumsum(q, dim=2, out=P[:, :, n + 2 :])  # prefix sums Σ_{j<m}, m = 1..n (slot n+1 holds m = 0)
    P[:, :, : n + 1] = P[:, :, 2 * n + 1 :] - P[:, :, n + 1 :]  # suffix sums Σ_{j≥m} = total − prefix
    s = P.gather(2, slot)
    s1, s0 = s[:, 0], s[:, 1]
    return loss, (v * s1, v * s0, torch.addcmul(w * s1, b, s0), rn.sum(dim=1))


KERNELS: dict[str, Callable[..., tuple[torch.Tensor, Params]]] = {
    "dense": dense_loss_grad,
    "sorted": sorted_loss_grad,
}


@dataclass
class EnsembleResult:
    """How each member ended (as :class:`genlab.train.TrainResult`, per member) and the final parameters."""

    status: list[str]
    steps: list[int]
    loss: list[float]
    grad_norm: list[float]
    reason: list[str]
    params: Params

    def model(self, e: int) -> TwoLayerReLU1D:
        return to_model(self.params, e)


def _per_member(value: float | Sequence[float] | torch.Tensor, E: int, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype).reshape(-1)
    if t.numel() == 1:
        t = t.expand(E)
    if t.numel() != E:
        raise ValueError(f"expected one value or {E} values, got {t.numel()}")
    return t.clone()


def train_ensemble(
    params: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    lr: float | Sequence[float] | torch.Tensor,
    max_steps: int | Sequence[int],
    grad_tol: float | None = None,
    loss_tol: float | None = None,
    kernel: str = "sorted",
    log_every: int = 0,
    on_log: Callable[[int, list[int], list[float], list[float]], Any] | None = None,
    progress: Any = None,
) -> EnsembleResult:
    """Full-batch GD on every member until its own stopping rule fires (as :meth:`Trainer.fit`).

    ``params`` (w, b, v, c) stacked over E members (not modified); ``x``, ``y`` of shape (n,)
    (shared data) or (E, n) (data per member); ``weights`` (E, n) optional sample weights (see
    :func:`dense_loss_grad`; default 1/n); ``lr`` and ``max_steps`` one value or one per member.
    At step s every active member evaluates loss and ‖∇L‖: non-finite → ``diverged``; a tolerance
    met → ``converged``; s = its budget → ``budget``; else θ ← θ − η∇L. ``on_log(step, members,
    losses, grad_norms)`` is called every ``log_every`` steps with the active members;
    ``progress.advance(k)`` counts member-steps.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
    loss_grad = KERNELS[kernel]
    w0 = params[0]
    E, dtype = w0.shape[0], w0.dtype
    x = (x.expand(E, -1) if x.dim() == 1 else x).to(dtype)
    y = (y.expand(E, -1) if y.dim() == 1 else y).to(dtype)
    wts = None if weights is None else (weights.expand(E, -1) if weights.dim() == 1 else weights).to(dtype)
    if kernel == "sorted":  # the loss is a sum over samples: sort each member's data once
        x, order = torch.sort(x, dim=1)
        y = y.gather(1, order)
        wts = None if wts is None else wts.gather(1, order)
    x, y = x.contiguous(), y.contiguous()
    lrs = _per_member(lr, E, dtype)
    budgets = _per_member(max_steps, E, torch.int64)
    final = [p.detach().clone() for p in params]
    status, steps = [""] * E, [0] * E
    losses, gnorms, reasons = [float("nan")] * E, [float("nan")] * E, [""] * E

    active = torch.arange(E)
    cur = [p.detach().clone() for p in params]
    xa, ya, wa, lra, ba = x, y, wts, lrs, budgets
    step = 0
    while active.numel():
        loss, grads = loss_grad(tuple(cur), xa, ya, wa)
        gn = torch.sqrt(sum((g * g).sum(dim=1) for g in grads[:3]) + grads[3] * grads[3])
        bad = ~(torch.isfinite(loss) & torch.isfinite(gn))
        conv = torch.zeros_like(bad)
        if loss_tol is not None:
            conv |= loss <= loss_tol
        if grad_tol is not None:
            conv |= gn <= grad_tol
        stop = bad | conv | (ba <= step)
        if log_every and on_log is not None and step % log_every == 0:
            on_log(step, active.tolist(), loss.tolist(), gn.tolist())
        if bool(stop.any()):
            lv, gv = loss.tolist(), gn.tolist()
            for i in torch.nonzero(stop).flatten().tolist():
                e = int(active[i])
                if bad[i]:
                    status[e], reasons[e] = "diverged", f"non-finite loss at step {step}"
                elif loss_tol is not None and lv[i] <= loss_tol:
                    status[e], reasons[e] = "converged", f"loss {lv[i]:.3g} <= {loss_tol:g}"
                elif conv[i]:
                    status[e], reasons[e] = "converged", f"gradient norm {gv[i]:.3g} <= {grad_tol:g}"
                else:
                    status[e], reasons[e] = "budget", f"step budget {int(ba[i])} reached"
                steps[e], losses[e], gnorms[e] = step, lv[i], gv[i]
                for f, p in zip(final, cur):
                    f[e] = p[i]
                if progress is not None:
                    progress.advance(max(int(ba[i]) - step, 0))
            keep = ~stop
            active, xa, ya, lra, ba = active[keep], xa[keep], ya[keep], lra[keep], ba[keep]
            wa = None if wa is None else wa[keep]
            cur = [p[keep] for p in cur]
            grads = tuple(g[keep] for g in grads)
            if not active.numel():
                break
        neg_lr = -lra
        for p, g in zip(cur[:3], grads[:3]):
            p.addcmul_(neg_lr[:, None], g)
        cur[3].addcmul_(neg_lr, grads[3])
        if progress is not None:
            progress.advance(int(active.numel()))
        step += 1
    return EnsembleResult(status, steps, losses, gnorms, reasons, tuple(final))  # type: ignore[arg-type]
