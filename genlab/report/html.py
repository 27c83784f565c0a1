"""One self-contained HTML report: a table of every claim with its verdict, then each run with
its config, verdicts, figures (PNG embedded as base64) and final metrics. Opens offline.
Every string that comes from a user or a run is escaped (``html.escape``).
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from genlab import __version__
from genlab.store import ClaimCount, Store, Verdict, claim_outcome, count_claims

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
 color:#1b1f24;line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:.86rem;margin:.6rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.pass{color:#116329;font-weight:600}.fail{color:#b42318;font-weight:600}
.status{font-size:.85rem;color:#57606a}img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.8rem}
.summary{font-size:1rem;margin:.5rem 0 1rem}.untested{color:#9a6700;font-weight:600}.finding{color:#57606a}
.kind{font-size:.75rem;text-transform:uppercase;color:#57606a;border:1px solid #d0d7de;border-radius:3px;padding:0 .2rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_OUTCOME_CLASS = {"pass": "pass", "met": "pass", "FAIL": "fail", "NOT MET": "fail", "not tested": "untested", "finding": "finding"}


def _verdict_cell(verdict: Verdict, verdicts: list[Verdict]) -> str:
    outcome = claim_outcome(verdict, verdicts)
    return f'<td class="{_OUTCOME_CLASS[outcome]}">{_e(outcome)}</td>'


def _kind_cell(verdict: Verdict) -> str:
    return "" if verdict.kind == "claim" else f"<span class=kind>{_e(verdict.kind)}</span> "


def _img(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return f"<p class=status>missing figure {_e(os.path.basename(path))}</p>"
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(os.path.basename(path))}" src="data:image/png;base64,{b64}">'


def render_report(
    store: Store,
    run_ids: Iterable[int],
    titles: Mapping[str, str] | None = None,
    heading: str = "genlab report",
) -> str:
    """The report's HTML for the given runs (in the order given)."""
    titles = titles or {}
    runs = [r for r in (store.get_run(i) for i in run_ids) if r is not None]
    rows, sections = [], []
    counts = ClaimCount()
    for run in runs:
        verdicts = store.checks(run["id"])
        counts = counts + count_claims(verdicts)
        for v in verdicts:
            rows.append(
                f"<tr><td><a href='#run-{run['id']}'>{_e(run['experiment'])}</a> #{run['id']}</td>"
                f"<td>{_kind_cell(v)}{_e(v.claim)}</td><td>{_e(v.paper)}</td><td>{_e(v.predicted)}</td>"
                f"<td>{_e(v.measured)}</td><td>{_e(v.tolerance)}</td>{_verdict_cell(v, verdicts)}</tr>"
            )
        if not verdicts:
            rows.append(
                f"<tr><td><a href='#run-{run['id']}'>{_e(run['experiment'])}</a> #{run['id']}</td>"
                f"<td colspan=5>no verdicts (run {_e(run['status'])})</td><td class=fail>—</td></tr>"
            )
        sections.append(_run_section(store, run, verdicts, titles.get(run["experiment"], "")))
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    summary = counts.summary()
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(heading)}</h1><p class=status>genlab {__version__} · generated {generated} · "
        f"{len(runs)} runs</p><p class=summary><b>{_e(summary)}</b></p>"
        "<table><tr><th>experiment</th><th>claim</th><th>paper</th><th>predicted</th><th>measured</th>"
        "<th>tolerance</th><th>verdict</th></tr>" + "".join(rows) + "</table>" + "".join(sections) + "</body></html>"
    )


def _run_section(store: Store, run: Mapping[str, Any], verdicts: list, title: str) -> str:
    rid = run["id"]
    elapsed = (run["ended"] or time.time()) - run["started"]
    head = (
        f"<h2 id='run-{rid}'>{_e(run['experiment'])} · run #{rid}</h2>"
        + (f"<p>{_e(title)}</p>" if title else "")
        + f"<p class=status>status <b>{_e(run['status'])}</b> · preset {_e(run.get('preset') or 'custom')} · "
        f"seed {_e(run['seed'])} · {elapsed:.1f} s · config {_e(run['config_hash'])}</p>"
    )
    if run.get("error"):
        head += f"<pre>{_e(run['error'])}</pre>"
    vt = "".join(
        f"<tr><td>{_kind_cell(v)}{_e(v.claim)}</td><td>{_e(v.predicted)}</td><td>{_e(v.measured)}</td>"
        f"<td>{_e(v.tolerance)}</td>{_verdict_cell(v, verdicts)}</tr>"
        for v in verdicts
    )
    table = (
        "<table><tr><th>claim</th><th>predicted</th><th>measured</th><th>tolerance</th><th>verdict</th></tr>"
        + vt
        + "</table>"
        if verdicts
        else ""
    )
    figs = "".join(_img(a["path"]) for a in store.artifacts(rid, kind="figure"))
    final = store.final_metrics(rid)
    metrics = "".join(f"<tr><td>{_e(k)}</td><td>{v:.6g}</td></tr>" for k, v in sorted(final.items()))
    details = (
        f"<details><summary>config</summary><pre>{_e(json.dumps(run['config'], indent=1, sort_keys=True))}</pre></details>"
        f"<details><summary>final metrics ({len(final)})</summary><table>{metrics}</table></details>"
    )
    return head + table + figs + details


def write_report(
    store: Store,
    run_ids: Iterable[int],
    out: str | os.PathLike[str],
    titles: Mapping[str, str] | None = None,
    heading: str = "genlab report",
) -> Path:
    """Write the report atomically (temporary file, then rename) and return its path."""
    text = render_report(store, run_ids, titles=titles, heading=heading)
    final = Path(out)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)
    return final
