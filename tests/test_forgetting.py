"""Forgetting formulas: the product-of-projections curve against the iterative update
w ← w + X⁺(y − Xw) run directly, a hand case in 2-D, and the cyclic bound's arithmetic."""

import numpy as np
import pytest

from genlab.theory.forgetting import cyclic_forgetting_bound, forgetting_curve, two_task_forgetting


def test_matches_iterative_update():
    rng = np.random.default_rng(0)
    d, T = 12, 3
    tasks = [rng.standard_normal((4, d)) for _ in range(T)]
    w_star = rng.standard_normal(d)
    order = [t % T for t in range(10)]
    w = np.zeros(d)
    direct = []
    for k, m in enumerate(order, start=1):
        X = tasks[m]
        w = w + np.linalg.lstsq(X, X @ w_star - X @ w, rcond=None)[0]  # min-norm correction
        direct.append(np.mean([np.sum((tasks[j] @ w - tasks[j] @ w_star) ** 2) for j in order[:k]]))
    np.testing.assert_allclose(forgetting_curve(tasks, w_star, order), direct, rtol=1e-9, atol=1e-12)


def test_two_lines_hand_case():
    # d = 2, task 1: x1 = e1, task 2: x2 = (cos θ, sin θ), w* = e2. After task 1, w1 = 0 (w*⊥x1):
    # e1 = −e2. Task 2 projects onto x2⊥ = (−sin θ, cos θ): e2 = −cos θ·(−sin θ, cos θ);
    # forgetting of task 1: (x1·e2)² = cos²θ sin²θ.
    th = 0.6
    X1, X2 = np.array([[1.0, 0.0]]), np.array([[np.cos(th), np.sin(th)]])
    assert two_task_forgetting(X1, X2, np.array([0.0, 1.0])) == pytest.approx((np.cos(th) * np.sin(th)) ** 2)
    curve = forgetting_curve([X1, X2], np.array([0.0, 1.0]), [0, 1])
    assert curve[1] == pytest.approx((np.cos(th) * np.sin(th)) ** 2 / 2)  # averaged over 2 iterations


def test_bound_arithmetic():
    assert cyclic_forgetting_bound(3, 100, 50) == pytest.approx(9 * 0.1)
    assert cyclic_forgetting_bound(3, 100, 5) == pytest.approx(9 * 0.05)
