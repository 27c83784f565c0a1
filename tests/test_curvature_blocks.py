"""Batched curvature products and the top-k stopping rule of Lanczos, against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _curvature_models import mse, regression_data, tanh_mlp

from genlab.probes._operators import CurvatureOperator
from genlab.probes.dense import dense_hessian
from genlab.probes.lanczos import _wanted, certified, lanczos, tridiagonal_eigh


def _bn_cnn() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Conv1d(1, 3, 3), torch.nn.BatchNorm1d(3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(3 * 6, 2),
    ).double().eval()


@pytest.mark.parametrize("chunks", [1, 3])
@pytest.mark.parametrize("block", [1, 4, 16])
def test_matmat_matches_loop_and_dense_hessian(chunks, block):
    model, (x, y) = tanh_mlp(), regression_data()
    data = (x, y) if chunks == 1 else [(x[i::chunks], y[i::chunks]) for i in range(chunks)]
    h = dense_hessian(model, mse, data)
    op = CurvatureOperator(model, mse, data)
    vs = torch.randn(op.size, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = op.matmat(vs, block=block)
    loop = torch.stack([op.matvec(vs[:, j]) for j in range(7)], dim=1)
    # float64 products of the same graph: equal up to summation-order rounding (1e-12 relative)
    scale = float(h.abs().max() * vs.abs().max())
    assert float((out - h @ vs).abs().max()) <= 1e-12 * op.size * scale
    assert float((out - loop).abs().max()) <= 1e-12 * op.size * scale
    assert op.matvecs == 14 and not op.notes


def test_matmat_on_a_convolution_with_batchnorm_and_the_ggn():
    model = _bn_cnn()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(20, 1, 8, generator=g, dtype=torch.float64), torch.randn(20, 2, generator=g, dtype=torch.float64)
    vs = torch.randn(sum(p.numel() for p in model.parameters()), 5, generator=g, dtype=torch.float64)
    h = dense_hessian(model, mse, (x, y))
    op = CurvatureOperator(model, mse, (x, y))
    np.testing.assert_allclose(op.matmat(vs, block=5).numpy(), (h @ vs).numpy(), rtol=0, atol=1e-10 * float(h.abs().max()))
    ggn = CurvatureOperator(model, mse, (x, y), "ggn")  # GGN: column by column, same answer as matvec
    loop = torch.stack([ggn.matvec(vs[:, j]) for j in range(5)], dim=1)
    torch.testing.assert_close(ggn.matmat(vs, block=5), loop, rtol=1e-12, atol=1e-12)


def _clustered(seed: int, n: int = 400) -> tuple[torch.Tensor, np.ndarray]:
    """λ_1..λ_9 = 100..20, λ_10 = 10, a cluster of 30 in [9, 9.9] just below, the rest in [0, 2]."""
    rng = np.random.default_rng(seed)
    ev = np.concatenate([np.linspace(100, 20, 9), [10.0], rng.uniform(9.0, 9.9, 30), rng.uniform(0, 2, n - 40)])
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return torch.tensor((q * ev) @ q.T), np.sort(ev)[::-1]


def test_top_k_stopping_rule_on_a_cluster_below_the_kth_eigenvalue():
    """The old rule (the k wanted residuals ≤ tol·|θ|max) stops with the 10th Ritz value near the
    cluster, farther than tol·|θ|max from λ_10; the certified rule must never do so (6 seeds)."""
    k, tol = 10, 1e-3
    old_failures = 0
    for seed in range(6):
        a, ev = _clustered(seed)
        v0 = torch.randn(a.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        run = lanczos(lambda v: a @ v, v0, 200, k=k, tol=tol)
        theta, s = run.ritz()
        res = run.residuals(s)
        assert certified(theta, res, k, "largest", tol)
        top = theta[_wanted(theta, k, "largest")][::-1]
        bound = tol * np.abs(theta).max()
        assert np.all(np.abs(top - ev[:k]) <= bound), (seed, top - ev[:k])
        # the old rule on the same Krylov sequence: the first step where the k residuals pass
        full = lanczos(lambda v: a @ v, v0, 200)
        for j in range(k + 1, 200):
            th, sj = tridiagonal_eigh(full.alphas[:j], full.betas[: j - 1])
            rj = full.betas[j - 1] * np.abs(sj[-1])
            idx = _wanted(th, k, "largest")
            if np.all(rj[idx] <= tol * np.abs(th).max()):
                old_failures += abs(th[idx][0] - ev[k - 1]) > tol * np.abs(th).max()
                break
    assert old_failures >= 1  # the matrix is a case where residuals alone mislead


@pytest.mark.parametrize("which", ["largest", "smallest", "both", "magnitude"])
def test_certified_eigenvalues_match_dense(which):
    a, ev = _clustered(7, n=150)
    a = a - 5.0 * torch.eye(150, dtype=torch.float64)  # negative eigenvalues too
    ev = np.sort(ev - 5.0)
    v0 = torch.randn(150, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    run = lanczos(lambda v: a @ v, v0, 150, k=3, which=which, tol=1e-8)
    theta, s = run.ritz()
    assert certified(theta, run.residuals(s), 3, which, 1e-8)
    got = np.sort(theta[_wanted(theta, 3, which)])
    want = {"largest": ev[-3:], "smallest": ev[:3], "both": np.concatenate([ev[:3], ev[-3:]]),
            "magnitude": np.sort(ev[np.argsort(-np.abs(ev))[:3]])}[which]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8 * np.abs(ev).max())


def test_tridiagonal_eigh_matches_dense():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(30), rng.standard_normal(29)
    t = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
    w, v = tridiagonal_eigh(a, b)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(t), atol=1e-12)
    np.testing.assert_allclose(t @ v, v * w, atol=1e-12)
    assert tridiagonal_eigh(np.array([2.0]), np.array([]))[0].tolist() == [2.0]
