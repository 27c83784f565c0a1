"""The function-space probes of two-layer ReLU nets on ℝ^d: against the theory on explicit weights
and against the dense Hessian of an interpolating torch model."""

import numpy as np
import pytest
import torch

from genlab.models.shallow import ShallowReLU
from genlab.probes.dense import dense_top_eigenvalue
from genlab.probes.radon import network_r_norm, relu_units, stability_norm
from genlab.train.losses import half_squared_loss


def test_sequential_and_shallow_agree():
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1)).double()
    sh = ShallowReLU(3, 7)
    with torch.no_grad():
        sh.w.copy_(seq[0].weight)
        sh.b.copy_(seq[0].bias)
        sh.a.copy_(seq[2].weight[0])
        sh.c.copy_(seq[2].bias[0])
    x = torch.randn(10, 3, dtype=torch.float64)
    assert torch.allclose(seq(x)[:, 0], sh(x))
    assert network_r_norm(seq) == pytest.approx(network_r_norm(sh))
    w, b, a = relu_units(seq)
    assert network_r_norm(seq) == pytest.approx(float(np.sum(np.abs(a) * np.linalg.norm(w, axis=1))))  # distinct planes
    assert stability_norm(seq, x) == pytest.approx(stability_norm(sh, x.numpy()))
    with pytest.raises(ValueError, match="ShallowReLU"):
        relu_units(torch.nn.Linear(3, 1))


def test_stability_norm_below_dense_hessian_bound():
    """At an interpolating point (labels = the network's outputs) λ_max(∇²L)/2 − 1/2 ≥ the norm,
    with λ_max from the exact dense Hessian of the torch model (the output bias included)."""
    for seed in range(5):
        model = ShallowReLU(4, 12, torch.Generator().manual_seed(seed), in_scale=2.0, out_scale=2.0)
        x = torch.randn(15, 4, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
        with torch.no_grad():
            y = model(x).clone()
        lam = dense_top_eigenvalue(model, half_squared_loss, (x, y))
        assert stability_norm(model, x) <= lam / 2 - 0.5 + 1e-9
