"""The run store: round trips, atomic writes, and interrupted runs of dead processes."""

import multiprocessing as mp
import os
import sqlite3

import pytest

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


def test_verdict_kinds_round_trip_and_count(tmp_path):
    """Claims are counted; a failed precondition makes the run's claims 'not tested';
    findings are never counted; a store written before kinds existed reads as claims."""
    import sqlite3

    from genlab.store import Store, Verdict, claim_outcome, count_claims

    store = Store(tmp_path / "h")
    rid = store.create_run("x", {"seed": 0}, "h", 0)
    vs = [
        Verdict("c1", "p", "m", "t", True),
        Verdict("c2", "p", "m", "t", False),
        Verdict("regime", "p", "m", "t", True, kind="precondition"),
        Verdict("number", "p", "m", "t", True, kind="finding"),
    ]
    store.add_checks(rid, vs)
    back = store.checks(rid)
    assert [v.kind for v in back] == ["claim", "claim", "precondition", "finding"]
    c = count_claims(back)
    assert (c.passed, c.failed, c.not_tested) == (1, 1, 0)
    assert c.summary() == "1 of 2 claims pass"
    broken = back[:2] + [Verdict("regime", "p", "m", "t", False, kind="precondition")]
    c = count_claims(broken)
    assert (c.passed, c.failed, c.not_tested) == (0, 0, 2)
    assert claim_outcome(broken[0], broken) == "not tested" and claim_outcome(broken[2], broken) == "NOT MET"
    assert "not tested" in c.summary()
    with pytest.raises(ValueError, match="kind"):
        Verdict("c", "p", "m", "t", True, kind="opinion")
    store.close()
    # an old store without the kind column
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "genlab.sqlite")
    db.executescript(
        "CREATE TABLE checks (run INTEGER NOT NULL, claim TEXT NOT NULL, predicted TEXT NOT NULL,"
        " measured TEXT NOT NULL, tolerance TEXT NOT NULL, passed INTEGER NOT NULL, paper TEXT);"
        "INSERT INTO checks VALUES (1, 'old', 'p', 'm', 't', 1, '');"
    )
    db.commit()
    db.close()
    with Store(old) as s2:
        assert [v.kind for v in s2.checks(1)] == ["claim"]
