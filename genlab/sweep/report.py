"""The sweep report: every metric and check of a sweep against each swept key, with the mean and
a 95% interval over seeds, and the share of seeds on which each verdict passed; one HTML page.

The interval is Student's t: mean ± t_{0.975, m−1}·s/√m over the m seeds of a grid cell (s the
sample standard deviation); with one seed no interval is given. Every string is escaped.
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
from scipy import stats as st

from genlab.store import Store
from genlab.sweep.driver import sweep_runs

SEED = "seed"


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval (lo, hi) over the finite values; NaN where undefined."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(st.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


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
        cell = cells.setdefault(_key(cell_values), {"values": cell_values, "seeds": [], "metrics": {}, "checks": {}})
        cell["seeds"].append(r["seed"])
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


def _plot(summary: dict[str, Any], metric: str, key: str) -> str | None:
    """An error-bar plot of ``metric`` against the swept ``key`` (one line per value of the other keys)."""
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
    for label, pts in lines.items():
        pts.sort(key=lambda p: p[0])
        xs = [p[0] for p in pts]
        ms = np.array([p[1] for p in pts])
        err = np.array([[p[1] - p[2] if math.isfinite(p[2]) else 0 for p in pts],
                        [p[3] - p[1] if math.isfinite(p[3]) else 0 for p in pts]])
        ax.errorbar(xs, ms, yerr=err, marker="o", capsize=3, label=label or None)
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} (mean, 95% interval over seeds)", fontsize=8)
    if any(lines):
        ax.legend(fontsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1b1f24;padding:0 1rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.fig{display:inline-block}img{max-width:100%}"""


def render_sweep_report(store: Store, sweep: str) -> str:
    """The HTML page of a sweep."""
    s = summarize(store, sweep)
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e('sweep ' + sweep)}</title>"
        f"<style>{_CSS}</style></head><body><h1>sweep {_e(sweep)}</h1>",
        f"<p>experiment <b>{_e(s['experiment'])}</b>; {s['points']} finished points; swept keys: "
        f"{_e(', '.join(s['swept']) or 'none but the seed')}; seeds: {_e(', '.join(map(str, s['seeds'])))}; "
        f"runs by status: {_e(', '.join(f'{k} {v}' for k, v in sorted(s['statuses'].items())))}. "
        f"Intervals: 95% Student-t over seeds. Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
    ]
    head = "".join(f"<th>{_e(k)}</th>" for k in s["swept"])
    parts.append("<h2>checks: share of seeds passing</h2><table><tr><th>claim</th>" + head + "<th>seeds passing</th><th>share</th></tr>")
    for claim in s["claims"]:
        for cell in s["cells"]:
            got = cell["checks"].get(claim, [])
            cells = "".join(f"<td>{_e(cell['values'][k])}</td>" for k in s["swept"])
            share = sum(got) / len(got) if got else float("nan")
            parts.append(f"<tr><td>{_e(claim)}</td>{cells}<td>{sum(got)}/{len(got)}</td><td>{_fmt(share)}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>metrics: final value, mean and 95% interval over seeds</h2>")
    for metric in s["metrics"]:
        parts.append(f"<h3>{_e(metric)}</h3><table><tr>{head}<th>seeds</th><th>mean</th><th>95% interval</th><th>min</th><th>max</th></tr>")
        for cell in s["cells"]:
            vals = cell["metrics"].get(metric, [])
            m, lo, hi = mean_interval(vals)
            fin = [v for v in vals if math.isfinite(v)]
            cells = "".join(f"<td>{_e(cell['values'][k])}</td>" for k in s["swept"])
            interval = f"[{_fmt(lo)}, {_fmt(hi)}]" if math.isfinite(lo) else "—"
            parts.append(
                f"<tr>{cells}<td>{len(fin)}</td><td>{_fmt(m)}</td><td>{_e(interval)}</td>"
                f"<td>{_fmt(min(fin)) if fin else '—'}</td><td>{_fmt(max(fin)) if fin else '—'}</td></tr>"
            )
        parts.append("</table>")
        for key in s["swept"]:
            b64 = _plot(s, metric, key)
            if b64:
                parts.append(f'<div class=fig><img alt="{_e(metric + " vs " + key)}" src="data:image/png;base64,{b64}"></div>')
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
