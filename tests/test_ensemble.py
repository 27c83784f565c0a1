"""Vectorized ensembles equal separate Trainer runs (same seeds, step sizes, data) to rounding."""

from __future__ import annotations

import pytest
import torch

from genlab.data.synthetic import univariate_regression
from genlab.models.relu1d import TwoLayerReLU1D
from genlab.train import Trainer
from genlab.train.ensemble import dense_loss_grad, init_params, sorted_loss_grad, train_ensemble


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.mean((out - y) ** 2)


def _autograd(model: TwoLayerReLU1D, x: torch.Tensor, y: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    loss = _mse(model(x), y)
    grads = torch.autograd.grad(loss, [model.w, model.b, model.v, model.c])
    return float(loss), list(grads)


@pytest.mark.parametrize("kernel", ["dense", "sorted"])
def test_kernel_gradients_match_autograd(kernel: str) -> None:
    """One gradient evaluation per member against autograd; includes w = 0 neurons (one with b > 0,
    one with b < 0) and a member padded with zero-weight points. Tolerance 1e-12: a single
    evaluation differs from autograd only by summation order."""
    seeds, n, width = [3, 4, 5], 9, 40
    params = init_params(width, seeds, 1.0, 1.0)
    params[0][0, :2] = 0.0  # w = 0
    params[1][0, 0], params[1][0, 1] = 0.7, -0.7
    xs, ys = [], []
    for s in seeds:
        d = univariate_regression(n, "cubic", 0.2, seed=s)
        xs.append(torch.tensor(d.x))
        ys.append(torch.tensor(d.y))
    X, Y = torch.stack(xs), torch.stack(ys)
    # member 2 really has only its first 6 points: the last 3 get weight 0
    W = torch.full((3, n), 1.0 / n, dtype=torch.float64)
    W[2, :] = 1.0 / 6
    W[2, 6:] = 0.0
    if kernel == "sorted":
        X, order = torch.sort(X, dim=1)
        Y, W = Y.gather(1, order), W.gather(1, order)
    loss, grads = (dense_loss_grad if kernel == "dense" else sorted_loss_grad)(params, X, Y, W)
    for e, s in enumerate(seeds):
        model = TwoLayerReLU1D(width)
        with torch.no_grad():
            for p, q in zip(model.parameters(), params):
                p.copy_(q[e])
        keep = W[e] > 0
        ref_loss, ref = _autograd(model, X[e][keep], Y[e][keep])
        assert abs(float(loss[e]) - ref_loss) <= 1e-12 * max(1.0, ref_loss)
        for g, r in zip(grads, ref):
            torch.testing.assert_close(g[e], r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["dense", "sorted"])
def test_ensemble_equals_separate_trainer_runs(kernel: str) -> None:
    """Members with different seeds, data and step sizes (one stable, one converging, two at large
    steps, one diverging) end exactly as separate Trainer runs: same status and step, parameters
    within 1e-9 (the runs differ only by the order of floating-point sums, ~1e-16 per step)."""
    seeds = [0, 1, 2, 3, 4]
    etas = [0.1, 0.3, 0.6, 0.9, 6.0]
    width, n, steps, tol = 30, 16, 1500, 1e-3
    data = [univariate_regression(n, "sine", 0.1, seed=s) for s in seeds]
    X = torch.stack([torch.tensor(d.x) for d in data])
    Y = torch.stack([torch.tensor(d.y) for d in data])
    res = train_ensemble(init_params(width, seeds, 0.1, 0.1), X, Y, lr=etas, max_steps=steps, grad_tol=tol, kernel=kernel)
    statuses = set()
    for e, (s, eta) in enumerate(zip(seeds, etas)):
        model = TwoLayerReLU1D(width, torch.Generator().manual_seed(s), in_scale=0.1, out_scale=0.1)
        ref = Trainer(model, _mse, (X[e], Y[e]), lr=eta, max_steps=steps, grad_tol=tol).fit()
        statuses.add(ref.status)
        assert (res.status[e], res.steps[e]) == (ref.status, ref.steps)
        if ref.status == "diverged":
            continue
        assert abs(res.loss[e] - ref.loss) <= 1e-9 * max(ref.loss, 1e-300)
        got = res.model(e)
        for p, q in zip(got.parameters(), model.parameters()):
            torch.testing.assert_close(p, q.detach(), rtol=0, atol=1e-9)
    assert statuses == {"converged", "budget", "diverged"}  # every way of stopping was exercised


def test_stopped_members_are_frozen_and_progress_counts_member_steps() -> None:
    seeds = [0, 1]
    X = torch.tensor(univariate_regression(10, "sine", 0.1, seed=0).x)
    Y = torch.tensor(univariate_regression(10, "sine", 0.1, seed=0).y)

    class Bar:
        n = 0

        def advance(self, k: int = 1) -> None:
            Bar.n += k

    res = train_ensemble(init_params(20, seeds, 0.1, 0.1), X, Y, lr=[0.2, 0.2], max_steps=[5, 40], progress=Bar())
    assert res.steps == [5, 40] and res.status == ["budget", "budget"]
    assert Bar.n == 45
    # member 0 stopped at step 5: equal to a 5-step run
    model = TwoLayerReLU1D(20, torch.Generator().manual_seed(0), in_scale=0.1, out_scale=0.1)
    Trainer(model, _mse, (X, Y), lr=0.2, max_steps=5).fit()
    torch.testing.assert_close(res.model(0).v, model.v.detach(), rtol=0, atol=1e-12)
