"""The R-norm and the multivariate stability weight, against brute force on a grid, the
univariate formulas and dense Hessians of interpolating networks."""

import numpy as np
import pytest

from genlab.theory.multivariate_stability import (
    interpolating_bound,
    multivariate_stability_weight,
    weighted_laplacian_norm,
)
from genlab.theory.r_norm import balance, path_cost, r_norm, relu_hyperplanes, ridge_r_norm, weight_cost
from genlab.theory.representation_cost import piecewise_linear_from_relu_units
from genlab.theory.stability import stability_weight


def _net(w, b, a, x):
    return np.maximum(x @ w.T + b, 0) @ a


def test_laplacian_mass_on_grid_matches_jumps():
    """∫_box |Δf| = Σ_planes |jump|·(length of the plane inside the box): the left side by a
    5-point discrete Laplacian on a 1200² grid (brute force), the right side from relu_hyperplanes."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 2))
    b = rng.uniform(-0.5, 0.5, 5)
    a = rng.standard_normal(5)
    n = 1200
    xs = np.linspace(-1, 1, n + 1)
    h = xs[1] - xs[0]
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    f = _net(w, b, a, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gx.shape)
    lap = (f[2:, 1:-1] + f[:-2, 1:-1] + f[1:-1, 2:] + f[1:-1, :-2] - 4 * f[1:-1, 1:-1]) / h**2
    grid_mass = np.abs(lap).sum() * h * h
    planes = relu_hyperplanes(w, b, a)
    # chord of {uᵀx = t} in the box [−1+h, 1−h]² (the interior where the stencil is defined)
    lines = np.linspace(-1 + h, 1 - h, 200_001)
    length = []
    for u, t in zip(planes.u, planes.t):
        if abs(u[1]) > abs(u[0]):
            y = (t - u[0] * lines) / u[1]
            inside = np.abs(y) <= 1 - h
            length.append(inside.sum() * (lines[1] - lines[0]) * np.sqrt(1 + (u[0] / u[1]) ** 2))
        else:
            x = (t - u[1] * lines) / u[0]
            inside = np.abs(x) <= 1 - h
            length.append(inside.sum() * (lines[1] - lines[0]) * np.sqrt(1 + (u[1] / u[0]) ** 2))
    exact = float(np.sum(np.abs(planes.jump) * np.array(length)))
    # the stencil smears each kink over ~2 cells: error O(h) relative at crossings and the boundary
    assert grid_mass == pytest.approx(exact, rel=0.01)


def test_merging_same_hyperplane_either_orientation():
    w = np.array([[1.0, 2.0], [-2.0, -4.0], [3.0, 0.0]])
    b = np.array([0.5, -1.0, 1.0])
    a = np.array([2.0, 1.0, -1.0])
    # units 0 and 1 lie on the same plane x + 2y = −0.5 (opposite orientations)
    planes = relu_hyperplanes(w, b, a)
    assert planes.t.size == 2
    s5 = np.sqrt(5)
    assert r_norm(w, b, a) == pytest.approx(abs(2 * s5 + 1 * 2 * s5) + 3)
    # a[z]_+ + a'[−z]_+ with a' = −a is linear: zero R-norm
    assert r_norm(np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([0.2, -0.2]), np.array([1.5, -1.5])) == pytest.approx(0, abs=1e-12)
    x = np.random.default_rng(0).standard_normal((50, 2))
    v = _net(np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([0.2, -0.2]), np.array([1.5, -1.5]), x)
    assert np.allclose(v, 1.5 * (x.sum(1) + 0.2))  # indeed linear


def test_univariate_case_is_slope_variation():
    rng = np.random.default_rng(1)
    w, b, a = rng.standard_normal(7), rng.standard_normal(7), rng.standard_normal(7)
    pl = piecewise_linear_from_relu_units(w, b, a)
    assert r_norm(w[:, None], b, a) == pytest.approx(pl.total_variation_of_slope(), rel=1e-12)


def test_ridge_and_balance():
    rng = np.random.default_rng(2)
    u = np.array([0.6, 0.8])
    # g(s) = Σ_k a_k [s − s_k]_+ as a network with w_k = c_k·u scaled arbitrarily
    s_k, a_k = np.array([-0.5, 0.1, 0.7]), np.array([1.0, -2.5, 0.75])
    scale = rng.uniform(0.2, 3, 3)
    w, b, a = np.outer(scale, u), -s_k * scale, a_k / scale
    assert r_norm(w, b, a) == pytest.approx(ridge_r_norm(a_k))
    wb, bb, ab = balance(w, b, a)
    x = rng.standard_normal((20, 2))
    assert np.allclose(_net(w, b, a, x), _net(wb, bb, ab, x))
    assert weight_cost(wb, ab) == pytest.approx(path_cost(w, a))
    assert weight_cost(w, a) >= path_cost(w, a) >= r_norm(w, b, a) - 1e-12


def test_weight_reduces_to_univariate():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(25)
    q = np.linspace(-3, 3, 61)
    got = multivariate_stability_weight(x[:, None], np.ones((61, 1)), q)
    assert np.allclose(got, stability_weight(x, q), atol=1e-14)
    # a plane with u = −1 and offset −t is the same plane
    assert np.allclose(multivariate_stability_weight(x[:, None], -np.ones((61, 1)), -q), got, atol=1e-14)


def test_weight_by_explicit_loop():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((15, 3))
    u = rng.standard_normal(3)
    u /= np.linalg.norm(u)
    for t in (-0.7, 0.0, 0.4):
        sides = []
        for sgn in (1, -1):
            sel = [xi for xi in x if sgn * (u @ xi) > sgn * t]
            if not sel:
                sides.append(0.0)
                continue
            p = len(sel) / len(x)
            m = np.mean(sel, axis=0)
            e = np.mean([sgn * (u @ xi - t) for xi in sel])
            sides.append(p * p * e * np.sqrt(1 + m @ m))
        assert multivariate_stability_weight(x, u, t)[0] == pytest.approx(min(sides), rel=1e-12)
    assert multivariate_stability_weight(x, u, 100.0)[0] == 0.0


def _gauss_newton_top(w, b, a, x):
    pre = x @ w.T + b
    act = (pre > 0).astype(float)
    n = x.shape[0]
    jac = np.hstack([((act * a)[:, :, None] * x[:, None, :]).reshape(n, -1), act * a, np.maximum(pre, 0), np.ones((n, 1))])
    return np.linalg.eigvalsh(jac.T @ jac / n)[-1]


def test_bound_holds_at_interpolating_minima():
    """At an interpolating minimum ∇²L = (1/n)JᵀJ exactly; stability (λ_max ≤ 2/η) then bounds the
    weighted norm by λ_max/2 − 1/2. Checked on 400 random networks in d = 1…5 (labels set to the
    network's outputs, so every one interpolates)."""
    rng = np.random.default_rng(7)
    ratios = []
    for d in (1, 2, 3, 5):
        for _ in range(100):
            n, k = rng.integers(5, 40), rng.integers(1, 20)
            x = rng.standard_normal((n, d)) * rng.uniform(0.3, 3) + rng.standard_normal(d) * rng.uniform(0, 2)
            w = rng.standard_normal((k, d)) * rng.uniform(0.1, 3)
            b = rng.standard_normal(k) * rng.uniform(0.1, 3)
            a = rng.standard_normal(k) * rng.uniform(0.1, 3)
            lam = _gauss_newton_top(w, b, a, x)
            norm = weighted_laplacian_norm(w, b, a, x)
            assert norm <= lam / 2 - 0.5 + 1e-9
            ratios.append(norm / (lam / 2 - 0.5) if lam > 1 + 1e-9 else 0.0)
    assert max(ratios) > 0.3  # the bound is not vacuous on these networks
    assert interpolating_bound(0.5) == pytest.approx(1.5)
