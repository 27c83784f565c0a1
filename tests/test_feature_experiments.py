"""Issue 21 part B experiments end to end at small configs: results JSON-able, figures render,
verdicts computed from the run."""

from __future__ import annotations

from conftest import run_experiment


def test_boosted_units_small():
    res, verdicts = run_experiment("boosted-units", groups=3, group_size=4, steps=20)
    assert len(res["curves"]["boosted"][0]) == 4 and res["removed_units"][-1] == 12
    assert len(verdicts) == 3 and all(isinstance(v.passed, bool) for v in verdicts)
