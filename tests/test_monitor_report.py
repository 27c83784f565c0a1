"""The report of a monitored training: its dashboard, its verdicts, and "monitoring run" (not a
failure) wherever runs are summarized (report headline and summary table, `genlab runs`, `genlab show`)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from genlab.cli import main
from genlab.monitor import Monitor
from genlab.report.compare import series
from genlab.report.dashboard import dashboard_figure, present_panels
from genlab.store import Store, Verdict

LR = 0.05


def _cli(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as e:
        assert e.code in (0, None), args


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """A short SGD run monitored with the economy and curvature sets into a fresh store."""
    home = tmp_path_factory.mktemp("mon")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x, y = torch.randn(64, 5), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    mon = Monitor(model, F.cross_entropy, opt, probes=["economy", "curvature"], every=3, store=home, name="sgd",
                  per_layer=True)
    for i in range(12):
        xb, yb = x[(i % 4) * 16:(i % 4 + 1) * 16], y[(i % 4) * 16:(i % 4 + 1) * 16]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        mon.step((xb, yb), loss=loss)
    verdicts = mon.close()
    return home, mon.run_id, verdicts


def test_dashboard_panels_follow_the_series_present(monitored):
    home, rid, _ = monitored
    with Store(home) as st:
        data = series(st, rid)
    titles = [p.title for p, _ in present_panels(data)]
    assert titles[:2] == ["loss", "sharpness and stability threshold"]
    assert "Hessian trace" in titles and "per-layer sharpness λ_max(H_BB)" in titles and "gradient norms over time" in titles and "distance from initialization" in titles
    assert "kernel distance from initialization" not in titles  # not recorded by this run: no empty panel
    assert "gradient-noise tail index α̂" not in titles
    only_loss = {"loss": data["loss"]}
    assert [p.title for p, _ in present_panels(only_loss)] == ["loss"]
    assert dashboard_figure({}) is None


def test_dashboard_draws_threshold_and_trace_band(monitored):
    """The threshold line sits at 2/η (SGD) and the trace panel has a band exactly ±1 SE wide."""
    import matplotlib.pyplot as plt

    home, rid, _ = monitored
    with Store(home) as st:
        data = series(st, rid)
    fig = dashboard_figure(data)
    axes = {ax.get_title(): ax for ax in fig.axes}
    sharp = axes["sharpness and stability threshold"]
    lines = {ln.get_label().split(" (")[0]: ln for ln in sharp.get_lines()}
    assert list(lines["stability threshold"].get_ydata()) == pytest.approx([2 / LR] * 4)  # measured at steps 3, 6, 9, 12
    trace_ax = axes["Hessian trace"]
    band = trace_ax.collections[0].get_paths()[0].vertices  # polygon: lower edge then upper edge
    se = data["trace_se"][1]
    width = band[:, 1].max() - band[:, 1].min()
    tr = data["trace"][1]
    assert width == pytest.approx(max(t + s for t, s in zip(tr, se)) - min(t - s for t, s in zip(tr, se)), rel=1e-9)
    blocks = {ln.get_label() for ln in axes["per-layer sharpness λ_max(H_BB)"].get_lines()}
    assert blocks == {"0", "2", "whole model"}  # the two Linear layers of Sequential(Linear, Tanh, Linear)
    plt.close(fig)


def test_report_of_a_monitor_run_has_dashboard_and_is_a_monitoring_run(monitored, tmp_path, capsys):
    home, rid, verdicts = monitored
    out = tmp_path / "r.html"
    _cli("report", str(rid), "--home", str(home), "--out", str(out))
    text = out.read_text()
    assert f'alt="dashboard of run {rid}"' in text and "data:image/png;base64," in text
    assert "monitoring run" in text and "1 monitoring run" in text
    assert not re.search(r"class='fail", text)  # no claims and finished: neutral, not a failure
    assert "Failures (0)" in text
    assert "genlab run monitor:" not in text  # no fake reproduce command for a user's loop
    for v in verdicts:  # the findings table holds the Monitor's verdicts
        assert v.claim.split(":")[0] in text


def test_run_lists_call_it_a_monitoring_run(monitored, capsys, monkeypatch):
    from genlab import cli

    monkeypatch.setattr(cli.out, "width", 240)  # no folding of the table's cells
    home, rid, _ = monitored
    _cli("runs", "--home", str(home))
    assert "monitoring run" in capsys.readouterr().out
    _cli("show", str(rid), "--home", str(home))
    assert "monitoring run" in capsys.readouterr().out


def test_a_monitor_run_with_a_failed_claim_is_still_a_failure(tmp_path):
    """"Monitoring run" is only for runs without claims: a stored failing claim is shown as one."""
    from genlab.report.html import render_report

    with Store(tmp_path) as st:
        rid = st.create_run("monitor:x", {"model": "M"}, "h", seed=0)
        st.log_metrics(rid, [(1, "loss", 1.0)])
        st.add_checks(rid, [Verdict("c", "p", "m", "t", passed=False)])
        st.finish_run(rid, "finished")
        text = render_report(st, [rid])
    assert "0 of 1 claims pass" in text and "claim failed" in text


def test_monitor_report_needs_a_store():
    from genlab.errors import InputError

    model = torch.nn.Linear(3, 2)
    mon = Monitor(model, F.cross_entropy, probes="economy")
    with pytest.raises(InputError, match="^report: this Monitor has no store"):
        mon.report()


def test_tail_panel_draws_interval_control_and_gaussian_level():
    """The Monitor's tail_index with _low/_high and its Gaussian control: band edges are the stored
    interval, the control is drawn, α = 2 is marked; kernel distance gets its panel."""
    import matplotlib.pyplot as plt

    steps = [10, 20, 30]
    data = {"tail_index": (steps, [1.5, 1.6, 1.4]), "tail_index_low": (steps, [1.3, 1.4, 1.2]),
            "tail_index_high": (steps, [1.8, 1.9, 1.7]), "tail_index_control": (steps, [1.9, 1.95, 1.9]),
            "kernel_distance": (steps, [0.0, 0.1, 0.2])}
    fig = dashboard_figure(data)
    axes = {ax.get_title(): ax for ax in fig.axes}
    assert set(axes) == {"gradient-noise tail index α̂", "kernel distance from initialization"}
    ax = axes["gradient-noise tail index α̂"]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(1.2) and band.max() == pytest.approx(1.9)
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "α̂ Gaussian control" in labels and "α = 2 (Gaussian)" in labels
    plt.close(fig)


def test_hostile_run_and_block_names_are_drawn_as_text(tmp_path):
    """A run or block name with matplotlib math ($...$) or HTML is shown literally, never parsed."""
    from genlab.report.html import render_report

    with Store(tmp_path) as st:
        rid = st.create_run("monitor:$\\frac{<script>", ["not", "a", "dict"], "h", seed=0)
        st.log_metrics(rid, [(1, "loss", 1.0), (1, "sharpness", 2.0), (1, "sharpness/$x^{", 1.0)])
        st.finish_run(rid, "finished")
        text = render_report(st, [rid])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert f'alt="dashboard of run {rid}"' in text
