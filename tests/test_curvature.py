"""Lanczos eigenvalues, GGN products and batch sharpness against exact dense matrices (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _curvature_models import dense_ggn, mse, regression_data, tanh_mlp

from genlab.probes.curvature import hessian_eigenvalues, minibatch_sharpness
from genlab.probes.dense import dense_hessian
from genlab.recorder import MemoryRecorder
from genlab.train import Trainer
from genlab.train.probe_measurements import probe_measurement

# Lanczos with residual tolerance tol·|θ|max bounds each eigenvalue error by tol·|θ|max (Parlett 1998,
# Thm 4.5.1); tol = 1e-9 with |θ|max ≈ λ_max gives errors far below the required 1e-6 relative.
REL = 1e-6


def _params(model):
    return [t.detach().clone() for t in list(model.parameters()) + list(model.buffers())]


@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_extreme_eigenvalues_match_dense(which):
    model, (x, y) = tanh_mlp(), regression_data()
    exact = torch.linalg.eigvalsh(dense_hessian(model, mse, (x, y))).numpy()[::-1]  # descending
    before = _params(model)
    r = hessian_eigenvalues(model, mse, (x, y), k=3, which=which, tol=1e-9, max_iter=200, return_eigenvectors=True)
    want = exact[:3] if which == "largest" else exact[-3:]
    assert r.converged
    assert r.hvps < exact.size  # found before the Krylov space filled the whole parameter space
    np.testing.assert_allclose(r.eigenvalues, want, rtol=REL, atol=REL * abs(exact).max())
    assert np.all(np.diff(r.eigenvalues) <= 0)
    # eigenvectors: H u = λ u, checked with the dense matrix
    h = dense_hessian(model, mse, (x, y))
    for lam, u in zip(r.eigenvalues, r.eigenvectors):
        assert torch.linalg.vector_norm(h @ u - lam * u) <= 1e-6 * abs(exact).max()
    for a, b in zip(before, _params(model)):
        assert torch.equal(a, b)


def test_chunked_data_gives_the_mean_loss_curvature():
    model, (x, y) = tanh_mlp(1), regression_data(1, n=50)
    exact = torch.linalg.eigvalsh(dense_hessian(model, mse, (x, y))).numpy()[::-1]
    chunks = [(x[:7], y[:7]), (x[7:30], y[7:30]), (x[30:], y[30:])]  # unequal chunk sizes
    r = hessian_eigenvalues(model, mse, chunks, k=2, tol=1e-9)
    np.testing.assert_allclose(r.eigenvalues, exact[:2], rtol=REL)
    r_gen = hessian_eigenvalues(model, mse, iter(chunks), k=2, tol=1e-9)  # a one-shot iterator
    np.testing.assert_allclose(r_gen.eigenvalues, exact[:2], rtol=REL)


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_ggn_eigenvalues_match_dense_gauss_newton(loss):
    model, (x, y) = tanh_mlp(2), regression_data(2)
    if loss == "ce":
        y = torch.arange(x.shape[0]) % 3
        loss_fn = torch.nn.functional.cross_entropy
    else:
        loss_fn = mse
    g = dense_ggn(model, loss_fn, x, y)
    exact = torch.linalg.eigvalsh(g).numpy()[::-1]
    r = hessian_eigenvalues(model, loss_fn, (x, y), k=3, tol=1e-9, curvature="ggn")
    np.testing.assert_allclose(r.eigenvalues, exact[:3], rtol=REL)
    # the GGN differs from the Hessian away from a minimum: the test distinguishes them
    h_top = torch.linalg.eigvalsh(dense_hessian(model, loss_fn, (x, y)))[-1].item()
    assert abs(h_top - exact[0]) > 1e-3 * abs(exact[0])


def _explicit_bn_net_loss(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, shapes) -> torch.Tensor:
    """Linear → BatchNorm1d (train mode: batch mean, biased batch variance, eps 1e-5) → tanh → Linear,
    written out by hand as a function of the flat parameters (independent of nn.BatchNorm1d)."""
    parts, i = [], 0
    for shape in shapes:
        k = int(np.prod(shape))
        parts.append(flat[i : i + k].reshape(shape))
        i += k
    w1, b1, gamma, beta, w2, b2 = parts
    h = x @ w1.T + b1
    h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5) * gamma + beta
    return mse(torch.tanh(h) @ w2.T + b2, y)


def test_batchnorm_buffers_untouched_and_train_mode_curvature():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.normal_()
    x, y = regression_data(3, n=30, d_in=4, d_out=2)
    before = _params(model)
    r = hessian_eigenvalues(model, mse, (x, y), k=2, tol=1e-9, mode="train")
    r_ggn = hessian_eigenvalues(model, mse, (x, y), k=1, tol=1e-9, curvature="ggn", mode="train")
    for a, b in zip(before, _params(model)):
        assert torch.equal(a, b)  # running statistics and num_batches_tracked unchanged
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    h = torch.func.hessian(lambda t: _explicit_bn_net_loss(t, x, y, shapes))(flat)
    exact = torch.linalg.eigvalsh(h).numpy()[::-1]
    np.testing.assert_allclose(r.eigenvalues, exact[:2], rtol=REL)
    assert r_ggn.top > 0


def test_float32_model_runs_in_float32():
    model, (x, y) = tanh_mlp(4), regression_data(4)
    model = model.float()
    r = hessian_eigenvalues(model, mse, (x.float(), y.float()), k=1, tol=1e-4, return_eigenvectors=True)
    assert r.eigenvectors.dtype == torch.float32
    exact = torch.linalg.eigvalsh(dense_hessian(model.double(), mse, (x, y)))[-1].item()
    assert abs(r.top - exact) <= 1e-3 * exact  # float32 rounding (ε ≈ 6e-8) amplified by a few hundred ops


def test_batch_sharpness_matches_dense_minibatch_hessians():
    model, (x, y) = tanh_mlp(5), regression_data(5, n=30)
    r = minibatch_sharpness(model, mse, (x, y), batch_size=8, num_batches=4, tol=1e-9)
    for idx, value in zip(r.batches, r.values):
        idx = torch.tensor(idx)
        exact = torch.linalg.eigvalsh(dense_hessian(model, mse, (x[idx], y[idx])))[-1].item()
        assert value == pytest.approx(exact, rel=REL)
    full = torch.linalg.eigvalsh(dense_hessian(model, mse, (x, y)))[-1].item()
    assert r.full_batch == pytest.approx(full, rel=REL)
    assert r.mean == pytest.approx(np.mean(r.values))
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_sharpness(model, mse, (x, y), batch_size=31)


def test_probe_as_trainer_measurement_records_the_sharpness():
    model, (x, y) = tanh_mlp(6), regression_data(6)
    rec = MemoryRecorder()
    m = probe_measurement(2, hessian_eigenvalues, mse, (x, y), keys=("sharpness",), tol=1e-9)
    Trainer(model, mse, (x, y), lr=0.01, max_steps=4, measurements=[m], recorder=rec).fit()
    steps, values = rec.series("sharpness")
    assert sorted(set(steps)) == [0, 2, 4]  # (the trainer also measures once more at the end)
    exact = torch.linalg.eigvalsh(dense_hessian(model, mse, (x, y)))[-1].item()  # at the final parameters
    assert values[-1] == pytest.approx(exact, rel=REL)
    assert values[0] != values[-1]


def test_bad_arguments_are_refused():
    model, (x, y) = tanh_mlp(), regression_data()
    with pytest.raises(ValueError, match="which"):
        hessian_eigenvalues(model, mse, (x, y), which="top")
    with pytest.raises(ValueError, match="curvature"):
        hessian_eigenvalues(model, mse, (x, y), curvature="fisher")
    with pytest.raises(ValueError, match="k: got 0"):
        hessian_eigenvalues(model, mse, (x, y), k=0)


def test_every_probe_works_as_a_measurement():
    from genlab.probes.gfs import gfs_sharpness
    from genlab.probes.spectrum import hessian_spectrum
    from genlab.probes.trace import hessian_trace

    model, (x, y) = tanh_mlp(8, width=6), regression_data(8, n=10)
    exact = torch.linalg.eigvalsh(dense_hessian(model, mse, (x, y))).numpy()
    cases = [
        (hessian_trace, {"num_matvecs": 9}, "trace"),
        (hessian_spectrum, {"num_probes": 2, "lanczos_steps": 5}, "num_outliers"),
        (minibatch_sharpness, {"batch_size": 5, "num_batches": 2}, "full_batch_sharpness"),
        (gfs_sharpness, {"max_steps": 5}, "gfs_sharpness"),
    ]
    for probe, kwargs, key in cases:
        values = probe_measurement(1, probe, mse, (x, y), prefix="p/", **kwargs).fn(model, 0)
        assert "p/" + key in values and np.isfinite(values["p/" + key])
    values = probe_measurement(1, minibatch_sharpness, mse, (x, y), batch_size=5, num_batches=2, tol=1e-9).fn(model, 0)
    assert values["full_batch_sharpness"] == pytest.approx(exact[-1], rel=REL)


def test_batch_sharpness_is_the_deprecated_name_of_minibatch_sharpness():
    from genlab.probes import batch_sharpness as old, minibatch_sharpness

    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    xs, ys = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, 1, dtype=torch.float64)
    new = minibatch_sharpness(m, mse, (xs, ys), batch_size=4, num_batches=2, tol=1e-10)
    with pytest.warns(DeprecationWarning, match="minibatch_sharpness"):
        again = old(m, mse, (xs, ys), batch_size=4, num_batches=2, tol=1e-10)
    assert again.values == new.values and "minibatch_sharpness" in new.scalars()
