"""The sweep report: one wide table of claims (share of seeds passing) and one of metrics (mean
and interval over seeds) with a row per grid cell, links to each cell's runs, and each metric
drawn against each swept key; one HTML page. Every string is escaped.

Intervals respect a metric's sign and range: with fewer than 5 seeds the interval is the
min–max over seeds; with 5 or more, a 95% percentile bootstrap of the mean (2000 resamples,
fixed seed). Both lie inside [min, max] of the values, so a loss or a norm never gets a
negative bound (a Student-t interval did: loss [−0.000228, 0.006]).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from genlab.store import Store
from genlab.sweep.driver import sweep_runs

SEED = "seed"


BOOTSTRAP_MIN = 5
BOOTSTRAP_RESAMPLES = 2000


def interval_method(n: int) -> str:
    """How :func:`mean_interval` bounds ``n`` finite values."""
    return "—" if n < 2 else ("min–max" if n < BOOTSTRAP_MIN else "95% bootstrap")


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and an interval (lo, hi) over the finite values: min–max below 5 values, a 95%
    percentile bootstrap of the mean from 5 on; NaN where undefined (no value; one value)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    if v.size < BOOTSTRAP_MIN:
        return m, float(v.min()), float(v.max())
    rng = np.random.default_rng(0)
    means = v[rng.integers(0, v.size, size=(BOOTSTRAP_RESAMPLES, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return m, float(lo), float(hi)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.4g}"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def summarize(store: Store, sweep: str) -> dict[str, Any]:
    """Cells (combinations of the swept non-seed keys) with per-metric and per-check values over seeds."""
    runs = sweep_runs(store, sweep)
    all_runs = store.runs(sweep=sweep)
    configs = [r["config"] for r in runs]
    keys = sorted({k for c in configs for k in c})
    swept = [k for k in keys if len({_key(c.get(k)) for c in configs}) > 1 and k != SEED]
    cells: dict[str, dict[str, Any]] = {}
    metric_names: list[str] = []
    claims: list[str] = []
    for r in runs:
        cell_values = {k: r["config"].get(k) for k in swept}
        cell = cells.setdefault(_key(cell_values), {"values": cell_values, "seeds": [], "metrics": {}, "checks": {},
                                                    "config": r["config"]})
        cell["seeds"].append(r["seed"])
        cell.setdefault("runs", []).append(r["id"])
        for name, value in store.final_metrics(r["id"]).items():
            if name not in metric_names:
                metric_names.append(name)
            cell["metrics"].setdefault(name, []).append(value)
        for v in store.checks(r["id"]):
            if v.claim not in claims:
                claims.append(v.claim)
            cell["checks"].setdefault(v.claim, []).append(bool(v.passed))
    statuses: dict[str, int] = {}
    for r in all_runs:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "sweep": sweep,
        "experiment": runs[0]["experiment"] if runs else (all_runs[0]["experiment"] if all_runs else ""),
        "swept": swept,
        "seeds": sorted({r["seed"] for r in runs}),
        "cells": list(cells.values()),
        "metrics": metric_names,
        "claims": claims,
        "statuses": statuses,
        "points": len(runs),
    }


def _cell_label(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all points"


def theory_curve(summary: dict[str, Any], metric: str, key: str, label: str, xs: list[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """The experiment's theory for ``metric`` against ``key`` on a dense grid over [min xs, max xs],
    the other keys as in the first cell of the line ``label`` (see ``Experiment.theory_curve``)."""
    from genlab.errors import InputError
    from genlab.experiments import get_experiment

    try:
        exp = get_experiment(summary["experiment"])
    except (InputError, KeyError):
        return None
    others = [k for k in summary["swept"] if k != key]
    cell = next((c for c in summary["cells"] if ", ".join(f"{k}={c['values'][k]}" for k in others) == label), None)
    if cell is None or not xs:
        return None
    lo, hi = float(min(xs)), float(max(xs))
    grid = np.geomspace(lo, hi, 100) if lo > 0 and hi / lo > 10 else np.linspace(lo, hi, 100)
    ys = exp.theory_curve(metric, key, grid.tolist(), dict(cell.get("config") or {}))
    if ys is None:
        return None
    return grid, np.asarray(ys, dtype=float)


def _plot(summary: dict[str, Any], metric: str, key: str) -> str | None:
    """:func:`metric_figure` as base64 PNG (None when the key's values are not numbers)."""
    import matplotlib.pyplot as plt

    fig = metric_figure(summary, metric, key)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def metric_figure(summary: dict[str, Any], metric: str, key: str) -> Any:
    """An error-bar plot of ``metric`` against the swept ``key`` (one line per value of the other keys),
    with the experiment's theory curve dashed where it has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [k for k in summary["swept"] if k != key]
    lines: dict[str, list[tuple[Any, float, float, float]]] = {}
    for cell in summary["cells"]:
        vals = cell["metrics"].get(metric)
        x = cell["values"][key]
        if vals is None or not isinstance(x, (int, float)):
            return None
        m, lo, hi = mean_interval(vals)
        label = ", ".join(f"{k}={cell['values'][k]}" for k in others)
        lines.setdefault(label, []).append((x, m, lo, hi))
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for j, (label, pts) in enumerate(lines.items()):
        pts.sort(key=lambda p: p[0])
        xs = [p[0] for p in pts]
        ms = np.array([p[1] for p in pts])
        err = np.array([[p[1] - p[2] if math.isfinite(p[2]) else 0 for p in pts],
                        [p[3] - p[1] if math.isfinite(p[3]) else 0 for p in pts]])
        ax.errorbar(xs, ms, yerr=err, marker="o", capsize=3, color=f"C{j}", label=label or None)
        curve = theory_curve(summary, metric, key, label, xs)
        if curve is not None:
            ax.plot(curve[0], curve[1], "--", color=f"C{j}", lw=1, gid="theory",
                    label="theory" + (f" ({label})" if label else ""))
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    theory = any(a.get_gid() == "theory" for a in ax.lines)
    ax.set_title(f"{metric} (mean and interval over seeds{'; dashed: theory' if theory else ''})", fontsize=9)
    if any(lines):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1b1f24;padding:0 1rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.fig{display:inline-block}img{max-width:100%}.scroll{overflow-x:auto}.pass{color:#116329}.fail{color:#b42318}
.iv{font-size:.75rem;color:#57606a}code{font-size:.75rem;word-break:break-all}ol.legend{font-size:.85rem}"""


def _runs_table(store: Store, s: dict[str, Any]) -> str:
    from genlab.provenance import reproduce_command
    from genlab.store import count_claims
    from genlab.sweep.driver import sweep_runs

    head = "".join(f"<th>{_e(k)}</th>" for k in s["swept"])
    rows = []
    for r in sweep_runs(store, s["sweep"]):
        c = count_claims(store.checks(r["id"]))
        cells = "".join(f"<td>{_e(r['config'].get(k))}</td>" for k in s["swept"])
        rows.append(f"<tr id='run-{r['id']}'><td>{r['id']}</td>{cells}<td>{_e(r['seed'])}</td><td>{_e(r['status'])}</td>"
                    f"<td>{c.passed}/{c.passed + c.failed}</td>"
                    f"<td><code>{_e(reproduce_command(r['experiment'], r.get('preset'), r['config']))}</code></td></tr>")
    return ("<h2 id=runs>runs</h2><div class=scroll><table><tr><th>run</th>" + head +
            "<th>seed</th><th>status</th><th>claims</th><th>reproduce</th></tr>" + "".join(rows) + "</table></div>")


def render_sweep_report(store: Store, sweep: str) -> str:
    """The HTML page of a sweep: a claims table and a metrics table, one row per grid cell."""
    s = summarize(store, sweep)
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{_e('sweep ' + sweep)}</title><style>{_CSS}</style></head><body><h1>sweep {_e(sweep)}</h1>",
        f"<p>experiment <b>{_e(s['experiment'])}</b>; {s['points']} finished points; swept keys: "
        f"{_e(', '.join(s['swept']) or 'none but the seed')}; seeds: {_e(', '.join(map(str, s['seeds'])))}; "
        f"runs by status: {_e(', '.join(f'{k} {v}' for k, v in sorted(s['statuses'].items())))}. "
        f"Intervals over seeds: min–max with fewer than {BOOTSTRAP_MIN} seeds, else a 95% interval "
        f"(percentile bootstrap of the mean); both stay within the measured range. "
        f"Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
    ]
    head = "".join(f"<th>{_e(k)}</th>" for k in s["swept"])

    def cell_head(cell: dict[str, Any]) -> str:
        vals = "".join(f"<td>{_e(cell['values'][k])}</td>" for k in s["swept"])
        links = " ".join(f"<a href='#run-{i}'>{i}</a>" for i in cell.get("runs", []))
        return f"{vals}<td>{len(cell['seeds'])}</td><td>{links}</td>"

    # claims: one column per claim, the share of seeds passing in each cell
    claims = s["claims"]
    legend = "".join(f"<li value={i + 1}>{_e(c)}</li>" for i, c in enumerate(claims))
    parts.append("<h2>claims: seeds passing per cell</h2><ol class=legend>" + legend + "</ol>")
    parts.append("<div class=scroll><table><tr>" + head + "<th>seeds</th><th>runs</th>"
                 + "".join(f"<th title='{_e(c)}'>claim {i + 1}</th>" for i, c in enumerate(claims)) + "</tr>")
    for cell in s["cells"]:
        tds = []
        for c in claims:
            got = cell["checks"].get(c, [])
            cls = "pass" if got and all(got) else ("fail" if got else "")
            tds.append(f"<td class='{cls}'>{sum(got)}/{len(got)}</td>" if got else "<td>—</td>")
        parts.append(f"<tr>{cell_head(cell)}{''.join(tds)}</tr>")
    parts.append("</table></div>")

    # metrics: one column per metric, mean and interval in each cell
    parts.append("<h2>metrics: final value, mean [interval] over seeds</h2><div class=scroll><table><tr>" + head
                 + "<th>seeds</th><th>runs</th>" + "".join(f"<th>{_e(m)}</th>" for m in s["metrics"]) + "</tr>")
    for cell in s["cells"]:
        tds = []
        for metric in s["metrics"]:
            vals = cell["metrics"].get(metric, [])
            m, lo, hi = mean_interval(vals)
            n = sum(1 for v in vals if math.isfinite(v))
            interval = f"<br><span class=iv>[{_fmt(lo)}, {_fmt(hi)}] {interval_method(n)}</span>" if math.isfinite(lo) else ""
            tds.append(f"<td>{_fmt(m)}{interval}</td>")
        parts.append(f"<tr>{cell_head(cell)}{''.join(tds)}</tr>")
    parts.append("</table></div>")
    if s["swept"]:
        parts.append("<h2>metrics against the swept keys</h2>")
    for metric in s["metrics"]:
        for key in s["swept"]:
            b64 = _plot(s, metric, key)
            if b64:
                parts.append(f'<div class=fig><img alt="{_e(metric + " vs " + key)}" src="data:image/png;base64,{b64}"></div>')
    parts.append(_runs_table(store, s))
    parts.append("</body></html>")
    return "".join(parts)


def write_sweep_report(store: Store, sweep: str, path: str | Path) -> Path:
    """Write the sweep's HTML page to ``path`` (atomically) and return it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(render_sweep_report(store, sweep))
    tmp.replace(p)
    return p
