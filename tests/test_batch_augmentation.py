"""batch-augmentation: the Gram-based variance of the batch-augmented gradient against explicit
per-example gradients, the experiment end to end, and claims that fail when they should."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.config import build_config
from genlab.experiments import get_experiment
from genlab.experiments.optimizers.batch_augmentation import ba_gradient_variance, updates_to_target
from tests.conftest import run_experiment


def test_ba_variance_from_gram_matches_explicit_gradients():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    n, mmax = 6, 3
    x = torch.randn(mmax * n, 5, dtype=torch.float64)  # copy-major: row k·n + i is copy k of example i
    y = torch.randint(0, 3, (n,)).repeat(mmax)
    grads = []
    for j in range(mmax * n):  # a python loop over examples: the independent reference
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[j : j + 1]), y[j : j + 1]).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone())
    g = torch.stack(grads).numpy()
    gram = g @ g.T
    for m in (1, 2, 3):
        h = g.reshape(mmax, n, -1)[:m].mean(axis=0)  # h_i: mean over copies 0..m-1
        explicit = float(np.mean(np.sum((h - h.mean(0)) ** 2, axis=1)))  # E‖h − E h‖²
        assert ba_gradient_variance(gram, n, m, mmax) == pytest.approx(explicit, rel=1e-10)


def test_updates_to_target():
    assert updates_to_target([10, 20, 30], [0.1, 0.5, 0.6], 0.5) == 20
    assert math.isinf(updates_to_target([10, 20], [0.1, 0.2], 0.5))


def test_batch_augmentation_runs_and_checks():
    result, verdicts = run_experiment("batch-augmentation", n_train=300, width=16, copies=[1, 2], epochs=2, eval_every=5,
                                      var_examples=16)
    assert set(result["variance"]) == {"1", "2"}
    assert [v.kind for v in verdicts] == ["precondition", "claim", "claim", "claim", "finding"]


def _fake(var2: float, acc2: list[float]) -> dict:
    steps = [10, 20, 30]
    return {"runs": {"1": [{"steps": steps, "acc": [0.2, 0.4, 0.5], "final": 0.5}],
                     "2": [{"steps": steps, "acc": acc2, "final": acc2[-1]}]},
            "variance": {"1": 1.0, "2": var2}}


def test_claims_can_fail():
    exp = get_experiment("batch-augmentation")
    cfg = build_config(exp.Config, "quick", {"copies": [1, 2]})
    good = {v.claim[:4]: v.passed for v in exp.checks(cfg, _fake(0.7, [0.3, 0.5, 0.52]))}
    bad = {v.claim[:4]: v.passed for v in exp.checks(cfg, _fake(1.0, [0.1, 0.2, 0.45]))}
    assert good["(i) "] and good["(ii)"] and good["(iii"]
    assert not bad["(i) "] and not bad["(ii)"] and not bad["(iii"]


def test_copies_must_include_the_baseline():
    from genlab.errors import InputError

    with pytest.raises(InputError, match="copies"):
        build_config(get_experiment("batch-augmentation").Config, None, {"copies": [2, 4]})
