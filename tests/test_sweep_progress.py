"""Progress inside a sweep point: a point's own progress bar reaches the driver (inline and through
the local executor's worker processes), with its unit, and the CLI shows it beside the points' bar."""

from __future__ import annotations

import math
from pathlib import Path

from genlab.store import Store
from genlab.sweep import worker
from genlab.sweep.commands import point_progress_text
from genlab.sweep.driver import plan_sweep, run_sweep
from genlab.sweep.executors import InlineExecutor, LocalExecutor

SETS = {"singular_values": [2.0, 1.0], "d_in": 2, "d_hidden": 2, "d_out": 2, "n": 4, "horizon": 1.0}


def test_point_bar_sends_its_counts_with_the_unit(monkeypatch):
    got = []
    monkeypatch.setattr(worker, "PROGRESS_EVERY", 0.0)  # every advance is sent
    with worker.progress_factory(got.append, 7)("exp", 3, unit="runs") as bar:
        for _ in range(3):
            bar.advance()
    assert got == [(7, "exp", c, 3, "runs") for c in (0, 1, 2, 3, 3)]  # opening, each advance, closing
    got.clear()
    monkeypatch.setattr(worker, "PROGRESS_EVERY", math.inf)  # throttled: only opening and closing
    with worker.progress_factory(got.append, 7)("exp", 100) as bar:
        bar.advance(100)
    assert got == [(7, "exp", 0, 100, "steps"), (7, "exp", 100, 100, "steps")]


def test_a_failing_sink_never_fails_the_point():
    def broken(msg):
        raise OSError("queue closed")

    with worker.progress_factory(broken, 0)("exp", 2) as bar:
        bar.advance(2)


def test_inline_sweep_emits_each_points_progress(tmp_path: Path):
    plan = plan_sweep("deep-linear", None, ["lr=0.02,0.04"], SETS)
    events = []
    run_sweep(plan, Store(tmp_path), InlineExecutor(), lambda kind, point, stats, out: events.append((kind, point, out)))
    progress = [(p.index, out) for kind, p, out in events if kind == "progress"]
    assert sorted(i for i, _ in progress) == [0, 1]
    for _, out in progress:  # the latest message of a finished point: complete, with the unit
        assert out["description"] == "deep-linear" and out["unit"] == "steps"
        assert out["completed"] == out["total"] > 0


def test_local_executor_workers_send_progress(tmp_path: Path):
    plan = plan_sweep("deep-linear", None, ["lr=0.04"], SETS)
    ex = LocalExecutor(1)
    try:
        handle = ex.submit("deep-linear", plan.points[0].config, token=5)
        out = handle.get(timeout=600)
        assert out["status"] == "finished"
        msgs = ex.progress()
        for _ in range(50):  # the queue's feeder thread may deliver the last message after the result
            if msgs and msgs[-1][2] == msgs[-1][3]:
                break
            import time

            time.sleep(0.1)
            msgs += ex.progress()
    finally:
        ex.close()
    assert msgs and all(m[0] == 5 and m[1] == "deep-linear" and m[4] == "steps" for m in msgs)
    assert msgs[0][2] == 0 and msgs[-1][2] == msgs[-1][3] > 0


def test_point_progress_text():
    running = {i: {"completed": 10 * i, "total": 40, "unit": "steps"} for i in range(5)}
    assert point_progress_text({}) == ""
    assert point_progress_text({3: running[3]}) == "point 3: 30/40 steps (75%)"
    text = point_progress_text(running, limit=2)
    assert text == "point 0: 0/40 steps (0%) · point 1: 10/40 steps (25%) · +3 more"
    assert point_progress_text({0: {"completed": 1, "total": 0, "unit": "runs"}}) == "point 0: 1/0 runs"
