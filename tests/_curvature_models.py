"""Tiny float64 models and data shared by the curvature tests."""

from __future__ import annotations

import torch
from torch.func import functional_call, hessian, jacrev


def tanh_mlp(seed: int = 0, d_in: int = 5, width: int = 12, d_out: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, width), torch.nn.Tanh(), torch.nn.Linear(width, width), torch.nn.Tanh(),
        torch.nn.Linear(width, d_out),
    ).double()


def regression_data(seed: int = 0, n: int = 40, d_in: int = 5, d_out: int = 3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g, dtype=torch.float64), torch.randn(n, d_out, generator=g, dtype=torch.float64)


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - target) ** 2).sum(1).mean()


def dense_ggn(model: torch.nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Jᵀ (∇²_f ℓ) J built from the full Jacobian and the output Hessian (an independent reference)."""
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}

    def f(flat: torch.Tensor) -> torch.Tensor:
        parts, i = {}, 0
        for n in names:
            k = params[n].numel()
            parts[n] = flat[i : i + k].reshape(params[n].shape)
            i += k
        return functional_call(model, parts, (x,))

    theta = torch.cat([params[n].reshape(-1) for n in names])
    out = f(theta)
    jac = jacrev(f)(theta).reshape(out.numel(), -1)
    h_out = hessian(lambda o: loss_fn(o.reshape(out.shape), y))(out.reshape(-1))
    return jac.T @ h_out @ jac
