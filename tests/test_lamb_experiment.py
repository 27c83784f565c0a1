"""lamb experiment: scaling rules, the "keeps its accuracy" rule, end to end, claims that can pass and fail."""

from __future__ import annotations

import math

import pytest

from genlab.config import build_config
from genlab.experiments import get_experiment
from genlab.experiments.optimizers.lamb import kept_until, lr_at
from tests.conftest import run_experiment


def test_learning_rate_scaling_rules():
    assert lr_at("sgd", 0.1, 64, 16) == pytest.approx(0.4)
    assert lr_at("adam", 1e-3, 64, 16) == pytest.approx(4e-3)
    assert lr_at("lamb", 1e-2, 64, 16) == pytest.approx(2e-2)


def test_kept_until_stops_at_the_first_loss():
    assert kept_until({16: 0.5, 64: 0.49, 256: 0.3, 1024: 0.5}, 0.5, 0.02) == 64  # 1024 recovers: not counted
    assert kept_until({16: 0.4, 64: 0.5}, 0.5, 0.02) == 0


def _rows(acc: dict[str, list[float]]) -> dict:
    return {"rows": [{"optimizer": o, "base_lr": 0.1, "lr": 0.1, "batch": b, "acc": [a]}
                     for o, accs in acc.items() for b, a in zip((16, 64, 256), accs)]}


def test_claim_passes_and_fails_on_the_measurements():
    exp = get_experiment("lamb")
    cfg = build_config(exp.Config, "quick", {})
    win = {v.kind: v.passed for v in exp.checks(cfg, _rows({"sgd": [0.6, 0.5, 0.3], "adam": [0.6, 0.55, 0.3], "lamb": [0.6, 0.6, 0.59]}))}
    null = exp.checks(cfg, _rows({"sgd": [0.6, 0.6, 0.6], "adam": [0.6, 0.6, 0.6], "lamb": [0.6, 0.6, 0.6]}))
    assert win == {"precondition": True, "claim": True, "finding": True}
    claim = next(v for v in null if v.kind == "claim")
    assert not claim.passed and "null result" in claim.measured
    assert not next(v for v in null if v.kind == "precondition").passed


def test_lamb_runs_end_to_end():
    result, verdicts = run_experiment("lamb", n_train=200, width=8, batch_sizes=[16, 64], epochs=1,
                                      sgd_lrs=[0.1], adam_lrs=[1e-2], lamb_lrs=[5e-2])
    assert len(result["rows"]) == 6 and all(0 <= r["acc"][0] <= 1 for r in result["rows"])
    assert [v.kind for v in verdicts] == ["precondition", "claim", "finding"]


def test_bad_sweeps_are_refused():
    from genlab.errors import InputError

    Config = get_experiment("lamb").Config
    with pytest.raises(InputError, match="lamb_lrs"):
        build_config(Config, None, {"lamb_lrs": [0.0]})
    with pytest.raises(InputError, match="batch_sizes"):
        build_config(Config, None, {"batch_sizes": [64]})
    assert math.isclose(build_config(Config, None, {"batch_sizes": [64, 16]}).batch_sizes[0], 16)
