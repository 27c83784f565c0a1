"""genlab sweep: grid parsing, failure recording, SIGINT then resume without rerunning, sweep-report."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from genlab.errors import InputError
from genlab.experiments import get_experiment
from genlab.store import Store
from genlab.sweep.driver import plan_sweep, run_sweep, sweep_runs
from genlab.sweep.executors import InlineExecutor
from genlab.sweep.grid import parse_grid, sweep_id
from genlab.sweep.report import mean_interval, render_sweep_report
from test_cli_output import call

# stable-minima points of 8 data points, width 8, one step size: about 1-2 s (CLI) and 0.3 s (in process)
# (the CLI's flow_time was 600 so that points stayed in flight long enough to be interrupted; the
# SIGINT test no longer races the points, see sigint_then_resume)
TINY = ["n=8", "width=8", "step_sizes=[0.3]", "flow_time=150"]
TINY_SETS = {"n": 8, "width": 8, "step_sizes": [0.3], "flow_time": 150.0}


def _genlab(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from genlab.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,
    )


def test_parse_grid_and_id() -> None:
    g = parse_grid(["eta=0.1,0.5", "seed=0:3"])
    assert g == {"eta": [0.1, 0.5], "seed": [0, 1, 2]}
    assert sweep_id("x", "quick", g, {}) == sweep_id("x", "quick", parse_grid(["eta=0.1,0.5", "seed=0:3"]), {})
    assert sweep_id("x", "quick", g, {}) != sweep_id("x", "quick", g, {"n": 3})
    for bad in (["seed"], ["seed=3:1"], ["a=1", "a=2"], ["a=1,1"], []):
        with pytest.raises(InputError):
            parse_grid(bad)


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genlab.cli import main

    home = tmp_path / "h"
    for args in (
        ["sweep", "stable-minima", "--grid", "nope=1,2"],
        ["sweep", "stable-minima", "--grid", "width=0,1"],
        ["sweep", "stable-minima", "--grid", "seed=0:2", "--set", "seed=3"],
        ["sweep", "stable-minima", "--grid", "seed=0:2", "--workers", "0"],
        ["sweep", "no-such-experiment", "--grid", "seed=0:2"],
        ["sweep-report", "nothing"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--home", str(home)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("genlab: error:"), err
        assert not home.exists()


def test_failed_point_is_recorded_and_the_rest_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = get_experiment("stable-minima")
    original = type(exp).run

    def flaky(self, config, recorder):
        if config.seed == 1:
            raise RuntimeError("boom at seed 1")
        return original(self, config, recorder)

    monkeypatch.setattr(type(exp), "run", flaky)
    store = Store(tmp_path)
    plan = plan_sweep("stable-minima", None, ["seed=0:3"], TINY_SETS)
    stats = run_sweep(plan, store, InlineExecutor())
    assert (stats.done, stats.failed) == (2, 1)
    runs = store.runs(sweep=plan.sweep)
    by_seed = {r["seed"]: r for r in runs}
    assert by_seed[1]["status"] == "failed" and "boom at seed 1" in by_seed[1]["error"]
    assert by_seed[0]["status"] == by_seed[2]["status"] == "finished"
    assert store.checks(by_seed[0]["id"]) and store.artifacts(by_seed[0]["id"], "figure")
    assert all(r["config_hash"] == p.hash for r, p in zip(runs, plan.points))
    # rerun: only the failed point runs again
    monkeypatch.setattr(type(exp), "run", original)
    stats = run_sweep(plan, store, InlineExecutor())
    assert (stats.skipped, stats.done, stats.failed) == (2, 1, 0)
    assert len(store.runs(sweep=plan.sweep)) == 4
    assert len(sweep_runs(store, plan.sweep)) == 3


def test_sigint_then_resume_skips_finished_points(tmp_path: Path) -> None:
    sigint_then_resume(tmp_path, ["--workers", "2"])


HANG = 900  # s: a bound on a hung sweep only (the test waits on the store's rows, not on a clock)


def _statuses(home: Path) -> list[str]:
    """The run rows' statuses, by a plain read (a WAL reader never waits for the writer's lock)."""
    path = home / "genlab.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=30.0)
    try:
        return [r[0] for r in db.execute("SELECT status FROM runs")]
    finally:
        db.close()


def sigint_then_resume(tmp_path: Path, executor_args: list[str], resume_args: list[str] | None = None) -> None:
    """Start a 6-point sweep, SIGINT it (whole process group) once 2 points finished, run the same
    command again in this process (with ``resume_args`` in place of ``executor_args`` if given: the sweep id does
    not depend on the executor): only the unfinished points run; then the report shows means and
    intervals.

    The interruption is deterministic: each look at the store is taken with the sweep's process
    group stopped (SIGSTOP), and the SIGINT is sent before it continues, so the state seen (2–4 of 6
    points finished, both slots running a point) is the state interrupted, up to the one store write
    the driver may be in: the driver defers a signal that lands inside a store write to the end of
    that write, so no row is left ``running`` and at least one point in flight is marked
    ``interrupted``. (It used to wait on a 120 s clock and SIGINT whenever it saw 2 finished rows:
    under load the clock ran out first, or the look fell between the write of the 2nd result and
    the dispatch of the next point, with no point in flight.)"""
    home = tmp_path / "home"
    args = ["sweep", "stable-minima", "--grid", "seed=0:6", *executor_args, "--home", str(home)]
    for kv in TINY:
        args += ["--set", kv]
    p = _genlab(*args, start_new_session=True)
    group, t0 = p.pid, time.monotonic()
    while True:
        try:
            os.killpg(group, signal.SIGSTOP)
        except ProcessLookupError:  # the whole group is gone
            pass
        if p.poll() is not None:
            raise AssertionError(f"sweep ended before it could be interrupted: {p.communicate()[1]}")
        statuses = _statuses(home)
        n_finished, n_running = statuses.count("finished"), statuses.count("running")
        assert n_finished <= 4, f"{n_finished} of 6 points finished between two looks at the store"
        if n_finished >= 2 and n_running == 2:  # both slots busy: one stays in flight even if the other is being written
            os.killpg(group, signal.SIGINT)  # as Ctrl-C: the whole process group
            os.killpg(group, signal.SIGCONT)
            break
        os.killpg(group, signal.SIGCONT)
        assert time.monotonic() - t0 < HANG, "the sweep hung"
        time.sleep(0.05)
    _, err = p.communicate(timeout=HANG)
    assert p.returncode == 130, err
    assert "interrupted" in err and "(2 slots" in err
    with Store(home) as s:
        first = s.runs()
    assert not [r for r in first if r["status"] == "running"]
    done_first = {r["config_hash"]: r["id"] for r in first if r["status"] == "finished"}
    # what was seen is what was interrupted, up to the one store write in progress at the SIGSTOP
    assert 2 <= n_finished <= len(done_first) <= n_finished + 1 < 6
    assert [r for r in first if r["status"] == "interrupted"], "no point was in flight at SIGINT"

    if resume_args is not None:
        args = ["sweep", "stable-minima", "--grid", "seed=0:6", *resume_args, "--home", str(home)]
        for kv in TINY:
            args += ["--set", kv]
    code, out, err = call(*args)  # through the same main(), in this process (saves an interpreter's start)
    assert code == 0, err
    assert "6/6 points done" in out and ", 0 failed" in out
    assert f"{len(done_first)} points already finished" in err
    with Store(home) as s:
        second = s.runs()
        sweep = second[0]["sweep"]
        latest = sweep_runs(s, sweep)
    assert len(latest) == 6 and {r["seed"] for r in latest} == set(range(6))
    new = [r for r in second if r["id"] not in {q["id"] for q in first}]
    assert len(new) == 6 - len(done_first)  # only the unfinished points ran again
    assert not {r["config_hash"] for r in new} & set(done_first)
    with Store(home) as s:
        for r in latest:  # finished points kept their first run; every point's results are recorded
            if r["config_hash"] in done_first:
                assert r["id"] == done_first[r["config_hash"]]
            assert s.checks(r["id"]) and s.artifacts(r["id"], "figure") and s.final_metrics(r["id"])

    # the report: means and 95% intervals over the 6 seeds
    assert call("sweep-report", sweep, "--home", str(home), "--out", str(tmp_path / "r.html"))[0] == 0
    page = (tmp_path / "r.html").read_text()
    assert "95% interval" in page and "seeds passing" in page


class _FakeExecutor:
    """Two slots; point 0 comes back finished at the first wait, the others never do;
    ``on_submit(token)`` runs inside submit (after the point's row was written)."""

    slots = 2

    def __init__(self, on_submit=lambda token: None):
        self.on_submit, self.cancelled = on_submit, None

    def submit(self, name, config, token=None):
        self.on_submit(token)
        return token

    def wait(self, handles, timeout):
        done = {"status": "finished", "rows": [], "result": {}, "verdicts": [], "figures": {}, "files": {}}
        return [(h, done) for h in handles if h == 0]

    def close(self, cancel=False):
        self.cancelled = cancel


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_dispatching_leaves_no_running_row(tmp_path: Path, sig: signal.Signals) -> None:
    """A signal between a point's INSERT and its entry in the in-flight table (here: inside submit)
    takes effect after the entry: the point is marked interrupted, not left running."""
    store = Store(tmp_path)
    plan = plan_sweep("stable-minima", None, ["seed=0:3"], TINY_SETS)
    ex = _FakeExecutor(lambda token: os.kill(os.getpid(), sig) if token == 1 else None)
    # the process's own handlers (SIG_IGN for SIGINT when the suite runs as a background job)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt) as info:
        run_sweep(plan, store, ex)
    assert [r["status"] for r in store.runs(sweep=plan.sweep)] == ["interrupted", "interrupted"]
    assert info.value.args[0].interrupted == 2 and ex.cancelled is True
    assert {s: signal.getsignal(s) for s in before} == before  # handlers put back


def test_signal_while_writing_a_result_completes_the_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGINT inside the write of a finished point's result: the row is completed (finished,
    counted done), then the sweep stops and the point still in flight is marked interrupted."""
    store = Store(tmp_path)
    plan = plan_sweep("stable-minima", None, ["seed=0:3"], TINY_SETS)
    finish = store.finish_run

    def interrupted_finish(run_id, status, *a, **k):
        if status == "finished":
            os.kill(os.getpid(), signal.SIGINT)
        return finish(run_id, status, *a, **k)

    monkeypatch.setattr(store, "finish_run", interrupted_finish)
    with pytest.raises(KeyboardInterrupt) as info:
        run_sweep(plan, store, _FakeExecutor())
    assert [r["status"] for r in store.runs(sweep=plan.sweep)] == ["finished", "interrupted"]
    stats = info.value.args[0]
    assert (stats.done, stats.interrupted) == (1, 1)


def test_mean_interval_min_max_below_five_bootstrap_from_five() -> None:
    """Below 5 seeds: exactly min and max. From 5 on: a bootstrap of the mean, which for many
    normal values agrees with the normal-theory interval mean ± 1.96·s/√n within 10% of its
    half-width (bootstrap error at 2000 resamples is a few percent); never outside [min, max]."""
    assert mean_interval([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert math.isnan(mean_interval([1.0])[1])
    rng = np.random.default_rng(0)
    v = rng.normal(size=200).tolist()
    m, lo, hi = mean_interval(v)
    half = 1.96 * np.std(v, ddof=0) / math.sqrt(len(v))
    assert math.isclose(m, float(np.mean(v)), rel_tol=1e-12)
    assert abs((hi - lo) / 2 - half) < 0.1 * half and abs((lo + hi) / 2 - m) < 0.1 * half
    # a loss: small positive values with one outlier; the Student-t interval goes below zero here
    loss = [1e-6] * 5 + [0.006]
    t_lo = np.mean(loss) - st.t.ppf(0.975, 5) * np.std(loss, ddof=1) / math.sqrt(6)
    assert t_lo < 0
    _, lo, hi = mean_interval(loss)
    assert min(loss) <= lo <= hi <= max(loss)


def test_sweep_report_content(tmp_path: Path) -> None:
    """Report values equal the mean over seeds of each point's final metric; strings escaped."""
    store = Store(tmp_path)
    plan = plan_sweep("stable-minima", None, ["noise=0.0,0.2", "seed=0:2"], TINY_SETS)
    run_sweep(plan, store, InlineExecutor())
    runs = sweep_runs(store, plan.sweep)
    metric = "eta=0.3/loss"
    for noise in (0.0, 0.2):
        vals = [store.final_metrics(r["id"])[metric] for r in runs if r["config"]["noise"] == noise]
        assert len(vals) == 2
        m, lo, hi = mean_interval(vals)
        assert (lo, hi) == (min(vals), max(vals))  # two seeds: the min–max interval
        page = render_sweep_report(store, plan.sweep)
        assert f"<td>{m:.4g}<br><span class=iv>[{lo:.4g}, {hi:.4g}] min–max</span></td>" in page
    # verdict shares: count passes per noise level from the store
    claim = store.checks(runs[0]["id"])[0].claim
    for noise in (0.0, 0.2):
        got = [v.passed for r in runs if r["config"]["noise"] == noise for v in store.checks(r["id"]) if v.claim == claim]
        import html as h
        row = page[page.index(f"<tr><td>{noise}</td><td>2</td>"):]
        row = row[:row.index("</tr>")]
        assert row.split("</td>")[3].endswith(f">{sum(got)}/{len(got)}")  # cell values, seeds, runs, claim 1
        assert f"title='{h.escape(claim, quote=True)}'>claim 1</th>" in page
    assert "<script" not in page and "data:image/png;base64," in page


def test_executor_ray_without_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from genlab.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "stable-minima", "--grid", "seed=0:2", "--executor", "ray", "--home", str(tmp_path / "h")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "pip install 'genlab[ray]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "h").exists()
