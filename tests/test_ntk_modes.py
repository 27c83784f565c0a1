"""Residual projected onto the NTK's eigenvectors (genlab.probes.ntk_modes) on a linear model,
where GD on (1/2n)‖Xw − y‖² gives exactly c_i(t) = (1 − ηλ_i)^t c_i(0) with λ_i the eigenvalues
of XXᵀ/n (computed here by numpy, independently of the probe's empirical NTK)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.errors import InputError
from genlab.probes.ntk_modes import kernel_modes, mode_rates, residual_projection
from genlab.train.losses import half_squared_loss


def _linear_run(lr_scale: float, steps: int = 30):
    g = torch.Generator().manual_seed(0)
    n, d = 8, 5  # n > d: three null modes of XXᵀ, whose residual never moves (factor 1)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    lam = np.sort(np.linalg.eigvalsh((x @ x.T).numpy() / n))[::-1]
    lr = lr_scale / lam[0]
    modes = kernel_modes(model, x)
    cs = []
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps + 1):
        cs.append(residual_projection(model, (x, y), modes))
        opt.zero_grad()
        half_squared_loss(model(x), y).backward()
        opt.step()
    return modes, lam, lr, np.array(cs)


@pytest.mark.parametrize("lr_scale", [0.5, 1.6])
def test_linear_model_rates_are_exact(lr_scale: float) -> None:
    """η·λ_max = 0.5 (all factors in (0, 1]) and 1.6 (the top mode oscillates with factor −0.6)."""
    modes, lam, lr, cs = _linear_run(lr_scale)
    assert np.allclose(modes.eigenvalues, lam, rtol=1e-10, atol=1e-12)
    rates = mode_rates(np.arange(len(cs)), cs, modes=modes, lr=lr)
    assert np.allclose(rates.predicted, 1 - lr * lam, rtol=0, atol=1e-12)
    ok = np.abs(cs[0]) > 1e-8  # a mode with no initial residual has no rate to fit
    # factors fitted from 31 exact geometric points: agreement to rounding (float64, 30 steps)
    assert np.allclose(rates.factors[ok], 1 - lr * lam[ok], rtol=0, atol=1e-8)
    # and the recorded projections are the geometric sequences themselves
    t = np.arange(len(cs))[:, None]
    assert np.allclose(cs, cs[0] * (1 - lr * lam) ** t, rtol=1e-8, atol=1e-10)


def test_residual_projection_leaves_the_model_as_it_was() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1)).double()
    model.train()
    x = torch.randn(6, 3, dtype=torch.float64)
    before = [p.detach().clone() for p in model.parameters()]
    modes = kernel_modes(model, x)
    residual_projection(model, (x, torch.zeros(6, dtype=torch.float64)), modes)
    assert model.training and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bad_input() -> None:
    with pytest.raises(InputError, match="projections"):
        mode_rates([0], np.zeros((1, 3)))
    with pytest.raises(InputError, match="steps"):
        mode_rates([1, 0], np.ones((2, 3)))
