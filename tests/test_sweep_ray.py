"""The Ray executor passes the sweep's SIGINT-then-resume test against a local Ray instance (2 CPUs),
resumed on the local executor.

Ray listens on all network interfaces: run this file only in a network namespace, e.g.
``unshare -n sh -c 'ip link set lo up; python -m pytest tests/test_sweep_ray.py'``.
Skipped when Ray is not installed (``pip install 'genlab[ray]'``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray")

from test_sweep import TINY_SETS, sigint_then_resume  # noqa: E402

from genlab.store import Store  # noqa: E402
from genlab.sweep.driver import plan_sweep, run_sweep, sweep_runs  # noqa: E402
from genlab.sweep.executors import RayExecutor  # noqa: E402


def test_ray_sweep_sigint_then_resume(tmp_path: Path) -> None:
    """SIGINT of a sweep on Ray; the resume runs on the local executor (a second Ray instance
    cost ~40 s here): resuming is the driver's, the same for both executors, and Ray running points
    to the end is test_ray_executor_runs_points_and_records_results."""
    sigint_then_resume(tmp_path, ["--executor", "ray", "--workers", "2"], resume_args=["--workers", "2"])


def test_ray_executor_runs_points_and_records_results(tmp_path: Path) -> None:
    store = Store(tmp_path)
    plan = plan_sweep("stable-minima", None, ["seed=0:3"], TINY_SETS)
    ex = RayExecutor(workers=2)
    assert ex.slots == 2
    stats = run_sweep(plan, store, ex)
    assert (stats.done, stats.failed) == (3, 0)
    runs = sweep_runs(store, plan.sweep)
    assert sorted(r["seed"] for r in runs) == [0, 1, 2]
    for r in runs:
        assert store.checks(r["id"]) and store.artifacts(r["id"], "figure") and store.final_metrics(r["id"])
