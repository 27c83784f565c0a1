"""Issue 21 part A experiments end to end on small settings, and their verdicts' power to fail
on results where the claimed ordering is reversed."""

from __future__ import annotations

import pytest

from conftest import run_experiment
from genlab.errors import InputError
from genlab.experiments import get_experiment


def _by_claim(verdicts, text):
    return next(v for v in verdicts if text in v.claim)


def test_connectivity_rank_small_run() -> None:
    result, verdicts = run_experiment("connectivity-rank", d=6, n=12, n_test=10, width=24, ranks=[1, 3, 6],
                                      steps=60, seeds=1)
    assert {v.kind for v in verdicts} == {"precondition", "claim", "finding"}
    assert _by_claim(verdicts, "effective rank").passed  # built ranks and norms, measured by SVD
    assert len(result["runs"]) == 5 and all(abs(c - 1) < 1e-9 for c in result["task_subspace_cosines"])


def test_connectivity_rank_verdicts_fail_on_a_reversed_ordering() -> None:
    exp = get_experiment("connectivity-rank")
    cfg = exp.Config(ranks=[1, 2, 4], aligned_rank=2)
    runs = []
    for kind, r, wc, kd in [("random", 1, 0.1, 0.01), ("random", 2, 0.2, 0.02), ("random", 4, 0.3, 0.03),
                            ("aligned", 2, 0.5, 0.05), ("gaussian", cfg.d, 0.2, 0.02)]:
        runs.append({"kind": kind, "rank": r, "seed": 0, "status": "budget", "train_loss": 1e-4, "initial_loss": 1.0,
                     "effective_rank": float(r), "norm": (cfg.width * cfg.d) ** 0.5, "alignment": 1.0,
                     "weight_change": wc, "kernel_distance": kd, "test_mse": 0.5})
    v = exp.checks(cfg, {"runs": runs, "task_subspace_cosines": [1.0, 1.0]})
    assert not _by_claim(v, "relative weight change falls").passed
    assert not _by_claim(v, "kernel distance falls").passed
    assert not _by_claim(v, "task-aligned").passed
    assert _by_claim(v, "fitted the training data").passed


def test_connectivity_rank_config_bounds() -> None:
    cfg = get_experiment("connectivity-rank").Config
    with pytest.raises((InputError, ValueError), match="ranks"):
        cfg(d=4, ranks=[1, 2, 8])
    with pytest.raises((InputError, ValueError), match="aligned_rank"):
        cfg(ranks=[1, 2, 4], aligned_rank=3)


def test_deep_ntk_classifiers_small_run() -> None:
    result, verdicts = run_experiment("deep-ntk-classifiers", n=12, n_test=40, relu_depths=[1, 30000],
                                      depths=[1, 100], nn_depths=[1, 8])
    assert len(verdicts) == 5 and [v.kind for v in verdicts].count("claim") == 3
    relu = result["cases"]["relu"]
    # hand-checked limit: normalized ReLU NTK → (3/4)I + (1/4)11ᵀ on training points and 1/4 off them,
    # whose interpolant is Σy/(n + 3) on every test point: majority vote
    assert relu["deepest_vs_rules"]["majority"] == 1.0


def test_singular_exponent_reproduces_the_authors_pairings() -> None:
    """The authors' code pairs ξ = ρ/2 + ρ⁷/2, ρ/2 + ρ³/2, ρ/4 + ρ²/2 + ρ³/4 and ρ/16 + 7ρ²/8 + ρ³/16
    with 2-, 3-, 5- and 9-dimensional data (Hilbert exponent m = d − 1 = 1, 2, 4, 8)."""
    from genlab.experiments.kernels.deep_ntk_classifiers import singular_exponent
    from genlab.theory.dual_kernels import dual_activation

    for coef, m in (([0, 0.5, 0, 0, 0, 0, 0, 0.5], 1), ([0, 0.5, 0, 0.5], 2), ([0, 0.25, 0.5, 0.25], 4),
                    ([0, 1 / 16, 7 / 8, 1 / 16], 8)):
        assert abs(singular_exponent(dual_activation("hermite", coefficients=coef)) - m) < 1e-12
    assert abs(singular_exponent(dual_activation("sine", a=2.676)) - 2) < 0.01  # their "sine_2.676": 3-d data


def test_deep_ntk_classifiers_verdicts_fail_when_agreement_stays_low() -> None:
    from genlab.experiments.kernels.deep_ntk_classifiers import CASES

    exp = get_experiment("deep-ntk-classifiers")
    cfg = exp.Config()
    cases = {key: {"label": label, "rule": rule, "kind": kind, "exponent": 2.0, "depths": [1, 100],
                   "agreement": [0.7, 0.8], "test_accuracy": [0.9, 0.9], "rule_accuracy": 0.9,
                   "deepest_vs_rules": {"majority": 0.8}} for key, label, _a, rule, kind in CASES}
    assert not any(v.passed for v in exp.checks(cfg, {"cases": cases}))


def test_overparameterized_convergence_small_run() -> None:
    result, verdicts = run_experiment("overparameterized-convergence", ns=[3, 8], widths=[4, 16, 32], seeds=1, steps=60)
    assert [v.kind for v in verdicts] == ["precondition", "claim", "claim", "claim", "finding", "finding"]
    assert len(result["runs"]) == 6 and all(r["status"] != "diverged" for r in result["runs"])


def test_log_loss_line_fit_on_a_geometric_sequence() -> None:
    import numpy as np

    from genlab.experiments.dynamics.overparameterized_convergence import _line_fit

    losses = 2.0 * 0.9 ** np.arange(300)  # exactly linear in log: R² = 1, slope log 0.9
    r2, slope = _line_fit(losses)
    assert abs(r2 - 1) < 1e-12 and abs(slope - np.log(0.9)) < 1e-12
    assert np.isnan(_line_fit(np.ones(50))[0])  # never inside the window: nothing to fit


def test_overparameterized_convergence_verdicts_fail_on_a_shrinking_threshold() -> None:
    exp = get_experiment("overparameterized-convergence")
    cfg = exp.Config(ns=[4, 40], widths=[8, 16, 32], seeds=1)
    runs = []
    for n, m, ratio, r2, wc in [(4, 8, 0.5, 0.2, 0.1), (4, 16, 1e-9, 0.99, 0.1), (4, 32, 1e-9, 0.5, 0.2),
                                (40, 8, 1e-9, 0.99, 0.1), (40, 16, 1e-9, 0.99, 0.2), (40, 32, 1e-9, 0.99, 0.3)]:
        runs.append({"n": n, "width": m, "seed": 0, "status": "budget", "final_ratio": ratio, "r2": r2, "slope": -0.1,
                     "weight_change": wc, "curve": [1.0, ratio], "curve_every": 1})
    kernel = {str(n): {"predicted_slope": -0.1} for n in (4, 40)}
    v = exp.checks(cfg, {"runs": runs, "kernel": kernel})
    assert not _by_claim(v, "falls linearly").passed  # n = 4 at the widest: R² 0.5
    assert not _by_claim(v, "grows with n").passed  # m*(4) = inf (the widest is not linear), m*(40) = 8
    assert not _by_claim(v, "weight change falls").passed
