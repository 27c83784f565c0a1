"""Sequential max-margin projections (Evron et al. 2023) against closed forms, hand-solved cases
and scipy's SLSQP on the primal QP (an independent solver)."""

import numpy as np
import pytest
from scipy.optimize import minimize

from genlab.theory.max_margin import least_distance
from genlab.theory.sequential_max_margin import (
    affine_projection_iterates,
    cyclic_cumulative_bound,
    data_radius,
    forgetting,
    offline_max_margin,
    project_onto_task,
    random_cumulative_bound,
    sequential_max_margin,
    task_violation,
)


def _slsqp_projection(w0, Z, h):
    res = minimize(lambda w: 0.5 * np.sum((w - w0) ** 2), w0, jac=lambda w: w - w0, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda w: Z @ w - h, "jac": lambda w: Z}],
                   options={"ftol": 1e-14, "maxiter": 500})
    assert res.success
    return res.x


def test_single_halfspace_closed_form():
    # projection onto {w : zᵀw ≥ 1} is w0 + (1 − zᵀw0)_+ z/‖z‖²
    rng = np.random.default_rng(0)
    for _ in range(20):
        z, w0 = rng.standard_normal(4), rng.standard_normal(4)
        expected = w0 + max(0.0, 1 - z @ w0) * z / (z @ z)
        np.testing.assert_allclose(project_onto_task(w0, z[None, :], np.array([1.0])), expected, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_least_distance_matches_slsqp_with_mixed_signs(seed):
    # right-hand sides of both signs: some constraints hold at v = 0, some do not
    rng = np.random.default_rng(seed)
    n, d = 7, 5
    Z = rng.standard_normal((n, d))
    h = Z @ rng.standard_normal(d) - rng.exponential(size=n)  # feasible (the drawn point satisfies it)
    assert np.any(h > 0) and np.any(h < 0)
    v, alpha = least_distance(Z, h)
    ref = _slsqp_projection(np.zeros(d), Z, h)
    # SLSQP's constraint/objective accuracy with ftol 1e-14 is ~1e-7 on this scale
    np.testing.assert_allclose(v, ref, atol=1e-6)
    assert np.all(alpha >= 0) and np.all(Z @ v >= h - 1e-9)


def test_all_constraints_already_hold():
    v, alpha = least_distance(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([-1.0, 0.0]))
    assert np.all(v == 0) and np.all(alpha == 0)


def test_infeasible_raises():
    with pytest.raises(ValueError):
        least_distance(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, 1.0]))


def test_hand_solved_two_tasks_differs_from_offline():
    # task A: w_1 ≥ 1; task B: w_1 + w_2 ≥ 2. From 0: A → (1, 0); B → (1,0) + ½(1,1) = (1.5, 0.5),
    # which satisfies A: a fixed point. The offline max-margin solution is (1, 1), ‖·‖² = 2 < 2.5.
    A = (np.array([[1.0, 0.0]]), np.array([1.0]))
    B = (np.array([[-0.5, -0.5]]), np.array([-1.0]))  # y·x = (0.5, 0.5): w_1 + w_2 ≥ 2
    W = sequential_max_margin([A, B], [0, 1, 0, 1])
    np.testing.assert_allclose(W[1], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(W[2], [1.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(W[4], [1.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(offline_max_margin([A, B]), [1.0, 1.0], atol=1e-9)
    assert task_violation(W[2], *A) == 0.0
    assert task_violation(np.zeros(2), *B) == pytest.approx(1.0)


def test_projection_matches_slsqp_on_a_task():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 4))
    y = np.sign(X @ rng.standard_normal(4))
    w0 = rng.standard_normal(4)
    ref = _slsqp_projection(w0, X * y[:, None], np.ones(6))
    np.testing.assert_allclose(project_onto_task(w0, X, y), ref, atol=1e-6)


def _random_tasks(rng, T, n, d):
    u = rng.standard_normal(d)
    tasks = []
    for _ in range(T):
        X = rng.standard_normal((n, d))
        tasks.append((X, np.sign(X @ u)))
    return tasks


@pytest.mark.parametrize("seed", range(4))
def test_fejer_monotone_and_bounds(seed):
    rng = np.random.default_rng(seed)
    T, d = 4, 6
    tasks = _random_tasks(rng, T, 5, d)
    w_star = offline_max_margin(tasks)
    R = data_radius(tasks)
    order = [k % T for k in range(40)]
    W = sequential_max_margin(tasks, order)
    dist = np.linalg.norm(W - w_star, axis=1)
    assert np.all(np.diff(dist) <= 1e-9)  # Fejér monotone towards any joint solution
    steps = np.sum(np.diff(W, axis=0) ** 2, axis=1)
    assert steps.sum() <= w_star @ w_star + 1e-9
    F, Fmax = forgetting(tasks, order, W)
    assert np.all(F <= Fmax + 1e-12)
    assert Fmax.sum() <= cyclic_cumulative_bound(T, R, np.linalg.norm(w_star)) + 1e-9
    # every seen task's violation at w_k is bounded by R·(path length since its last visit)
    for k in range(1, len(order) + 1):
        for m in set(order[:k]):
            s = max(i for i in range(k) if order[i] == m) + 1
            path = np.sum(np.linalg.norm(np.diff(W[s : k + 1], axis=0), axis=1))
            assert task_violation(W[k], *tasks[m]) <= R * path + 1e-9


def test_forgetting_by_hand():
    A = (np.array([[1.0, 0.0]]), np.array([1.0]))
    B = (np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, -1.0]))  # w_2 ≥ 1, w_1 ≤ −1
    order = [0, 1]
    W = sequential_max_margin([A, B], order)
    np.testing.assert_allclose(W[2], [-1.0, 1.0], atol=1e-10)
    F, Fmax = forgetting([A, B], order, W)
    # after step 2 task A is violated by 1 − (−1) = 2: F = (4 + 0)/2, F_max = 4
    np.testing.assert_allclose(F, [0.0, 2.0], atol=1e-10)
    np.testing.assert_allclose(Fmax, [0.0, 4.0], atol=1e-10)


def test_regression_iterates_go_to_min_norm_solution():
    # cyclic projections onto affine sets converge to the projection of 0 onto their intersection
    rng = np.random.default_rng(1)
    d = 8
    w_true = rng.standard_normal(d)
    tasks = [(X, X @ w_true) for X in (rng.standard_normal((2, d)) for _ in range(3))]
    W = affine_projection_iterates(tasks, [k % 3 for k in range(3000)])
    Xall = np.vstack([t[0] for t in tasks])
    yall = np.concatenate([t[1] for t in tasks])
    np.testing.assert_allclose(W[-1], np.linalg.pinv(Xall) @ yall, atol=1e-6)


def test_bounds_input_checks():
    with pytest.raises(ValueError):
        cyclic_cumulative_bound(0, 1.0, 1.0)
    with pytest.raises(ValueError):
        random_cumulative_bound(0, 1.0, 1.0)
    assert random_cumulative_bound(3, 2.0, 0.5) == pytest.approx(3.0)
    assert cyclic_cumulative_bound(3, 2.0, 0.5) == pytest.approx(4.0)
