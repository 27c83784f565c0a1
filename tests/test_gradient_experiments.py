"""The four per-example-gradient experiments: fits used by their checks, and tiny end-to-end runs
(registered, run, checks computed from the result, figures drawn)."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.experiments import get_experiment
from genlab.experiments.noise_and_data.ultra_slow_diffusion import fit_log_and_power
from genlab.recorder import MemoryRecorder


def test_fit_prefers_the_true_law() -> None:
    t = np.geomspace(10, 10_000, 40)
    log_curve = 2.0 + 3.0 * np.log(t)
    f = fit_log_and_power(t, log_curve)
    assert f["log_b"] == pytest.approx(3.0, rel=1e-10) and f["log_r2"] == pytest.approx(1.0)
    assert f["log_r2"] > f["pow_r2"]
    power_curve = 0.5 * t**0.6
    f = fit_log_and_power(t, power_curve)
    assert f["pow_c"] == pytest.approx(0.6, rel=1e-6) and f["pow_r2"] > f["log_r2"]


TINY = {
    "coherence": {"n_train": 200, "n_test": 100, "widths": [16], "steps": 40, "measure_every": 10, "m": 50},
    "data-diet": {
        "n_train": 200,
        "n_test": 100,
        "widths": [16],
        "score_seeds": 2,
        "score_steps": 10,
        "train_steps": 20,
        "keep_fractions": [0.5],
    },
    "heavy-tail": {"n_train": 200, "widths": [8, 16, 32], "steps": 20, "measure_every": 10},
    "ultra-slow-diffusion": {"n_train": 200, "widths": [16], "steps": 200, "points": 15, "fit_from": 5},
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_run(name: str) -> None:
    exp = get_experiment(name)
    config = exp.Config(**TINY[name])
    result = exp.run(config, MemoryRecorder())
    verdicts = exp.checks(config, result)
    assert verdicts and all(isinstance(v.passed, bool) for v in verdicts)
    figs = exp.figures(config, result)
    assert figs
    import matplotlib.pyplot as plt

    for f in figs.values():
        plt.close(f)
    for preset in ("quick", "full"):
        exp.Config(**exp.Config.presets()[preset])
