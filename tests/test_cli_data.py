"""genlab metrics (table, CSV, JSON, plot), genlab diff and report --overlay on a store filled
directly: two runs of one experiment and a monitoring run without verdicts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from genlab.store import Store, Verdict
from test_cli_output import call


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("data") / "home"
    s = Store(home)
    for seed, lr in ((0, 0.1), (1, 0.2)):
        rid = s.create_run("deep-linear", {"seed": seed, "lr": lr, "n": 8}, f"h{seed}", seed, preset="quick")
        s.log_metrics(rid, [(t, "a/loss", 1.0 / (1 + lr * t)) for t in range(5)] + [(t, "a/lr", lr) for t in range(5)]
                      + ([(4, "only_first", 1.0)] if seed == 0 else []))
        s.add_checks(rid, [Verdict("the loss falls", "down", "x", "-", True),
                           Verdict("the slope is −1", "−1", "y", "0.1", seed == 0)])
        s.finish_run(rid, "finished")
    m = s.create_run("monitor", {"lr": 0.1}, "hm", 0)
    s.log_metrics(m, [(0, "loss", 2.0), (10, "loss", float("nan")), (20, "loss", 0.5)])
    s.finish_run(m, "finished")
    return home


def test_metrics_lists_series_and_exports_csv_and_json(home):
    code, out, err = call("metrics", "1", "--home", str(home))
    assert code == 0, err
    assert "a/loss" in out and "a/lr" in out and "only_first" in out
    code, out, _ = call("metrics", "1", "a/loss", "--csv", "--home", str(home))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["step"]) for r in rows] == list(range(5))
    assert [float(r["value"]) for r in rows] == [1.0 / (1 + 0.1 * t) for t in range(5)]  # exact round trip
    code, out, _ = call("metrics", "3", "--json", "--home", str(home))  # the monitoring run, NaN kept as null
    data = json.loads(out)
    assert data["series"]["loss"] == {"step": [0, 10, 20], "value": [2.0, None, 0.5]}
    code, out, _ = call("metrics", "1", "a/*", "--json", "--home", str(home))
    assert set(json.loads(out)["series"]) == {"a/loss", "a/lr"}


def test_metrics_bad_names_and_plot(home, tmp_path):
    code, _, err = call("metrics", "1", "loss", "--home", str(home))
    assert code == 2 and "did you mean 'a/loss'" in err
    code, _, err = call("metrics", "1", "--csv", "--json", "--home", str(home))
    assert code == 2
    code, _, err = call("metrics", "1", "--plot", str(tmp_path / "x.txt"), "--home", str(home))
    assert code == 2 and "--plot" in err and not (tmp_path / "x.txt").exists()
    svg = tmp_path / "m.svg"
    code, _, err = call("metrics", "1", "a/loss", "--plot", str(svg), "--home", str(home))
    assert code == 0, err
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text


def test_diff_reports_config_verdicts_and_deltas(home):
    code, out, err = call("diff", "1", "2", "--json", "--home", str(home))
    assert code == 0, err
    d = json.loads(out)
    assert d["config"] == [{"key": "lr", "a": 0.1, "b": 0.2}, {"key": "seed", "a": 0, "b": 1}]
    assert d["verdicts"][0] == {"claim": "the slope is −1", "a": "pass", "b": "FAIL"}  # changed first
    loss = next(m for m in d["metrics"] if m["name"] == "a/loss")
    assert loss["a"] == pytest.approx(1 / 1.4) and loss["delta"] == pytest.approx(1 / 1.8 - 1 / 1.4)
    assert d["only_a"] == ["only_first"] and d["only_b"] == []
    code, out, _ = call("diff", "1", "2", "--home", str(home))
    assert code == 0 and "FAIL" in out and "lr" in out
    code, _, err = call("diff", "1", "99", "--home", str(home))
    assert code == 2 and "no run with id 99" in err


def test_report_overlay_draws_shared_series(home, tmp_path):
    page = tmp_path / "o.html"
    code, _, err = call("report", "1", "2", "--overlay", "--out", str(page), "--home", str(home))
    assert code == 0, err
    text = page.read_text()
    assert "id='overlay-deep-linear'" in text
    assert text.count("<figcaption>a/") == 2  # a/loss and a/lr, each with both runs; only_first is not shared
    assert "http://" not in text and "https://" not in text
    code, _, err = call("report", "1", "--overlay", "--home", str(home))
    assert code == 2 and "--overlay" in err
