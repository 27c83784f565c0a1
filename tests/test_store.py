"""The run store: round trips, atomic writes, and interrupted runs of dead processes."""

import multiprocessing as mp
import os
import sqlite3

from genlab.store import Store, Verdict


def test_round_trip(tmp_path):
    with Store(tmp_path) as s:
        rid = s.create_run("exp", {"a": 1}, "hash", 3, preset="quick")
        s.log_metrics(rid, [(0, "loss", 1.0), (1, "loss", 0.5), (1, "nan", float("nan"))])
        s.add_checks(rid, [Verdict("c", "p", "m", "t", True, "paper"), Verdict("d", "p", "m", "t", False)])
        s.finish_run(rid, "finished")
        run = s.get_run(rid)
        assert run["status"] == "finished" and run["config"] == {"a": 1} and run["seed"] == 3
        assert s.final_metrics(rid)["loss"] == 0.5
        assert [v.passed for v in s.checks(rid)] == [True, False]


def _start_and_die(home):
    s = Store(home)
    s.create_run("exp", {}, "h", 0)
    os._exit(0)  # no cleanup: like a killed process


def test_run_of_dead_process_is_interrupted(tmp_path):
    p = mp.get_context("spawn").Process(target=_start_and_die, args=(str(tmp_path),))
    p.start()
    p.join()
    with Store(tmp_path) as s:
        runs = s.runs()
        assert [r["status"] for r in runs] == ["interrupted"]
    # a live running run (this process) is not touched
    with Store(tmp_path) as s:
        rid = s.create_run("exp", {}, "h", 0)
        assert s.get_run(rid)["status"] == "running"


def test_failed_transaction_leaves_nothing(tmp_path):
    s = Store(tmp_path)
    rid = s.create_run("exp", {}, "h", 0)
    try:
        with s.transaction() as db:
            db.execute("INSERT INTO metrics (run, step, name, value) VALUES (?,?,?,?)", (rid, 0, "x", 1.0))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert s.metrics(rid) == []
    # readable by a plain sqlite3 connection too
    assert sqlite3.connect(s.path).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
