"""The command line end to end: a real run (quick preset, smaller problem), show --json, report, SIGKILL, and bad input
(in-process through main(), and two cases through the interpreter)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from test_cli_output import call

# The quick preset on a smaller problem (12 points, width 16, flow time 1000; still 7 step sizes and
# a run in the precondition's regime): what a CLI run records does not depend on the problem's
# size, and the preset itself costs ~45 s of CPU (it runs in the quick atlas, `make run`).
SMALL = ["--set", "n=12", "--set", "width=16", "--set", "flow_time=1000"]


@pytest.fixture(scope="module")
def quick_home(tmp_path_factory) -> Path:
    """The run in-process through main() (the interpreter's own runs: the SIGKILL and SIGTERM tests
    below; show/runs below read it through the interpreter)."""
    home = tmp_path_factory.mktemp("quick") / "home"
    code, _, err = call("run", "stable-minima", "--quick", *SMALL, "--home", str(home))
    assert code == 0, err
    return home


def test_quick_run_records_steps_checks_and_figures(quick_home):
    r = run_cli("show", "1", "--json", home=quick_home)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["status"] == "finished" and run["experiment"] == "stable-minima"
    assert len(run["config"]["step_sizes"]) >= 4
    claims = {v["claim"][:3]: v for v in run["verdicts"]}
    assert {"(a)", "(b)", "(c)"} <= set(claims)
    for v in run["verdicts"]:  # every verdict carries what was measured
        assert v["measured"] and isinstance(v["passed"], bool)
    etas = {k.split("/")[0] for k in run["final_metrics"] if k.startswith("eta=")}
    assert len(etas) >= 4
    assert any(k.endswith("/sharpness") for k in run["final_metrics"])
    kinds = {a["kind"] for a in run["artifacts"]}
    assert {"figure", "result"} <= kinds
    result = json.loads(Path([a["path"] for a in run["artifacts"] if a["kind"] == "result"][0]).read_text())
    assert len(result["runs"]) == len(run["config"]["step_sizes"])


def test_runs_and_report(quick_home, tmp_path):
    r = run_cli("runs", "--json", home=quick_home)
    assert r.returncode == 0
    assert [x["status"] for x in json.loads(r.stdout)] == ["finished"]
    out = tmp_path / "rep.html"
    code, _, err = call("report", "--out", str(out), "--home", str(quick_home))  # in-process: no second start
    assert code == 0, err
    text = out.read_text()
    assert text.count("data:image/png;base64,") >= 2 and "stable-minima" in text
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched


def test_html_escapes_run_strings(tmp_path):
    from genlab.report.html import render_report
    from genlab.store import Store, Verdict

    s = Store(tmp_path)
    rid = s.create_run("<script>alert(1)</script>", {"k": "<b>"}, "h", 0)
    s.add_checks(rid, [Verdict("<img src=x onerror=alert(1)>", "p", "m&", "t", True)])
    s.finish_run(rid, "failed", error="<script>x</script>")
    text = render_report(s, [rid])
    assert "<script>" not in text and "<img src=x" not in text
    assert "&lt;script&gt;" in text


def test_sigkill_leaves_a_readable_store_with_an_interrupted_run(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "genlab.cli", "run", "stable-minima", "--quick", "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    db = home / "genlab.sqlite"
    deadline = time.time() + 60
    # wait until the run is recorded and some metrics are committed, then kill without warning
    while time.time() < deadline:
        if db.exists():
            try:
                con = sqlite3.connect(db)
                n = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
                con.close()
                if n > 0:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = run_cli("runs", "--json", home=home)
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)
    assert [x["status"] for x in runs] == ["interrupted"]
    r = run_cli("show", str(runs[0]["id"]), "--json", home=home)
    assert r.returncode == 0 and json.loads(r.stdout)["final_metrics"]


def test_sigterm_marks_the_run_interrupted(tmp_path):
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "genlab.cli", "run", "stable-minima", "--quick", "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (home / "runs").exists() and not (home / "genlab.sqlite").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    con = sqlite3.connect(home / "genlab.sqlite")
    assert con.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]


BAD_INPUTS = [
    (["run", "no-such-experiment"], "experiment 'no-such-experiment' unknown; allowed: "),
    (["run", "stable-minima", "--set", "bogus=1"], "unknown key 'bogus'"),
    (["run", "stable-minima", "--set", "n=abc"], "field 'n'"),
    (["run", "stable-minima", "--set", "step_sizes=-0.1"], "field 'step_sizes'"),
    (["run", "stable-minima", "--set", "step_sizes=0"], "field 'step_sizes'"),
    (["run", "stable-minima", "--set", "width=0"], "field 'width'"),
    (["run", "stable-minima", "--set", "n=1"], "field 'n'"),
    (["run", "stable-minima", "--set", "noisy"], "--set: expected key=value"),
    (["run", "stable-minima", "--seed", "-1"], "field 'seed'"),
    (["run", "stable-minima", "--seed", "x"], "'x' is not a valid integer"),
    (["run", "stable-minima", "--quick", "--config", "/nonexistent.yaml"], "--config: cannot read"),
    (["nosuchcommand"], "No such command"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_nothing_written(args, message, home):
    """In-process, through the entry point's own main() (test_bad_input_through_the_entry_point
    starts the interpreter for an error of genlab's and one of click's: ~5 s per `run` case here)."""
    code, _, err = call(*args, "--home", str(home))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not home.exists()


# through the interpreter: one error of genlab's (InputError) and one of click's, both caught before
# torch is imported (a `run` error costs ~5 s of start-up more; in-process above)
ENTRY_POINT_INPUTS = [(["sweep-report", "nothing"], "--home: no genlab store"), BAD_INPUTS[-1]]


@pytest.mark.parametrize("args,message", ENTRY_POINT_INPUTS)
def test_bad_input_through_the_entry_point(args, message, home):
    r = run_cli(*args, home=home)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not home.exists()


def test_unreadable_yaml(tmp_path, home):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n: [1, 2\nwidth: : 3\n")
    code, _, err = call("run", "stable-minima", "--config", str(bad), "--home", str(home))
    assert code == 2 and "is not valid YAML" in err and len(err.strip().splitlines()) == 1
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    code, _, err = call("run", "stable-minima", "--config", str(notmap), "--home", str(home))
    assert code == 2 and "must hold a mapping" in err
    assert not home.exists()


def test_yaml_config_is_used(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("n: 12\nwidth: 16\nstep_sizes: [0.2, 0.5, 0.9]\nflow_time: 200\n")
    home = tmp_path / "h"
    code, _, err = call("run", "stable-minima", "--config", str(cfg), "--seed", "2", "--home", str(home))
    assert code == 0, err
    code, out, err = call("show", "1", "--json", "--home", str(home))
    run = json.loads(out)
    assert run["config"]["n"] == 12 and run["config"]["width"] == 16 and run["seed"] == 2


def test_show_unknown_run(quick_home):
    r = run_cli("show", "999", home=quick_home)
    assert r.returncode == 2 and "no run with id 999" in r.stderr


def test_list():
    code, out, _ = call("list")
    assert code == 0 and "stable-minima" in out and "Stability and" in out
