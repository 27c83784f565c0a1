"""The stable-minima experiment in-process on a tiny config: divergence is a recorded result,
and the checks are computed from the measurements they report."""

import math

from genlab.config import build_config
from genlab.experiments import get_experiment
from genlab.recorder import MemoryRecorder


def test_divergence_is_recorded_and_checks_follow_measurements():
    exp = get_experiment("stable-minima")
    cfg = build_config(exp.Config, None, {"n": 10, "width": 12, "step_sizes": [0.05, 0.3, 60.0], "flow_time": 1e6, "max_steps": 2000})
    rec = MemoryRecorder()
    result = exp.run(cfg, rec)
    by_eta = {r["eta"]: r for r in result["runs"]}
    assert by_eta[60.0]["status"] == "diverged" and by_eta[60.0]["steps"] < 2000
    assert rec.series("eta=60/diverged_at")[1] == [by_eta[60.0]["steps"]]
    verdicts = exp.checks(cfg, result)
    text = " ".join(v.measured for v in verdicts)
    assert "diverged: η=60 at step" in text
    # (b) is recomputed here from the stored numbers: weighted TV vs the Thm 3.2 bound
    alive = [r for r in result["runs"] if r["status"] != "diverged"]
    for r in alive:
        bound = 0.5 * r["sharpness"] - 0.5 + (result["radius"] + 1) * math.sqrt(2 * r["loss"])
        assert math.isclose(r["bound"], bound, rel_tol=1e-12)
    b = [v for v in verdicts if v.claim.startswith("(b)")][0]
    assert b.passed == all(r["weighted_tv"] <= r["bound_stable"] + 1e-9 for r in alive)
    # only two runs survive: (c) cannot be judged and says so (a failed verdict, not a hidden one)
    c = [v for v in verdicts if v.claim.startswith("(c)")][0]
    assert not c.passed and "2 non-diverged runs" in c.measured
    figs = exp.figures(cfg, result)
    assert set(figs) == {"fits.png", "bound.png"}
