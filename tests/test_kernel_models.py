"""Models of the kernel-regime experiments against the empirical-NTK probe."""

from __future__ import annotations

import numpy as np
import torch

from genlab.experiments.kernels.grokking import quad_net_ntk, quad_net_output
from genlab.models.centered import Centered
from genlab.models.ntk_mlp import NTKMLP
from genlab.probes.kernels import empirical_ntk


class _QuadNet(torch.nn.Module):
    """Torch twin of the grokking model: (α/N)Σ φ(w_i·x), φ(h) = h + (ε/2)h²."""

    def __init__(self, W: np.ndarray, alpha: float, eps: float):
        super().__init__()
        self.W = torch.nn.Parameter(torch.tensor(W))
        self.alpha, self.eps = alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.W.T
        return self.alpha / self.W.shape[0] * (h + 0.5 * self.eps * h * h).sum(1)


def test_grokking_model_ntk_and_output() -> None:
    rng = np.random.default_rng(0)
    W0, W = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    a, b = rng.standard_normal((4, 5)) / np.sqrt(5), rng.standard_normal((3, 5)) / np.sqrt(5)
    alpha, eps = 3.0, 0.2
    net = _QuadNet(W, alpha, eps)
    ref = empirical_ntk(net, torch.tensor(a), torch.tensor(b)).numpy()
    assert np.linalg.norm(quad_net_ntk(W, a, b, alpha, eps) - ref) <= 1e-12 * np.linalg.norm(ref)
    with torch.no_grad():
        f = net(torch.tensor(a)).numpy() - _QuadNet(W0, alpha, eps)(torch.tensor(a)).numpy()
    assert np.allclose(quad_net_output(W, W0, a, alpha, eps), f, rtol=1e-12, atol=1e-14)


def test_centered_model() -> None:
    """Centered output is 0 at initialization, its NTK is α²·NTK of the base, its copy is frozen."""
    base = NTKMLP(3, 16, 2, sigma_b2=0.1, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    net = Centered(base, alpha=2.5)
    assert torch.equal(net(x), torch.zeros(5, dtype=torch.float64))
    k_base = empirical_ntk(base, x)
    k_net = empirical_ntk(net, x)
    assert torch.allclose(k_net, 2.5**2 * k_base, rtol=1e-12)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == sum(p.numel() for p in base.parameters())
