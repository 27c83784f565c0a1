"""The dense Hessian against central finite differences of the gradient (an independent route)."""

import numpy as np
import pytest
import torch

from genlab.probes._functional import FlatModel
from genlab.probes.dense import dense_eigenvalues, dense_hessian, dense_top_eigenvalue


def tiny_mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()


def mse(o, t):
    return 0.5 * ((o - t) ** 2).sum(-1).mean()


def fd_hessian(model, loss_fn, x, y, h=1e-5):
    fm = FlatModel(model)
    theta = fm.flat()

    def grad(t):
        t = t.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fm.loss(t, loss_fn, (x, y)), t)
        return g.detach()

    cols = []
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = h
        cols.append((grad(theta + e) - grad(theta - e)) / (2 * h))
    H = torch.stack(cols, 1)
    return 0.5 * (H + H.T)


def test_dense_hessian_matches_finite_differences():
    m = tiny_mlp()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.randn(9, 2, generator=g, dtype=torch.float64)
    before = [p.detach().clone() for p in m.parameters()]
    H = dense_hessian(m, mse, (x, y))
    # central differences: truncation O(h²) ~ 1e-10, rounding ~ eps/h ~ 1e-11
    Hfd = fd_hessian(m, mse, x, y)
    assert torch.allclose(H, Hfd, rtol=0, atol=1e-7 * Hfd.abs().max())
    lam = dense_top_eigenvalue(m, mse, (x, y))
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(Hfd)[-1]), rel=1e-6)
    # the model is not modified
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_chunked_data_gives_the_same_hessian():
    m = tiny_mlp(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    y = torch.randn(10, 2, generator=g, dtype=torch.float64)
    H = dense_hessian(m, mse, (x, y))
    Hc = dense_hessian(m, mse, [(x[:3], y[:3]), (x[3:], y[3:])])
    assert torch.allclose(H, Hc, atol=1e-12)
    ev = dense_eigenvalues(m, mse, (x, y))
    assert np.all(np.diff(ev.numpy()) <= 0)


def test_relu1d_sharpness_includes_output_bias_curvature():
    """For f = c alone (v = 0) on mean-squared loss L = ½·mean(f−y)², ∂²L/∂c² = 1."""
    from genlab.models import TwoLayerReLU1D

    m = TwoLayerReLU1D(3)
    with torch.no_grad():
        m.v.zero_()
        m.w.zero_()
        m.b.fill_(-1.0)  # every unit off: only c moves the output
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    lam = dense_top_eigenvalue(m, lambda o, t: 0.5 * torch.mean((o - t) ** 2), (x, torch.zeros(5, dtype=torch.float64)))
    assert lam == pytest.approx(1.0)


def test_train_mode_batchnorm_hessian_matches_finite_differences_and_keeps_buffers():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)).double().train()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randn(8, 1, generator=g, dtype=torch.float64)
    stats = [b.clone() for b in m.buffers()]
    H = dense_hessian(m, mse, (x, y), mode="train")
    Hfd = fd_hessian(m, mse, x, y)
    assert torch.allclose(H, Hfd, rtol=0, atol=1e-7 * Hfd.abs().max())
    assert all(torch.equal(a, b) for a, b in zip(stats, m.buffers()))
