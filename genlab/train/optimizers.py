"""The optimizer registry: ``make_optimizer(name, params, lr, **options)``.

Every entry returns a ``torch.optim.Optimizer``. Those with ``requires_closure = True`` (SAM,
delayed-gradient SGD) evaluate the gradient themselves: ``step(closure)``, where ``closure()``
zeroes the gradients, computes the loss on the current batch, calls ``backward`` and returns the loss.
The others use the gradients already in ``p.grad``.

- ``sgd``: ``torch.optim.SGD`` (heavy-ball ``momentum``, ``nesterov``, ``weight_decay``).
- ``adam``, ``adamw``: ``torch.optim.Adam`` / ``AdamW`` (Kingma & Ba 2015; Loshchilov & Hutter 2019).
- ``lars``: Algorithm 1 of You et al. 2019 (arXiv 1904.00962; LARS of You, Gitman & Ginsburg 2017,
  arXiv 1708.03888).
- ``lamb``: Algorithm 2 of You et al. 2019 (arXiv 1904.00962).
- ``sam``: sharpness-aware minimization (Foret, Kleiner, Mobahi & Neyshabur 2021, arXiv 2010.01412,
  eq. 2 and Algorithm 1) around any base optimizer of this registry.
- ``delayed-sgd``: SGD whose update at step t uses the gradient at the parameters of step t − τ_t
  (fixed τ, or τ_t uniform on {0, …, τ}), with heavy-ball momentum or none — a faithful simulation of
  asynchronous training with a parameter server (Giladi, Nacson, Hoffer & Soudry 2020, arXiv 1909.12340).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable, Iterable

import torch
from torch.optim import Optimizer

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _trust_ratio(w_norm: torch.Tensor, u_norm: torch.Tensor) -> torch.Tensor:
    """φ(‖x‖)/‖u‖ with φ the identity; 1 where either norm is zero (a layer at zero or no update)."""
    ok = (w_norm > 0) & (u_norm > 0)
    return torch.where(ok, w_norm / torch.where(ok, u_norm, torch.ones_like(u_norm)), torch.ones_like(w_norm))


class LARS(Optimizer):
    """Layer-wise adaptive rate scaling, Algorithm 1 of You et al. 2019 (arXiv 1904.00962):

        m ← β₁m + (1 − β₁)(g + λx);   x ← x − η·φ(‖x‖)/‖m‖ · m      (per parameter tensor, φ = id)."""

    def __init__(self, params: Params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b, wd, lr = group["momentum"], group["weight_decay"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                m.mul_(b).add_(p.grad + wd * p, alpha=1 - b)
                p.sub_(lr * _trust_ratio(p.norm(), m.norm()) * m)
        return loss


class LAMB(Optimizer):
    """Layer-wise adaptive moments, Algorithm 2 of You et al. 2019 (arXiv 1904.00962):

        m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  m̂ = m/(1 − β₁ᵗ);  v̂ = v/(1 − β₂ᵗ);
        r = m̂/(√v̂ + ε);  x ← x − η·φ(‖x‖)/‖r + λx‖ · (r + λx)     (per parameter tensor, φ = id)."""

    def __init__(
        self, params: Params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0
    ):
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            (b1, b2), eps, wd, lr = group["betas"], group["eps"], group["weight_decay"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                st["t"] += 1
                g = p.grad
                st["m"].mul_(b1).add_(g, alpha=1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = st["m"] / (1 - b1 ** st["t"])
                v_hat = st["v"] / (1 - b2 ** st["t"])
                u = m_hat / (v_hat.sqrt() + eps) + wd * p
                p.sub_(lr * _trust_ratio(p.norm(), u.norm()) * u)
        return loss


class SAM(Optimizer):
    """Sharpness-aware minimization (Foret et al. 2021, arXiv 2010.01412, eq. 2, Algorithm 1):

        ε = ρ·g/‖g‖ (g the batch gradient, ‖·‖ over all parameters);  then the base optimizer steps
        from x with the gradient taken at x + ε on the same batch.

    ``base`` is a registry name; ``base_options`` go to it. Two gradient evaluations per step."""

    requires_closure = True

    def __init__(self, params: Params, lr: float, rho: float = 0.05, base: str = "sgd", **base_options: Any):
        if not rho >= 0:
            raise ValueError(f"rho must be >= 0, got {rho}")
        super().__init__(params, dict(lr=lr, rho=rho))
        self.base = make_optimizer(base, self.param_groups, lr=lr, **base_options)
        self.param_groups = self.base.param_groups  # one set of groups: a schedule's lr reaches the base

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes the loss and its gradient")
        loss = closure()
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        with torch.no_grad():
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
            rho = self.param_groups[0]["rho"]
            scale = rho / norm if float(norm) > 0 else 0.0
            eps = [p.grad * scale for p in params]
            torch._foreach_add_(params, eps)
        with torch.enable_grad():
            closure()
        with torch.no_grad():
            torch._foreach_sub_(params, eps)
        self.base.step()
        return loss


class DelayedSGD(Optimizer):
    """SGD on stale gradients: x_{t+1} = x_t − η·v_{t+1}, v_{t+1} = β·v_t + ∇L_{B_t}(x_{t−τ_t}) (+ λx_t).

    ``delay`` τ: fixed, or with ``random_delay`` τ_t uniform on {0, …, τ} (drawn from ``seed``).
    Before step τ the oldest available parameters (x_0) are used, as if the workers had all started
    from x_0. The closure is evaluated with the parameters temporarily set to x_{t−τ_t} (so
    BatchNorm running statistics see the stale parameters, as a worker's would)."""

    requires_closure = True

    def __init__(
        self,
        params: Params,
        lr: float,
        delay: int = 0,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        random_delay: bool = False,
        seed: int = 0,
    ):
        if isinstance(delay, bool) or int(delay) != delay or delay < 0:
            raise ValueError(f"delay must be an integer >= 0, got {delay!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.delay = int(delay)
        self.random_delay = bool(random_delay)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.history: deque[list[torch.Tensor]] = deque(maxlen=self.delay + 1)
        self.delays: list[int] = []  # τ_t used at each step

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        if closure is None:
            raise ValueError("DelayedSGD.step needs a closure that recomputes the loss and its gradient")
        params = self._params()
        with torch.no_grad():
            self.history.append([p.detach().clone() for p in params])  # x_t at the right end
        tau = int(torch.randint(0, self.delay + 1, (1,), generator=self.generator)) if self.random_delay else self.delay
        tau = min(tau, len(self.history) - 1)
        self.delays.append(tau)
        stale = self.history[-1 - tau]
        with torch.no_grad():
            for p, s in zip(params, stale):
                p.copy_(s)
        with torch.enable_grad():
            loss = closure()
        with torch.no_grad():
            for p, cur in zip(params, self.history[-1]):
                p.copy_(cur)
            for group in self.param_groups:
                b, wd, lr = group["momentum"], group["weight_decay"], group["lr"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    d = p.grad + wd * p if wd else p.grad.clone()
                    if b:
                        buf = self.state[p].get("v")
                        d = d if buf is None else buf.mul_(b).add_(d)
                        self.state[p]["v"] = d
                    p.sub_(lr * d)
        return loss


def _sgd(params: Params, lr: float, **kw: Any) -> Optimizer:
    return torch.optim.SGD(params, lr=lr, **kw)


def _adam(params: Params, lr: float, **kw: Any) -> Optimizer:
    return torch.optim.Adam(params, lr=lr, **kw)


def _adamw(params: Params, lr: float, **kw: Any) -> Optimizer:
    return torch.optim.AdamW(params, lr=lr, **kw)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
    "lars": LARS,
    "lamb": LAMB,
    "sam": SAM,
    "delayed-sgd": DelayedSGD,
}


def make_optimizer(name: str, params: Params, lr: float, **options: Any) -> Optimizer:
    """The optimizer ``name`` of :data:`OPTIMIZERS` on ``params`` at learning rate ``lr``;
    ``options`` are its keyword arguments (an unknown one is a ``ValueError`` naming it)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {name!r}")
    if not (lr >= 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
    try:
        return OPTIMIZERS[name](params, lr=lr, **options)
    except TypeError as exc:
        raise ValueError(f"optimizer {name!r}: {exc}") from exc


def requires_closure(opt: Optimizer) -> bool:
    """Whether ``opt.step`` must be given a closure (it evaluates gradients itself)."""
    return bool(getattr(opt, "requires_closure", False))
