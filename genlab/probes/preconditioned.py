"""Preconditioned sharpness λ_max(P⁻¹H): the quantity at Adam's edge of stability.

Cohen et al. 2022 ("Adaptive gradient methods at the edge of stability", arXiv 2207.14484, §3)
show that full-batch Adam with preconditioner P = diag(√v̂ + ε) trains with λ_max(P⁻¹H) rising to
and hovering at (2 + 2β₁)/((1 − β₁)η) (:func:`genlab.theory.thresholds.adam_sharpness_threshold`).
P⁻¹H is similar to the symmetric P^{-1/2} H P^{-1/2}, whose top eigenvalue Lanczos finds from
Hessian-vector products: v ↦ P^{-1/2} H (P^{-1/2} v).
"""

from __future__ import annotations

from typing import Any

import torch

from genlab.probes._functional import Data, LossFn
from genlab.probes._operators import CurvatureOperator, Symmetry, curvature_call
from genlab.probes.curvature import EigenResult, operator_eigenvalues


class _Preconditioned:
    """The operator P^{-1/2} H P^{-1/2} with the counters :func:`operator_eigenvalues` reads."""

    def __init__(self, op: CurvatureOperator, diag: torch.Tensor):
        self.op = op
        self.scale = diag.to(op.dtype).rsqrt()
        self.size, self.dtype = op.size, op.dtype

    @property
    def matvecs(self) -> int:
        return self.op.matvecs

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op.matvec(self.scale * v)


def preconditioned_sharpness(
    model: torch.nn.Module, loss_fn: LossFn, data: Data, diag: torch.Tensor, tol: float = 1e-4, seed: int = 0, v0: torch.Tensor | None = None,
    *, mode: str = "eval", symmetry: Symmetry = "raise",
) -> EigenResult:
    """λ_max(P⁻¹H) for the diagonal preconditioner P = diag(``diag``) (a flat vector > 0 over the
    trainable parameters, in ``model.named_parameters()`` order). The returned Ritz vector is that of
    the symmetric form (for warm starts). The model is unchanged. Measured in ``mode`` (default eval)
    inside the frame every curvature probe uses (:func:`genlab.probes._operators.curvature_call`:
    data checks, attention on twice-differentiable kernels, e.g. for ``nn.TransformerEncoderLayer``;
    ``symmetry``: its check of the Hessian on a random pair)."""
    with curvature_call(model, loss_fn, data, mode=mode, seed=seed, symmetry=symmetry) as (op, info):
        d = diag.detach().reshape(-1)
        if d.numel() != op.size or not bool((d > 0).all()):
            raise ValueError(f"diag must have {op.size} entries, all > 0")
        r = operator_eigenvalues(_Preconditioned(op, d), k=1, tol=tol, seed=seed, v0=v0)  # type: ignore[arg-type]
    r.info = info
    return r


def adam_preconditioner(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> torch.Tensor:
    """Adam's current P = √v̂ + ε (v̂ = v/(1 − β₂ᵗ)) as a flat vector over ``model``'s trainable
    parameters, read from a ``torch.optim.Adam``/``AdamW`` state (ε where a parameter has no state)."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    parts = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        g: Any = group_of[id(p)]
        st = optimizer.state.get(p, {})
        if "exp_avg_sq" in st:
            t = float(st["step"])
            v_hat = st["exp_avg_sq"] / (1 - g["betas"][1] ** t)
            parts.append((v_hat.sqrt() + g["eps"]).reshape(-1))
        else:
            parts.append(torch.full((p.numel(),), g["eps"], dtype=p.dtype))
    return torch.cat(parts).detach()
