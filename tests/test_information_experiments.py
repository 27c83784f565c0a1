"""The information experiments end to end on tiny configs: they run, results are JSON-able, every
verdict is computed (kinds as declared), figures render; and the shared task is the one described."""

import json

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from genlab.experiments import get_experiment, themes
from genlab.experiments.information._szt import compression, icosahedron, szt_net, szt_task
from genlab.recorder import MemoryRecorder


from conftest import run_experiment as run  # noqa: E402


def test_szt_task_and_network():
    x, y = szt_task()
    assert x.shape == (4096, 12) and len(np.unique(x, axis=0)) == 4096
    assert abs(y.mean() - 0.5) < 0.05
    v = icosahedron()  # 12 unit vertices, each with 5 nearest neighbours at the same distance
    d = np.linalg.norm(v[:, None] - v[None], axis=-1)
    assert np.allclose(np.linalg.norm(v, axis=1), 1) and all(np.sum(np.isclose(row, np.sort(row)[1])) == 5 for row in d)
    net = szt_net("tanh", 0)
    assert [m.out_features for m in net if hasattr(m, "out_features")] == [10, 7, 5, 4, 3, 2]


def test_compression_measure():
    ixt = np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 4.5], [1.5, 4.5]])
    c, k = compression(ixt, np.array([0.5, 0.96, 0.99, 1.0]), 0.95, 0.5)
    assert k == 1 and np.allclose(c, [3.0 - 1.75, 4.0 - 4.5])
    c, k = compression(ixt, np.array([0.5, 0.6, 0.7, 0.8]), 0.95, 0.5)
    assert k == -1 and np.all(np.isnan(c))


def test_information_plane_runs():
    result, verdicts = run("information-plane", steps=60, records=4, n_train=500, bins=10, fit_accuracy=0.6)
    assert {v.kind for v in verdicts} <= {"claim", "precondition", "finding"}
    assert sum(v.kind == "precondition" for v in verdicts) == 2
    assert len(result["tanh"]["ixt"]) == 4 and len(result["tanh"]["ixt"][0]) == 5
    # I(X;T) of the first tanh layer (10 units, 10 bins) can never exceed log2(4096) = 12 bits
    assert max(max(r) for r in result["tanh"]["ixt"]) <= 12 + 1e-9


def test_adaptive_mi_runs():
    result, verdicts = run("adaptive-mi", steps=40, records=4, n_train=300, weight_decays=[0.0, 1e-3], fit_accuracy=0.55, min_runs=3)
    assert len(result["runs"]) == 4
    kinds = [v.kind for v in verdicts]
    assert kinds[0] == "precondition" and "claim" in kinds


def test_guided_training_runs():
    result, verdicts = run("guided-training", n_train=100, n_test=100, widths=[16, 16], channels=2, steps=20, batch_size=20)
    assert {c: len(result[c]) for c in ("plain", "trained guide", "untrained guide")} == {c: 1 for c in ("plain", "trained guide", "untrained guide")}
    assert sum(v.kind == "claim" for v in verdicts) == 4


def test_spearman_interval_matches_scipy_on_each_resample():
    from scipy.stats import spearmanr

    from genlab.experiments.information._stats import spearman_interval

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(12), rng.standard_normal(12)
    b[:3] = b[0]  # ties
    rho, lo, hi = spearman_interval(a, b, 0.9, seed=1, reps=300)
    assert rho == spearmanr(a, b).statistic
    idx = np.random.default_rng(1).integers(0, 12, (300, 12))  # the same resamples, by scipy one at a time
    boots = [spearmanr(a[i], b[i]).statistic for i in idx]
    boots = [v for v in boots if np.isfinite(v)]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(boots, [0.05, 0.95])), abs=1e-12)


def test_mi_trajectories_equal_binned_mi():
    from genlab.experiments.information._szt import mi_trajectories
    from genlab.probes.mutual_information import binned_mi

    x, y = szt_task()
    rng = np.random.default_rng(0)
    acts = [[np.tanh(x @ rng.standard_normal((12, w))).astype(np.float32) for w in (4, 3)] for _ in range(2)]
    for strategy, fr in (("fixed", "tanh"), ("fixed", "span"), ("adaptive", "span")):
        ixt, ity = mi_trajectories({"acts": acts}, strategy=strategy, bins=7, fixed_range=fr)
        for r in range(2):
            for l, t in enumerate(acts[r]):
                rg = (-1.0, 1.0) if fr == "tanh" else (min(float(a[l].min()) for a in acts), max(float(a[l].max()) for a in acts))
                rg = rg if strategy == "fixed" else None
                kw = dict(bins=7, strategy=strategy, population=True)
                assert ixt[r, l] == pytest.approx(binned_mi(x, t, a_discrete=True, b_range=rg, **kw).value, abs=1e-12)
                assert ity[r, l] == pytest.approx(binned_mi(t, y, b_discrete=True, a_range=rg, **kw).value, abs=1e-12)


def test_ib_gap_information_term_is_scale_invariant_and_runs():
    from genlab.experiments.information.information_bottleneck_gap import conditional_information

    rng = np.random.default_rng(0)
    t, y = rng.standard_normal((60, 5)), rng.integers(0, 3, 60)
    a = conditional_information(t, y, 0.1)
    assert conditional_information(7.5 * t, y, 0.1) == pytest.approx(a, abs=1e-9)
    assert a[0] == pytest.approx(a[1] - a[2])
    result, verdicts = run("information-bottleneck-gap", n_train=100, n_test=100, n_info=50, widths=[8], depth=1,
                           weight_decays=[0.0, 1e-3], label_noise=[0.0, 0.5], steps=30, batch_size=20)
    assert len(result["runs"]) == 4 and verdicts[0].kind == "precondition"
