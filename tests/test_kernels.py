"""Kernel probes and infinite-width kernels against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.models.ntk_mlp import NTKMLP
from genlab.probes.kernels import empirical_ntk, kernel_alignment, kernel_distance, relative_weight_change
from genlab.theory.kernels import kernel_regression, kernel_regression_predict, nngp_relu, ntk_relu


def _explicit_jacobian(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n, c, P) by one autograd.grad call per scalar output: the reference, no torch.func."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = model(x).reshape(x.shape[0], -1)
    rows = []
    for a in range(out.shape[0]):
        per_out = []
        for k in range(out.shape[1]):
            g = torch.autograd.grad(out[a, k], params, retain_graph=True, allow_unused=True)
            per_out.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1) for gi, p in zip(g, params)]))
        rows.append(torch.stack(per_out))
    return torch.stack(rows).detach()


def _tiny(c: int) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.Tanh(), torch.nn.Linear(7, 5), torch.nn.Softplus(), torch.nn.Linear(5, c))
    net = net.double()
    net[0].bias.requires_grad_(False)  # a frozen parameter must not enter the kernel
    return net


REL = 1e-8  # float64 contractions of the same numbers in a different order: ~1e-15 expected


@pytest.mark.parametrize("max_elements", [2**24, 50, 600, 2000])  # all at once, 1 example, uneven chunks
def test_empirical_ntk_matches_jacobian_products(max_elements: int) -> None:
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    x2 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    # scalar output
    net = _tiny(1)
    j1, j2 = _explicit_jacobian(net, x1)[:, 0], _explicit_jacobian(net, x2)[:, 0]
    for a, b, ja, jb in ((x1, None, j1, j1), (x1, x2, j1, j2)):
        k = empirical_ntk(net, a, b, max_elements=max_elements)
        ref = ja @ jb.T
        assert k.shape == ref.shape
        assert torch.linalg.norm(k - ref) <= REL * torch.linalg.norm(ref)
    # vector output: full (n1, n2, c, c) and trace
    net = _tiny(3)
    j1, j2 = _explicit_jacobian(net, x1), _explicit_jacobian(net, x2)
    for a, b, ja, jb in ((x1, None, j1, j1), (x1, x2, j1, j2)):
        ref = torch.einsum("akp,blp->abkl", ja, jb)
        full = empirical_ntk(net, a, b, outputs="full", max_elements=max_elements)
        assert full.shape == (a.shape[0], (b if b is not None else a).shape[0], 3, 3)
        assert torch.linalg.norm(full - ref) <= REL * torch.linalg.norm(ref)
        tr = empirical_ntk(net, a, b, outputs="trace", max_elements=max_elements)
        ref_tr = torch.einsum("abkk->ab", ref)
        assert torch.linalg.norm(tr - ref_tr) <= REL * torch.linalg.norm(ref_tr)
    # the model is not modified
    before = [p.detach().clone() for p in net.parameters()]
    empirical_ntk(net, x1)
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))


@pytest.mark.parametrize("depth", [1, 2])
def test_empirical_ntk_approaches_analytic_as_width_grows(depth: int) -> None:
    """At initialization Θ_emp → Θ_∞ (Jacot et al. 2018, Thm 1) with fluctuations O(width^(-1/2)).

    For depth 1 the empirical kernel is an average of `width` i.i.d. terms whose mean is the analytic
    kernel (so the CLT gives exactly the -1/2 rate); deeper nets have the same rate (Hanin & Nica 2019,
    arXiv 1909.05989). Mean relative Frobenius error over 16 seeds at 4 widths spanning 64×; the fitted
    log-log slope must lie in [-0.75, -0.3]. Spread of that slope, measured over independent seed sets
    while writing this test: std ≈ 0.06 with 8 seeds (so ≈ 0.045 with 16); ±0.25 around -0.5 is over
    5 standard errors wide, yet excludes no convergence (slope 0) and a wrong analytic kernel (the
    error would level off at the bias, flattening the slope towards 0)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    xt = torch.tensor(x)
    widths = [32, 128, 512, 2048] if depth == 1 else [16, 64, 256, 1024]
    kwargs = dict(sigma_w2=2.0, sigma_b2=0.1)
    ref = ntk_relu(x, depth=depth, **kwargs)
    errs = []
    for w in widths:
        e = []
        for seed in range(16):
            net = NTKMLP(4, w, depth, generator=torch.Generator().manual_seed(1000 * seed + w), **kwargs)
            k = empirical_ntk(net, xt).numpy()
            e.append(np.linalg.norm(k - ref) / np.linalg.norm(ref))
        errs.append(float(np.mean(e)))
    slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert -0.75 <= slope <= -0.3, (slope, errs)
    assert errs[-1] < 0.1


def test_nngp_is_output_covariance_at_init() -> None:
    """NNGP = covariance of the network output over initializations (Lee et al. 2018): Monte Carlo
    over 4000 width-64 networks; tolerance 0.06 relative (MC std ≈ sqrt(2/4000)·|K| ≈ 0.02|K| per
    entry, plus O(1/width) finite-width bias)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3))
    ref = nngp_relu(x, depth=2, sigma_w2=2.0, sigma_b2=0.2)
    g = torch.Generator().manual_seed(0)
    outs = []
    with torch.no_grad():
        for _ in range(4000):
            outs.append(NTKMLP(3, 64, 2, sigma_b2=0.2, generator=g)(torch.tensor(x)).numpy())
    outs = np.array(outs)
    emp = outs.T @ outs / len(outs)
    assert np.linalg.norm(emp - ref) <= 0.06 * np.linalg.norm(ref), (emp, ref)


def test_kernel_distance_and_alignment() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 5))
    k = a @ a.T
    assert abs(kernel_distance(k, 3.0 * k)) < 1e-14
    b = rng.standard_normal((5, 5))
    ref = 1 - np.trace(k @ (b @ b.T)) / (np.linalg.norm(k) * np.linalg.norm(b @ b.T))
    assert abs(kernel_distance(torch.tensor(k), b @ b.T) - ref) < 1e-14
    assert abs(kernel_distance(np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]])) - 1.0) < 1e-15
    # centered alignment against the dense formula with H = I − 11ᵀ/n
    y = rng.standard_normal(5)
    h = np.eye(5) - np.ones((5, 5)) / 5
    kc, yc = h @ k @ h, h @ np.outer(y, y) @ h
    ref = np.sum(kc * yc) / (np.linalg.norm(kc) * np.linalg.norm(yc))
    assert abs(kernel_alignment(k, y) - ref) < 1e-12
    assert abs(kernel_alignment(np.outer(y, y) + 7.0, y) - 1.0) < 1e-12  # constants are centered away
    onehot = np.eye(3)[[0, 1, 2, 0, 1]]
    yy = h @ onehot @ onehot.T @ h
    ref = np.sum(kc * yy) / (np.linalg.norm(kc) * np.linalg.norm(yy))
    assert abs(kernel_alignment(k, onehot) - ref) < 1e-12


def test_relative_weight_change() -> None:
    net = _tiny(2)
    init = {n: p.detach().clone() for n, p in net.state_dict(keep_vars=True).items()}
    flat0 = torch.cat([p.detach().reshape(-1) for p in net.parameters() if p.requires_grad])
    with torch.no_grad():
        net[2].weight.add_(0.5)
    flat1 = torch.cat([p.detach().reshape(-1) for p in net.parameters() if p.requires_grad])
    ref = float(torch.linalg.norm(flat1 - flat0) / torch.linalg.norm(flat0))
    assert abs(relative_weight_change(net, init) - ref) < 1e-14
    assert abs(relative_weight_change(net, flat0) - ref) < 1e-14


def test_kernel_regression() -> None:
    rng = np.random.default_rng(3)
    x, xt = rng.standard_normal((8, 3)), rng.standard_normal((5, 3))
    y = rng.standard_normal(8)
    kern = lambda a, b: ntk_relu(a, b, depth=2, sigma_b2=0.1)  # noqa: E731
    # ridgeless interpolates; ridge matches the explicit inverse
    assert np.allclose(kernel_regression(kern, x, y, x), y, atol=1e-9)
    k, kx = kern(x, x), kern(xt, x)
    assert np.allclose(kernel_regression_predict(k, y, kx, ridge=0.3), kx @ np.linalg.inv(k + 0.3 * np.eye(8)) @ y, atol=1e-12)
    assert np.allclose(kernel_regression(kern, x, y, xt), kx @ np.linalg.solve(k, y), atol=1e-9)


def test_per_example_jacobian_paths_match_explicit() -> None:
    """vmap(jacrev) over examples and jacrev of the whole chunk give the explicit Jacobian (1e-12:
    float64, the same products summed in another order)."""
    from genlab.probes._functional import FlatModel
    from genlab.probes.kernels import _jacobian

    net = _tiny(3)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = _explicit_jacobian(net, x)
    fm = FlatModel(net)
    params = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    for per_example in (True, False):
        blocks = _jacobian(fm, params, x, 5, per_example=per_example)
        J = torch.cat(blocks, dim=2)
        assert J.shape == ref.shape
        assert torch.linalg.norm(J - ref) <= 1e-12 * torch.linalg.norm(ref)
