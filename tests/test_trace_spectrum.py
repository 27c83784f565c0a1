"""Hutchinson / Hutch++ traces and SLQ spectral densities against exact dense Hessians (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _curvature_models import mse, regression_data, tanh_mlp

from genlab.probes.dense import dense_hessian
from genlab.probes.spectrum import hessian_spectrum
from genlab.probes.trace import hessian_trace


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trace_within_three_standard_errors(method, seed):
    model, (x, y) = tanh_mlp(seed), regression_data(seed)
    exact = float(torch.trace(dense_hessian(model, mse, (x, y))))
    r = hessian_trace(model, mse, (x, y), method=method, num_matvecs=60, seed=seed)
    assert r.hvps == 60
    assert np.isfinite(r.stderr) and r.stderr > 0
    # an unbiased estimator with its own standard error: 3 SE is a 99.7% interval (normal approx.)
    assert abs(r.estimate - exact) <= 3 * r.stderr


def test_hutchpp_beats_hutchinson_on_a_decaying_spectrum():
    """Meyer et al. 2021: for a spectrum dominated by a few large eigenvalues Hutch++'s error is far
    below Hutchinson's at the same number of products. Linear regression with a spiked input
    covariance has such a Hessian (XᵀX/n)."""
    g = torch.Generator().manual_seed(0)
    d, n = 150, 400
    scales = torch.ones(d, dtype=torch.float64) * 0.1
    scales[:10] = torch.linspace(10.0, 3.0, 10, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    exact = float(torch.trace(dense_hessian(model, mse, (x, y))))
    errs = {}
    for method in ("hutchinson", "hutch++"):
        r = hessian_trace(model, mse, (x, y), method=method, num_matvecs=45, seed=3)
        assert abs(r.estimate - exact) <= 3 * r.stderr
        errs[method] = r.stderr
    assert errs["hutch++"] < 0.2 * errs["hutchinson"]


def test_hutchinson_stops_at_target_standard_error():
    model, (x, y) = tanh_mlp(1), regression_data(1)
    r = hessian_trace(model, mse, (x, y), method="hutchinson", num_matvecs=1000, target_stderr=2.0, seed=0)
    assert r.stderr <= 2.0 and 10 <= r.hvps < 1000


def test_slq_moments_equal_normalized_traces_of_powers():
    """E[vᵀH^j v] = tr(H^j)/N for v uniform on the unit sphere, and the SLQ quadrature reproduces
    vᵀH^j v exactly for j ≤ 2m−1 (Golub & Meurant 2010). The tolerance is 4 exact standard errors of
    the mean over n_v probes, from Var(vᵀAv) = 2/(N+2)·(tr(A²)/N − (tr A/N)²) for v uniform on the sphere."""
    model, (x, y) = tanh_mlp(7, width=16), regression_data(7)
    h = dense_hessian(model, mse, (x, y))
    ev = torch.linalg.eigvalsh(h).numpy()
    n = ev.size
    n_v = 20
    s = hessian_spectrum(model, mse, (x, y), num_probes=n_v, lanczos_steps=12, seed=0)
    assert s.hvps == n_v * 12
    for j in range(1, 5):
        exact = np.mean(ev**j)
        var = 2.0 / (n + 2) * (np.mean(ev ** (2 * j)) - exact**2)
        se = np.sqrt(var / n_v)
        assert abs(s.moment(j) - exact) <= 4 * se, (j, s.moment(j), exact, se)
    # the broadened density is a probability density whose mean is the first moment
    mass = np.trapezoid(s.density, s.grid)
    assert mass == pytest.approx(1.0, abs=1e-6)
    assert np.trapezoid(s.grid * s.density, s.grid) == pytest.approx(s.moment(1), abs=1e-6 * abs(ev).max())


def test_slq_lists_isolated_outliers_and_not_the_bulk():
    """Linear least squares: H = XᵀX/n. Three spiked input directions give three eigenvalues far
    above a Marchenko-Pastur bulk; SLQ must list exactly those, at their dense values."""
    g = torch.Generator().manual_seed(1)
    d, n = 300, 1200
    scales = torch.ones(d, dtype=torch.float64)
    scales[:3] = torch.tensor([9.0, 7.0, 5.0], dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    ev = torch.linalg.eigvalsh(dense_hessian(model, mse, (x, y))).numpy()[::-1]
    s = hessian_spectrum(model, mse, (x, y), num_probes=4, lanczos_steps=40, seed=0)
    found = [o.value for o in s.outliers]
    assert len(found) == 3
    np.testing.assert_allclose(found, ev[:3], rtol=1e-6)
    assert s.bulk[1] <= ev[3] * (1 + 1e-9) + 1e-12
