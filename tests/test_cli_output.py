"""What the CLI prints: stored strings verbatim (escaped for Rich), help, presets, run summary,
config listing, did-you-mean, runs by sweep, sweep names, progress units, default report.

The CLI runs in-process (``genlab.cli.main``) with its consoles swapped for wide recording
ones, so one real quick run (deep-linear, a few seconds) serves the whole module."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

import genlab.cli as cli
from genlab.errors import InputError
from genlab.store import Store, Verdict

_BOX = re.compile(r"[\s│┃┏┓┗┛━─┡┩╇┳┻╋└┘┌┐├┤┬┴┼╭╮╰╯]")


def flat(text: str) -> str:
    """Text without whitespace or table borders (so a cell wrapped by Rich still matches)."""
    return _BOX.sub("", text)


def call(*args: str) -> tuple[int, str, str]:
    """``genlab ARGS`` in-process: (exit code, stdout, stderr) as a 10 000-column terminal would show them."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "out", Console(file=out, width=10_000, highlight=False, soft_wrap=True))
        mp.setattr(cli, "err", Console(file=err, width=10_000, highlight=False))
        import contextlib

        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


NASTY = ["[/x]", "[bold red]gone[/]", "[x_min, x_max]", "(τ/2s)·ln[u_f(s − u₀)]", "[link=x]y[/link]", "\\[escaped]"]


@pytest.fixture(scope="module")
def store_home(tmp_path_factory) -> Path:
    """A fresh store: one real quick run plus runs whose every stored string holds Rich markup."""
    home = tmp_path_factory.mktemp("cli-out") / "home"
    code, out, err = call("run", "deep-linear", "--quick", "--home", str(home))
    assert code == 0, err
    s = Store(home)
    rid = s.create_run("deep-linear", {"seed": 0}, "hx", 0, preset="quick", sweep="grid-[a]")
    s.add_checks(rid, [Verdict(n, n + "p", n + "m", n + "t", i % 2 == 0, kind=("claim", "precondition", "finding")[i % 3])
                       for i, n in enumerate(NASTY)])
    s.log_metrics(rid, [(0, "loss[/x]", 1.0)])
    s.finish_run(rid, "finished")
    rid = s.create_run("deep-linear", {"seed": 1}, "hy", 1)
    s.finish_run(rid, "failed", error="Traceback\nValueError: [/x] and [bold]not bold[/bold]")
    s.close()
    (home / "first_run_output.txt").write_text(out)
    return home


def test_every_stored_string_is_printed_verbatim(store_home):
    s = Store(store_home)
    runs = s.runs()
    assert len(runs) == 3
    seen_brackets = False
    for r in runs:
        code, out, err = call("show", str(r["id"]), "--home", str(store_home))
        assert code == 0, err
        page = flat(out)
        for v in s.checks(r["id"]):
            for text in (v.claim, v.predicted, v.measured, v.tolerance):
                assert flat(text) in page, text
                seen_brackets |= "[" in text
        for name in s.final_metrics(r["id"]):
            assert flat(name) in page
        if r.get("error"):
            assert flat(r["error"]) in page
    assert seen_brackets  # the real deep-linear claim holds "[...]" that Rich used to swallow
    code, out, _ = call("runs", "--home", str(store_home))
    assert code == 0 and "grid-[a]" in out


def test_run_prints_tolerance_count_and_next_command(store_home):
    out = (store_home / "first_run_output.txt").read_text()
    assert "tolerance" in out and "0.05" in out  # deep-linear's tolerance column
    assert re.search(r"\d+ of \d+ claims pass", out)
    assert f"next: genlab report 1 --home {store_home}" in out


def test_bare_genlab_prints_the_help(capsys):
    code, out, err = call()
    assert code == 0 and "Usage:" in out and "Commands:" in out and "error" not in err


@pytest.mark.parametrize("cmd", [["run", "deep-linear"], ["atlas"], ["sweep", "deep-linear", "--grid", "seed=0:2"]])
def test_quick_and_full_are_exclusive(cmd, tmp_path):
    code, out, err = call(*cmd, "--quick", "--full", "--home", str(tmp_path / "h"))
    assert code == 2 and "--quick and --full" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "h").exists()


def test_list_name_prints_keys_types_defaults_ranges_and_presets():
    from genlab.experiments import get_experiment

    code, out, _ = call("list", "stable-minima")
    assert code == 0
    cfg = get_experiment("stable-minima").Config
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]] for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert set(cfg.model_fields) <= set(rows)
    assert rows["n"][:2] == ["int", "30"] and "≥ 2" in rows["n"][2]
    assert rows["n"][4] == str(cfg.presets()["full"]["n"])  # the full preset's value
    assert rows["ground_truth"][2].startswith("one of")
    assert "each > 0" in rows["step_sizes"][2]


def test_unknown_names_get_a_suggestion():
    code, _, err = call("run", "stable-minim")
    assert code == 2 and "did you mean 'stable-minima'?" in err and "allowed:" in err
    code, _, err = call("run", "stable-minima", "--set", "widht=3")
    assert code == 2 and "did you mean 'width'?" in err
    code, _, err = call("list", "deep-linaer")
    assert code == 2 and "did you mean 'deep-linear'?" in err


def test_runs_filters_by_sweep_and_refuses_unknown_names(store_home):
    code, out, _ = call("runs", "--sweep", "grid-[a]", "--json", "--home", str(store_home))
    import json

    assert code == 0 and [r["id"] for r in json.loads(out)] == [2]
    code, out, _ = call("runs", "--sweep", "-", "--json", "--home", str(store_home))
    assert [r["id"] for r in json.loads(out)] == [1, 3]
    code, _, err = call("runs", "--experiment", "nosuch", "--home", str(store_home))
    assert code == 2 and "--experiment: 'nosuch' unknown" in err
    code, _, err = call("runs", "--sweep", "grid-a", "--home", str(store_home))
    assert code == 2 and "did you mean 'grid-[a]'?" in err


def test_sweep_name(tmp_path):
    from genlab.sweep.commands import named_plan
    from genlab.sweep.driver import plan_sweep

    plan = plan_sweep("deep-linear", "quick", ["seed=0:2"], {})
    assert named_plan(plan, "lr-study.1", tmp_path).sweep == "lr-study.1"
    with pytest.raises(InputError, match="--name"):
        named_plan(plan, "bad name/..", tmp_path)
    s = Store(tmp_path)
    s.create_run("deep-linear", {"seed": 9}, "other-hash", 9, sweep="taken")
    with pytest.raises(InputError, match="already holds other points"):
        named_plan(plan, "taken", tmp_path)
    s.create_run("deep-linear", plan.points[0].config, plan.points[0].hash, 0, sweep="mine")
    assert named_plan(plan, "mine", tmp_path).sweep == "mine"  # the same points: resumes


def test_progress_bar_shows_its_unit(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=True, width=120))
    with cli._progress_bar("deep-linear", 50, unit="steps") as bar:
        bar.advance(20)
    assert "steps" in buf.getvalue()


def test_default_report_picks_the_latest_finished_run_outside_sweeps(store_home, tmp_path):
    s = Store(store_home)
    rid = s.create_run("deep-linear", {"seed": 5}, "hz", 5)
    s.finish_run(rid, "interrupted", error="killed")
    out_html = tmp_path / "r.html"
    code, _, err = call("report", "--out", str(out_html), "--home", str(store_home))
    assert code == 0, err
    text = out_html.read_text()
    assert "id='run-1'" in text  # the finished run, not the sweep point (2), the failed (3) or interrupted one
    assert all(f"id='run-{i}'" not in text for i in (2, 3, rid))


def test_show_prints_the_reproducing_command(store_home):
    code, out, _ = call("show", "1", "--home", str(store_home))
    assert code == 0 and "reproduce: genlab run deep-linear --quick --seed 0\n" in out  # recorded at run time
    code, out, _ = call("show", "2", "--home", str(store_home))  # no provenance.json: built from the config
    assert "reproduce: genlab run deep-linear --quick --seed 0\n" in out
