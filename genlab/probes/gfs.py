"""GFS sharpness: the sharpness of the minimum that gradient flow reaches from the current parameters.

Kreisler, Nacson, Soudry & Carmon 2023 ("Gradient descent monotonically decreases the sharpness of
gradient flow solutions in scalar networks and beyond", ICML, arXiv 2305.13064) define
φ(θ) = λ_max(∇²L(S_GF(θ))), with S_GF(θ) the limit of the gradient flow dθ/dt = −∇L(θ) started at
θ, and prove that GD at the edge of stability decreases φ monotonically for scalar networks.

The flow is integrated by an explicit Runge-Kutta scheme whose step is tied to the current
sharpness λ (re-estimated by Lanczos every ``reestimate_every`` steps), as in Cohen et al. 2021
(arXiv 2103.00065, Appendix: "gradient flow" runs with RK4 and step min(1/λ, max_step)):
- ``method="rk4"``: classical RK4, h = min(step_factor/λ, max_step), default factor 0.2 — RK4's
  global error is O(h⁴); with h = 1/λ the drift of the flow's invariants changes φ by up to ~1% on
  scalar networks, with 0.2/λ by ~1e-5 (0.05/λ: ~1e-8);
- ``method="dopri5"`` (default): the Dormand-Prince 5(4) embedded pair with local error control,
  h ≤ 2.5/λ: as accurate with ~10× fewer gradients, because the final, linear phase of the flow
  runs at the stability limit instead of a fixed small fraction of 1/λ.
A step that raises the loss (impossible along the exact flow) is rejected and retried shorter
with a fresh λ. The flow stops when ‖∇L‖ ≤ ``grad_tol``.
Same data conventions, dtype and mode as :mod:`genlab.probes.curvature`; the model is untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import time
import warnings

from genlab.errors import InputError
from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import Symmetry, curvature_call
from genlab.probes._setup import ProbeInfo
from genlab.probes.curvature import operator_eigenvalues


@dataclass
class GFSResult:
    """Sharpness at the end of the flow, the loss and gradient norm there, the number of RK4 steps,
    the flow time, whether the stopping tolerance was met, the products used, and the end point (flat)."""

    sharpness: float
    loss: float
    grad_norm: float
    steps: int
    flow_time: float
    converged: bool
    hvps: int
    gradients: int
    theta: torch.Tensor
    budget_hit: str | None = None  # "steps" or "seconds" when a budget stopped the flow
    info: ProbeInfo | None = None

    def scalars(self) -> dict[str, float]:
        return {
            "gfs_sharpness": self.sharpness,
            "gfs_loss": self.loss,
            "gfs_grad_norm": self.grad_norm,
            "gfs_steps": float(self.steps),
            "gfs_converged": float(self.converged),
            "gfs_budget_hit": float(self.budget_hit is not None),
        }


# Dormand & Prince 1980 ("A family of embedded Runge-Kutta formulae", J. Comput. Appl. Math. 6(1),
# Table 2): the 5(4) pair with the first-same-as-last property.
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)  # b5 − b4


def gfs_sharpness(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Data,
    grad_tol: float = 1e-6,
    max_steps: int = 10_000,
    loss_tol: float | None = None,
    method: str = "dopri5",
    max_step: float = math.inf,
    step_factor: float | None = None,
    rtol: float = 1e-7,
    reestimate_every: int = 5,
    eig_tol: float = 1e-8,
    seed: int = 0,
    *,
    max_seconds: float | None = None,
    mode: str = "eval",
    output_fn=None,
    batch_size_fn=None,
    symmetry: Symmetry = "raise",
) -> GFSResult:
    """φ(θ) = λ_max(∇²L(S_GF(θ))) (Kreisler et al. 2023, Definition 3.1): integrate gradient flow
    from the model's parameters until ‖∇L‖ ≤ ``grad_tol`` — or, with ``loss_tol``, until L ≤ loss_tol
    (the criterion of Cohen et al.'s gradient-flow runs, for interpolating models whose flow crawls
    along flat directions long after the sharpness has settled) — or ``max_steps`` accepted steps, and
    return the top Hessian eigenvalue there (Lanczos, relative residual ``eig_tol``).

    ``method="rk4"``: classical RK4 with h = min(step_factor/λ, max_step) (step_factor default 0.2).
    ``method="dopri5"`` (default): the Dormand-Prince 5(4) pair with local error control at relative
    tolerance ``rtol`` (Hairer, Nørsett & Wanner, "Solving ODEs I", §II.4), its step also capped at
    step_factor/λ (default 2.5, inside its stability interval [−3.3, 0] on the real axis): small
    steps where the flow bends, steps near the stability limit in the final linear phase, where a
    fixed fraction of 1/λ would crawl along the flat directions.
    Budgets: ``max_steps`` accepted steps and, optionally, ``max_seconds`` of wall-clock time;
    ``budget_hit`` says which one stopped the flow (``converged`` is then False).

    Losses without a finite minimum: when the loss keeps falling towards 0 as the outputs are
    scaled up (cross-entropy on data the model already separates), gradient flow has no limit —
    θ grows for ever and "the sharpness at the limit" is 0 in the limit — so without ``loss_tol``
    the call is refused in one line; with ``loss_tol`` the flow stops at that loss (Cohen et al.'s
    criterion) and a warning says the end point is set by ``loss_tol``.
    Mode, layouts and the symmetry check as in :mod:`genlab.probes.curvature`.
    Returns :class:`GFSResult`."""
    if method not in ("rk4", "dopri5"):
        raise ValueError(f"method must be 'rk4' or 'dopri5', got {method!r}")
    if step_factor is None:
        step_factor = 0.2 if method == "rk4" else 2.5
    if grad_tol <= 0 or max_steps < 1 or not max_step > 0 or not step_factor > 0 or reestimate_every < 1 or not rtol > 0:
        raise InputError(
            "gfs_sharpness: need grad_tol > 0, max_steps >= 1, max_step > 0, step_factor > 0, rtol > 0, reestimate_every >= 1"
        )
    if max_seconds is not None and not max_seconds > 0:
        raise InputError(f"max_seconds: got {max_seconds!r}; must be > 0 or None")
    with curvature_call(model, loss_fn, data, "hessian", mode=mode, seed=seed, output_fn=output_fn,
                        batch_size_fn=batch_size_fn, symmetry=symmetry) as (op, info):
        if _no_finite_minimum(op, loss_fn):
            msg = ("loss_fn: has no finite minimum on these data (it falls towards 0 as the outputs are scaled up, "
                   "e.g. cross-entropy on separated data), so gradient flow has no limit")
            if loss_tol is None:
                raise InputError(msg + "; pass loss_tol to stop the flow at a loss level")
            warnings.warn(msg + f"; the flow stops at loss_tol={loss_tol}", RuntimeWarning, stacklevel=2)
            info.notes.append(msg + f"; stopped at loss_tol={loss_tol}")
        r = _flow(op, grad_tol, max_steps, loss_tol, method, max_step, step_factor, rtol, reestimate_every, eig_tol,
                  seed, max_seconds)
    r.info = info
    return r


def _no_finite_minimum(op, loss_fn) -> bool:
    """Whether the loss keeps falling towards 0 along c·f(x) for c = 1, 2, 4, …, 2¹⁰ on every batch."""
    with torch.no_grad():
        for _, b, (x, y) in op.chunks():
            out = op._forward(op.theta, x, b)
            losses = [float(loss_fn(out * (2.0**j), y)) for j in range(11)]
            falling = all(b_ <= a for a, b_ in zip(losses, losses[1:])) and losses[1] < losses[0]
            if not (falling and losses[-1] < 1e-3 * losses[0]):
                return False
    return True


def _flow(op, grad_tol, max_steps, loss_tol, method, max_step, step_factor, rtol, reestimate_every, eig_tol, seed,
          max_seconds) -> GFSResult:
    start = time.monotonic()
    out_of_time = False
    theta = op.theta.clone()
    hvps = 0
    grads = 0
    vec: torch.Tensor | None = None

    def sharp(t: torch.Tensor, tol: float) -> float:
        nonlocal hvps, vec
        r = operator_eigenvalues(op.at(t), 1, "largest", tol, max_iter=min(op.size, 200), seed=seed, v0=vec)
        hvps += r.hvps
        vec = r.ritz_vector
        return r.top

    def neg_grad(t: torch.Tensor) -> tuple[float, torch.Tensor]:
        nonlocal grads
        grads += 1
        loss, g = op.loss_and_grad(t)
        return loss, -g

    loss, k1 = neg_grad(theta)
    gnorm = float(torch.linalg.vector_norm(k1))
    lam = sharp(theta, 1e-3)
    steps = 0
    flow_time = 0.0
    since = 0
    h_ctrl = math.inf  # the error controller's proposal (dopri5)
    def done() -> bool:
        return gnorm <= grad_tol or (loss_tol is not None and loss <= loss_tol)

    while not done() and steps < max_steps and math.isfinite(loss):
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            out_of_time = True
            break
        if since >= reestimate_every:
            lam = sharp(theta, 1e-3)
            since = 0
        cap = min(step_factor / lam, max_step) if lam > 0 else max_step
        h = min(cap, h_ctrl) if math.isfinite(cap) else (h_ctrl if math.isfinite(h_ctrl) else 1.0)
        if method == "rk4":
            _, k2 = neg_grad(theta + 0.5 * h * k1)
            _, k3 = neg_grad(theta + 0.5 * h * k2)
            _, k4 = neg_grad(theta + h * k3)
            new = theta + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
            new_loss, new_k1 = neg_grad(new)
            ok = new_loss <= loss
        else:
            ks = [k1]
            for i in range(1, 7):
                inc = sum((a * k for a, k in zip(_DP_A[i], ks) if a != 0.0), torch.zeros_like(theta))
                point = theta + h * inc
                if i < 6:
                    ks.append(neg_grad(point)[1])
            new = point
            new_loss, new_k1 = neg_grad(new)
            ks.append(new_k1)
            err_vec = h * sum(e * k for e, k in zip(_DP_E, ks) if e != 0.0)
            scale = rtol * torch.maximum(theta.abs(), new.abs()) + rtol * float(torch.linalg.vector_norm(theta)) / math.sqrt(theta.numel())
            err = float(torch.sqrt(torch.mean((err_vec / scale) ** 2)))
            h_ctrl = h * min(5.0, max(0.2, 0.9 * (max(err, 1e-16)) ** -0.2))
            ok = err <= 1.0 and new_loss <= loss
        if not ok:
            if method == "rk4" or not (new_loss <= loss):
                # the exact flow never raises the loss: the step was too long
                lam = max(2.0 * lam, sharp(theta, 1e-3)) if method == "rk4" else max(lam, sharp(theta, 1e-3))
                h_ctrl = min(h_ctrl, 0.5 * h)
                since = 0
            if h < 1e-14 * max(cap, 1e-300):
                break
            continue
        theta, loss, k1 = new, new_loss, new_k1
        gnorm = float(torch.linalg.vector_norm(k1))
        steps += 1
        since += 1
        flow_time += h
    lam_end = sharp(theta, eig_tol) if math.isfinite(loss) else float("nan")
    budget = "seconds" if out_of_time else ("steps" if steps >= max_steps and not done() else None)
    return GFSResult(lam_end, loss, gnorm, steps, flow_time, done(), hvps, grads, theta, budget)
