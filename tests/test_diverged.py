"""Diverged is diverged: every experiment run with a setting that makes every member diverge
is recorded ``diverged`` (not ``failed``), with its verdicts and a figure of what was measured.

Iterates over the registry: an experiment with no entry below is run with its step-size field
(``lr``, ``eta``, ``step_sizes``…) set huge and must not fail. Settings are small (quick preset);
the slower experiments are marked slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from genlab.config import build_config
from genlab.experiments import registry
from genlab.runner import execute
from genlab.store import Store

# experiment -> (overrides that make every member diverge, slow?)
DIVERGING: dict[str, tuple[dict, bool]] = {
    "stable-minima": ({"step_sizes": [50.0]}, False),
    "edge-of-stability": ({"step_sizes": [50.0], "steps": 50}, True),
    "hessian-outliers": ({"lr": 1e4}, False),
    "deep-linear": ({"lr": 3.0}, False),
    "heavy-tail": ({"lr": 1e6}, True),
    "ultra-slow-diffusion": ({"lr": 1e6}, False),
    "coherence": ({"lr": 1e6}, True),
    "gfs-sharpness": ({"ratio": 0.01}, True),
    "stable-minima-rate": ({"eta": 50.0}, False),
}
# experiments whose config cannot make every member diverge, and why
CANNOT_DIVERGE = {
    "double-descent": "closed forms and least squares: no training loop",
    "forgetting": "projections onto task solution sets: no step size",
    "max-margin": "step_factor < 2 keeps GD on the smooth logistic loss stable (config bound)",
    "lazy-rich": "eta_rel < 2 is relative to the measured curvature (config bound)",
    "ntk-limit": "eta_rel < 2 is relative to the measured curvature (config bound)",
    "kernel-rich": "eta_rel ≤ 1 relative to the curvature bound; only step_sweep members can diverge",
    "connectivity-rank": "eta_rel < 2 is relative to the measured curvature (config bound)",
    "deep-ntk-classifiers": "kernel recursions and least squares: no training loop",
    "overparameterized-convergence": "eta_rel < 2 relative to the infinite-width curvature (config bound); a narrow member that diverges is recorded",
    "stragglers": "simulated and timed compute latencies: no training to diverge",
    "lamb": "a diverging member of the lr sweep counts as chance accuracy, the sweep's best is reported",
}
STEP_FIELDS = ("lr", "eta", "step_size", "step_sizes", "learning_rate", "mod_lr")


def _cases() -> list:
    out = []
    for name in registry():
        if name in CANNOT_DIVERGE:
            continue
        overrides, slow = DIVERGING.get(name, (None, True))
        marks = [pytest.mark.slow] if slow else []
        out.append(pytest.param(name, overrides, id=name, marks=marks))
    return out


@pytest.mark.parametrize("name,overrides", _cases())
def test_diverging_setting_is_recorded_diverged(name: str, overrides: dict | None, tmp_path: Path) -> None:
    exp = registry()[name]
    expect_diverged = overrides is not None
    if overrides is None:  # an experiment added later: its step-size field set huge
        fields = [f for f in STEP_FIELDS if f in exp.Config.model_fields]
        if not fields:
            pytest.skip(f"{name}: no step-size field; add it to DIVERGING or CANNOT_DIVERGE")
        default = exp.Config.model_fields[fields[0]].get_default(call_default_factory=True)
        overrides = {fields[0]: [1e6] if isinstance(default, list) else 1e6}
    config = build_config(exp.Config, "quick", overrides)
    store = Store(tmp_path)
    outcome = execute(name, config, store, preset="quick")
    assert outcome.status != "failed", outcome.error
    run = store.get_run(outcome.run_id)
    assert run["status"] == outcome.status
    if expect_diverged:
        assert outcome.status == "diverged"
        assert outcome.verdicts and store.checks(outcome.run_id)  # what was measured is recorded
        assert store.artifacts(outcome.run_id, "figure")
