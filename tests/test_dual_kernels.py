"""Deep NNGP/NTK by dual activations (genlab.theory.dual_kernels) against independent computations:
the duals against Gaussian quadrature (smooth activations) or Monte Carlo (ReLU, whose kink defeats
tensor-product quadrature); the ReLU recursion against genlab.theory.kernels.relu_kernels; the
recursion against genlab's empirical NTK of wide networks, with tolerances from the 1/√width
fluctuation of a finite network's kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss, hermeval
from scipy.special import erf

from genlab.models.dual_activations import activation
from genlab.models.ntk_mlp import NTKMLP
from genlab.probes.kernels import empirical_ntk
from genlab.theory.dual_kernels import deep_dual_kernels, dual_activation, dual_nngp, dual_ntk
from genlab.theory.kernels import relu_kernels

C_ERF = math.sqrt(2 / math.pi * math.asin(2 / 3))


def _numpy_phi(name: str, **p):
    """(φ, φ') written independently of the library (scipy's erf, numpy's Hermite series)."""
    if name == "relu":
        return lambda t: math.sqrt(2) * np.maximum(t, 0), lambda t: math.sqrt(2) * (t > 0)
    if name == "erf":
        return lambda t: erf(t) / C_ERF, lambda t: 2 / math.sqrt(math.pi) * np.exp(-t * t) / C_ERF
    if name == "sine":
        a = p["a"]
        c = math.sqrt(math.exp(-a) * math.sinh(a))
        return lambda t: np.sin(math.sqrt(a) * t) / c, lambda t: math.sqrt(a) * np.cos(math.sqrt(a) * t) / c
    coef = np.array([math.sqrt(v / math.factorial(k)) for k, v in enumerate(p["coefficients"])])
    dcoef = np.array([coef[k + 1] * (k + 1) for k in range(len(coef) - 1)])  # He_k' = k·He_{k−1}
    return lambda t: hermeval(t, coef), lambda t: hermeval(t, dcoef)


SMOOTH = [("erf", {}), ("sine", {"a": 1.0}), ("sine", {"a": 2.676}), ("hermite", {"coefficients": [0, 0.5, 0, 0.5]}),
          ("hermite", {"coefficients": [0, 0.5, 0, 0, 0, 0, 0, 0.5]})]


@pytest.mark.parametrize("name,params", SMOOTH)
def test_smooth_duals_match_gaussian_quadrature(name, params) -> None:
    """E[φ(u)φ(v)] and E[φ'(u)φ'(v)] by 2-D Gauss–Hermite quadrature (120 nodes per axis: exact
    for polynomials of degree < 240, and to ~1e-12 for these entire functions)."""
    f, df = _numpy_phi(name, **params)
    act = dual_activation(name, **params)
    z, w = hermegauss(120)
    w = w / w.sum()
    for r in (-0.95, -0.4, 0.0, 0.3, 0.8, 1.0):
        v = r * z[:, None] + math.sqrt(max(1 - r * r, 0.0)) * z[None, :]
        ww = w[:, None] * w[None, :]
        assert abs(float((ww * f(z[:, None]) * f(v)).sum()) - float(act.xi(np.array(r)))) < 1e-9
        assert abs(float((ww * df(z[:, None]) * df(v)).sum()) - float(act.dxi(np.array(r)))) < 1e-8
    assert abs(float(act.xi(np.array(1.0))) - 1) < 1e-12  # normalized


def test_relu_dual_matches_monte_carlo() -> None:
    """2·10⁶ Gaussian pairs; tolerance 5 standard errors of the sample mean (estimated from the sample)."""
    f, df = _numpy_phi("relu")
    act = dual_activation("relu")
    rng = np.random.default_rng(0)
    u, e = rng.standard_normal((2, 2_000_000))
    for r in (-0.7, 0.0, 0.6, 0.95):
        v = r * u + math.sqrt(1 - r * r) * e
        for g, ref in ((f, act.xi), (df, act.dxi)):
            s = g(u) * g(v)
            assert abs(s.mean() - float(ref(np.array(r)))) < 5 * s.std() / math.sqrt(len(s))


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_relu_recursion_matches_the_arc_cosine_kernels(depth: int) -> None:
    rng = np.random.default_rng(depth)
    x = rng.standard_normal((7, 4))
    # radius √(d₀/2): relu_kernels' first layer σ_w²·x·x'/d₀ (σ_w² = 2) is then the cosine ρ₀
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(2.0)
    nngp, ntk = relu_kernels(x, depth=depth, sigma_w2=2.0, sigma_b2=0.0)
    # atol: relu_kernels takes arccos of a diagonal cosine rounded to 1 ± ε, which is off by
    # √(2ε) ≈ 2e-8 per layer (arccos's conditioning at 1)
    assert np.allclose(dual_nngp(x, None, depth, "relu"), nngp, rtol=1e-12, atol=1e-14)
    assert np.allclose(dual_ntk(x, None, depth, "relu"), ntk, rtol=0, atol=5e-8 * (depth + 1))


def test_normalized_kernel_is_the_kernel_over_its_diagonal_and_stays_finite() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    act = dual_activation("hermite", coefficients=[0, 0.5, 0, 0.5])  # ξ'(1) = 2: diagonal ~ 2^depth
    paths = deep_dual_kernels(x, None, [3, 10], act)
    norm = deep_dual_kernels(x, None, [3, 10], act, normalize=True)
    for L in (3, 10):
        k = paths[L][1]
        assert np.allclose(norm[L][1], k / k[0, 0], rtol=1e-12)
        assert np.allclose(np.diag(k), k[0, 0])  # unit-norm inputs: one diagonal value
    deep = deep_dual_kernels(x, None, 2000, act, normalize=True)[2000][1]
    assert np.all(np.isfinite(deep)) and np.allclose(np.diag(deep), 1.0)


def _sphere(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(d)


@pytest.mark.parametrize("name,params", [("relu", {}), ("erf", {}), ("sine", {"a": 2.676}),
                                         ("hermite", {"coefficients": [0, 0.5, 0, 0.5]})])
def test_one_hidden_layer_empirical_ntk_within_its_sampling_error(name, params) -> None:
    """With one hidden layer the empirical NTK is a mean over the W hidden units of i.i.d. terms
    t_k = φ(u_k)φ(u'_k) + a_k²·φ'(u_k)φ'(u'_k)·ρ₀ (u_k = w_k·x/√d), so each entry is within
    5·sd(t)/√W of the infinite-width value (sd(t) by Monte Carlo over 2·10⁵ units, numpy)."""
    d, width = 4, 2000
    x = _sphere(5, d, 0)
    theory = dual_ntk(x, None, 1, dual_activation(name, **params))
    net = NTKMLP(d, width, 1, sigma_w2=1.0, activation=activation(name, **params),
                 generator=torch.Generator().manual_seed(3))
    emp = empirical_ntk(net, torch.tensor(x)).numpy()
    f, df = _numpy_phi(name, **params)
    rng = np.random.default_rng(7)
    w, a = rng.standard_normal((200_000, d)), rng.standard_normal(200_000)
    u = w @ x.T / math.sqrt(d)
    rho0 = x @ x.T / d
    sd = np.empty_like(theory)
    for i in range(len(x)):
        for j in range(len(x)):
            t = f(u[:, i]) * f(u[:, j]) + a * a * df(u[:, i]) * df(u[:, j]) * rho0[i, j]
            sd[i, j] = t.std()
    assert np.all(np.abs(emp - theory) <= 5 * sd / math.sqrt(width))


@pytest.mark.parametrize("name,params", [("relu", {}), ("erf", {}), ("sine", {"a": 1.0})])
def test_deep_empirical_ntk_converges_at_the_fluctuation_rate(name, params) -> None:
    """Depth 3: the relative error ‖Θ_W − Θ‖_F/‖Θ‖_F of a width-W network is of order
    √(depth/W) (the NTK's fluctuations, Hanin & Nica 2019, arXiv 1909.05989, Thm 1: variance
    ∝ depth/width). Tolerance: mean over 3 networks ≤ 3·√(depth/W) at W = 512 (measured constant
    1–2.6 over W = 64…1024 for these activations), and the error at W = 512 below 0.6× that at
    W = 32 (the rate predicts 0.25)."""
    d, depth = 4, 3
    x = _sphere(5, d, 1)
    theory = dual_ntk(x, None, depth, dual_activation(name, **params))

    def err(width: int) -> float:
        out = []
        for s in range(3):
            net = NTKMLP(d, width, depth, sigma_w2=1.0, activation=activation(name, **params),
                         generator=torch.Generator().manual_seed(11 + s))
            k = empirical_ntk(net, torch.tensor(x)).numpy()
            out.append(np.linalg.norm(k - theory) / np.linalg.norm(theory))
        return float(np.mean(out))

    wide, narrow = err(512), err(32)
    assert wide <= 3 * math.sqrt(depth / 512)
    assert wide < 0.6 * narrow


def test_bad_activation_is_refused() -> None:
    with pytest.raises(ValueError, match="activation"):
        dual_activation("swish")
    with pytest.raises(ValueError, match="coefficients"):
        dual_activation("hermite", coefficients=[0.5, 0.6])


def test_deep_relu_ntk_tends_to_a_quarter_off_the_diagonal() -> None:
    """Hand-checked limit: for ReLU the angles shrink as θ_h ≈ 3π/h, so Π_{h'>h} ξ'(ρ_h') ≈ (h/L)³
    and Θ^L(x, x') ≈ Σ_h (h/L)³ ≈ L/4 while Θ^L(x, x) = L + 1: the normalized NTK → 1/4 off the
    diagonal for every pair of distinct inputs. Corrections are of relative order log(L)/L
    (≈ 1e-3 at L = 10⁴); tolerance 5e-3."""
    rng = np.random.default_rng(3)
    k = dual_ntk(rng.standard_normal((5, 4)), None, 10_000, "relu", normalize=True)
    off = k[~np.eye(5, dtype=bool)]
    assert np.allclose(np.diag(k), 1.0) and np.all(np.abs(off - 0.25) < 5e-3)
