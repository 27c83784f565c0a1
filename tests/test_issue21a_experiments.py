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
