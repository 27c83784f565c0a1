"""One self-contained HTML report (figures embedded, no network reference; opens offline).

Layout, top to bottom: the headline (claims only: preconditions and findings are not
counted), a summary table grouped by theme (experiment, claims passing, seconds, link), the
list of failures with links, then one section per theme holding one section per run: the
paper, provenance (versions, git commit, the command that reproduces the run), claims,
preconditions and findings as separate tables (each claim with what it tests, what can make
it fail and, when it failed, what to try), captioned figures, config and final metrics, and
links back to the summary. Every string that comes from a user or a run is escaped
(``html.escape``).
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
from genlab.provenance import stored
from genlab.report.catalog import ExperimentInfo
from genlab.report.dashboard import DIAGNOSE_CAPTIONS, MONITOR_PREFIX, dashboard_png
from genlab.store import ClaimCount, Store, Verdict, claim_outcome, count_claims, is_monitoring_run

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;max-width:1200px;
 color:#1b1f24;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.3rem;margin-top:2.5rem;border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #eaeef2;padding-bottom:.2rem}h4{font-size:.95rem;margin:1rem 0 .2rem}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.86rem;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.theme th{background:#eaeef2;font-size:.95rem}
td.num{text-align:right;white-space:nowrap}
.pass{color:#116329;font-weight:600}.fail{color:#b42318;font-weight:600}.untested{color:#9a6700;font-weight:600}
.neutral,.finding{color:#57606a}
.status,.sub{font-size:.85rem;color:#57606a}.headline{font-size:1.15rem;margin:.6rem 0 1rem}
.paper{font-size:.9rem}.note{font-size:.78rem;color:#57606a;margin-top:.2rem}
.try{font-size:.8rem;color:#7d2c00;background:#fff4e5;border-left:3px solid #d4a72c;padding:.15rem .4rem;margin-top:.25rem}
ul.failures li{margin:.3rem 0}
figure{margin:.8rem 0;display:inline-block;max-width:100%;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.82rem;color:#333;max-width:640px}
pre,code{background:#f6f8fa;font-size:.8rem}pre{padding:.6rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
code{padding:0 .2rem;word-break:break-all}
.back{font-size:.8rem;margin-top:.8rem}
dl.prov{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;font-size:.82rem;margin:.3rem 0}
dl.prov dt{color:#57606a}dl.prov dd{margin:0}
@media (max-width:700px){body{margin:.6rem auto;padding:0 .5rem}table{font-size:.78rem}
 th,td{padding:.2rem .3rem}h1{font-size:1.3rem}.sub,.st{display:none}}
"""


MONITORING_INFO = ExperimentInfo(
    title="measured on the user's own model", theme="monitoring",
    theme_title="Monitored trainings and diagnoses (your own models)", theme_order=100_000,
    captions=DIAGNOSE_CAPTIONS,
)
DASHBOARD_CAPTION = (
    "Dashboard: a panel per recorded quantity. Sharpness against the optimizer's stability threshold "
    "(dashed; read from the optimizer at each measurement), trace with ±1 SE band, per-example gradient norms "
    "over time, SNR/coherence, tail index α̂ with its interval against the Gaussian α = 2, distance from init, "
    "kernel distance."
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_OUTCOME_CLASS = {"pass": "pass", "met": "pass", "FAIL": "fail", "NOT MET": "fail", "not tested": "untested", "finding": "finding"}
_PROBLEM_STATUSES = ("failed", "interrupted", "running")


def _img(path: str) -> str:
    name = os.path.basename(path)
    try:
        data = Path(path).read_bytes()
    except OSError:
        return f"<p class=status>missing figure {_e(name)}</p>"
    mime = "image/svg+xml" if name.endswith(".svg") else "image/png"
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{_e(name)}" src="data:{mime};base64,{b64}">'


def _elapsed(run: Mapping[str, Any]) -> float | None:
    return None if run.get("ended") is None else float(run["ended"]) - float(run["started"])


def _claims_cell(run: Mapping[str, Any], counts: ClaimCount) -> tuple[str, str]:
    """(css class, text) of a run's claim count; a run without claims is neutral, not a failure."""
    if is_monitoring_run(run) and not counts.total and run["status"] in ("finished", "running"):
        return "neutral", "monitoring run" + (" (running)" if run["status"] == "running" else "")
    if run["status"] in _PROBLEM_STATUSES:
        return "fail", f"run {run['status']}"
    tested = counts.passed + counts.failed
    if not counts.total:
        return "neutral", "no claims"
    text = f"{counts.passed}/{tested}" if tested else ""
    if counts.not_tested:
        text += f" ({counts.not_tested} not tested)" if tested else f"{counts.not_tested} not tested"
    cls = "fail" if counts.failed else ("untested" if counts.not_tested else "pass")
    return cls, text


def _try_next(v: Verdict, run: Mapping[str, Any], info: ExperimentInfo) -> str:
    """What to try after a failed claim or precondition: the experiment's own advice, else the generic one."""
    note = info.note(v.claim)
    if note is not None and note.try_next:
        return note.try_next
    name = run["experiment"]
    if run.get("preset") == "quick":
        return (f"the quick preset is small: rerun at the paper's scale (genlab run {name} --full) or over seeds "
                f"(genlab sweep {name} --quick --grid seed=0:5) to tell a quick-preset artefact from a real disagreement")
    return (f"rerun over seeds (genlab sweep {name} --grid seed=0:5) to see whether the failure is seed noise; "
            "compare measured and predicted above")


class _Report:
    def __init__(self, store: Store, runs: list[dict[str, Any]], info: Mapping[str, ExperimentInfo]):
        self.store = store
        self.runs = runs
        self.info = info
        self.verdicts = {r["id"]: store.checks(r["id"]) for r in runs}

    def info_of(self, run: Mapping[str, Any]) -> ExperimentInfo:
        if run["experiment"] not in self.info and is_monitoring_run(run):
            return MONITORING_INFO
        return self.info.get(run["experiment"], ExperimentInfo())

    # -- grouping ---------------------------------------------------------------------------------
    def by_theme(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        groups: dict[str, tuple[int, str, list[dict[str, Any]]]] = {}
        for run in self.runs:
            i = self.info_of(run)
            groups.setdefault(i.theme, (i.theme_order, i.theme_title, []))[2].append(run)
        ordered = sorted(groups.items(), key=lambda kv: (kv[1][0], kv[0]))
        return [(key, title, runs) for key, (_, title, runs) in ordered]

    # -- parts ------------------------------------------------------------------------------------
    def summary_table(self, groups: list[tuple[str, str, list[dict[str, Any]]]]) -> str:
        rows = []
        for key, title, runs in groups:
            rows.append(f"<tr class=theme><th colspan=4><a href='#theme-{_e(key)}'>{_e(title)}</a></th></tr>")
            for run in runs:
                cls, text = _claims_cell(run, count_claims(self.verdicts[run["id"]]))
                secs = _elapsed(run)
                title_ = self.info_of(run).title
                rows.append(
                    f"<tr><td><a href='#run-{run['id']}'>{_e(run['experiment'])}</a> <span class=status>#{run['id']}"
                    + "</span>" + (f"<span class=sub> · {_e(title_)}</span>" if title_ else "") + "</td>"
                    f"<td class='{cls} num'>{_e(text)}</td><td class=num>{'—' if secs is None else f'{secs:.1f}'}</td>"
                    f"<td class=st>{_e(run['status'])}</td></tr>"
                )
        return (
            "<nav id=summary><h2>Summary by theme</h2><div class=scroll><table><thead><tr><th>experiment</th>"
            "<th>claims passing</th><th>seconds</th><th class=st>status</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div></nav>"
        )

    def failures(self) -> tuple[int, str]:
        items = []
        for run in self.runs:
            rid, name = run["id"], _e(run["experiment"])
            if run["status"] in _PROBLEM_STATUSES and not (is_monitoring_run(run) and run["status"] == "running"):
                items.append(f"<li><a href='#run-{rid}'>{name} #{rid}</a>: <span class=fail>run {_e(run['status'])}</span>"
                             + (f" — {_e(str(run['error']).strip().splitlines()[-1])}" if run.get("error") else "") + "</li>")
            verdicts = self.verdicts[rid]
            for j, v in enumerate(verdicts):
                outcome = claim_outcome(v, verdicts)
                if outcome not in ("FAIL", "NOT MET"):
                    continue
                what = "claim failed" if outcome == "FAIL" else "precondition not met (claims not tested)"
                items.append(
                    f"<li><a href='#v-{rid}-{j}'>{name} #{rid}</a>: <span class=fail>{what}</span> — {_e(v.claim)}"
                    f"<div class=try>try: {_e(_try_next(v, run, self.info_of(run)))}</div></li>"
                )
        body = ("<ul class=failures>" + "".join(items) + "</ul>") if items else \
            "<p>None: every tested claim passed, every precondition was met and every run finished.</p>"
        return len(items), f"<section id=failures><h2>Failures ({len(items)})</h2>{body}</section>"

    def verdict_tables(self, run: Mapping[str, Any]) -> str:
        rid, verdicts, info = run["id"], self.verdicts[run["id"]], self.info_of(run)
        groups = {"claim": [], "precondition": [], "finding": []}
        for j, v in enumerate(verdicts):
            groups[v.kind].append((j, v))
        parts = []
        heads = {"claim": ("Claims", "claim"), "precondition": ("Preconditions", "precondition"), "finding": ("Findings", "finding")}
        for kind in ("claim", "precondition", "finding"):
            if not groups[kind]:
                continue
            title, col = heads[kind]
            last = "" if kind == "finding" else "<th>verdict</th>"
            rows = []
            for j, v in groups[kind]:
                outcome = claim_outcome(v, verdicts)
                note = info.note(v.claim)
                extra = ""
                if note is not None:
                    extra += f"<div class=note>tests: {_e(note.tests)}; can fail if: {_e(note.fails_if)}</div>"
                if outcome in ("FAIL", "NOT MET"):
                    extra += f"<div class=try>try: {_e(_try_next(v, run, info))}</div>"
                verdict = "" if kind == "finding" else f"<td class={_OUTCOME_CLASS[outcome]}>{_e(outcome)}</td>"
                rows.append(
                    f"<tr id='v-{rid}-{j}'><td>{_e(v.claim)}{extra}</td><td>{_e(v.predicted)}</td><td>{_e(v.measured)}</td>"
                    f"<td>{_e(v.tolerance)}</td>{verdict}</tr>"
                )
            predicted = "reference" if kind == "finding" else "predicted"
            parts.append(
                f"<h4>{title} ({len(rows)})</h4><div class=scroll><table><thead><tr><th>{col}</th><th>{predicted}</th>"
                f"<th>measured</th><th>tolerance</th>{last}</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
            )
        return "".join(parts)

    def provenance(self, run: Mapping[str, Any]) -> str:
        if is_monitoring_run(run):
            cfg = run["config"] if isinstance(run.get("config"), dict) else {}
            what = ", ".join(f"{k} {cfg[k]}" for k in ("model", "parameters", "optimizer") if cfg.get(k) is not None)
            return (f"<p class=status>recorded from the user's own model by genlab.{'Monitor' if run['experiment'].startswith('monitor:') else 'diagnose'}"
                    + (f" ({_e(what)})" if what else "") + "</p>")
        prov = stored(self.store, run)
        command = prov["command"]
        fields = [("genlab", prov.get("genlab") or run.get("version")), ("torch", prov.get("torch")),
                  ("numpy", prov.get("numpy")), ("Python", prov.get("python")), ("platform", prov.get("platform")),
                  ("git commit", prov.get("git_commit")), ("invoked as", prov.get("argv")),
                  ("sweep", run.get("sweep"))]
        dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in fields if v)
        return f"<p class=status>reproduce: <code>{_e(command)}</code></p><details><summary>provenance</summary><dl class=prov>{dl}</dl></details>"

    def figures(self, run: Mapping[str, Any]) -> str:
        info = self.info_of(run)
        out = []
        for a in self.store.artifacts(run["id"], kind="figure"):
            caption = info.captions.get(a["name"], "")
            cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
            out.append(f"<figure>{_img(a['path'])}{cap}</figure>")
        return "".join(out)

    def run_section(self, run: dict[str, Any], theme_key: str) -> str:
        rid, info = run["id"], self.info_of(run)
        secs = _elapsed(run)
        cls, text = _claims_cell(run, count_claims(self.verdicts[rid]))
        head = (
            f"<section id='run-{rid}' class=run><h3>{_e(run['experiment'])}"
            + (f" · {_e(info.title)}" if info.title else "") + f" <span class=status>run #{rid}</span></h3>"
            + (f"<p class=paper>paper: {_e(info.paper)}</p>" if info.paper else "")
            + f"<p class=status>claims <span class='{cls}'>{_e(text)}</span> · status <b>{_e(run['status'])}</b> · "
            f"preset {_e(run.get('preset') or 'custom')} · seed {_e(run['seed'])} · "
            f"{'—' if secs is None else f'{secs:.1f} s'} · config {_e(run['config_hash'])}</p>"
            + self.provenance(run)
        )
        if run.get("error"):
            head += f"<pre>{_e(run['error'])}</pre>"
        final = self.store.final_metrics(rid)
        metrics = "".join(f"<tr><td>{_e(k)}</td><td>{v:.6g}</td></tr>" for k, v in sorted(final.items()))
        details = (
            f"<details><summary>config</summary><pre>{_e(json.dumps(run['config'], indent=1, sort_keys=True))}</pre></details>"
            f"<details><summary>final metrics ({len(final)})</summary><div class=scroll><table>{metrics}</table></div></details>"
        )
        back = (f"<p class=back><a href='#summary'>↑ summary</a> · <a href='#failures'>failures</a> · "
                f"<a href='#theme-{_e(theme_key)}'>theme</a></p>")
        return head + self.verdict_tables(run) + self.dashboard(run) + self.figures(run) + details + back + "</section>"

    def dashboard(self, run: Mapping[str, Any]) -> str:
        """A monitored training's dashboard (one figure of panels from its series); empty for other runs."""
        if not run["experiment"].startswith(MONITOR_PREFIX):
            return ""
        from genlab.report.compare import series

        png = dashboard_png(series(self.store, run["id"]), f"{run['experiment']} · run {run['id']}")
        if png is None:
            return "<p class=status>no series the dashboard draws were recorded</p>"
        b64 = base64.b64encode(png).decode("ascii")
        return (f'<figure><img alt="dashboard of run {run["id"]}" src="data:image/png;base64,{b64}">'
                f"<figcaption>{_e(DASHBOARD_CAPTION)}</figcaption></figure>")


def render_report(
    store: Store,
    run_ids: Iterable[int],
    info: Mapping[str, ExperimentInfo] | None = None,
    heading: str = "genlab report",
    titles: Mapping[str, str] | None = None,
    overlay: bool = False,
) -> str:
    """The report's HTML for the given runs, grouped by theme (runs of a theme in the order given).

    ``info`` describes each experiment (title, paper, theme, claim notes, captions; see
    :func:`genlab.report.catalog.registry_info`); ``titles`` alone is accepted for old callers.
    ``overlay`` adds, for every experiment with several of the runs, their curves on shared axes.
    """
    info = dict(info or {})
    for name, title in (titles or {}).items():
        info.setdefault(name, ExperimentInfo(title=title))
    runs = [r for r in (store.get_run(i) for i in run_ids) if r is not None]
    rep = _Report(store, runs, info)
    groups = rep.by_theme()
    counts = ClaimCount()
    for run in runs:
        counts = counts + count_claims(rep.verdicts[run["id"]])
    n_fail, failures = rep.failures()
    n_mon = sum(1 for r in runs if is_monitoring_run(r))
    sections = []
    for key, title, truns in groups:
        toc = " · ".join(f"<a href='#run-{r['id']}'>{_e(r['experiment'])}</a>" for r in truns)
        sections.append(
            f"<section id='theme-{_e(key)}' class=theme><h2>{_e(title)}</h2><p class=status>{toc} · "
            "<a href='#summary'>↑ summary</a></p>" + "".join(rep.run_section(r, key) for r in truns) + "</section>"
        )
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    fail_link = f" · <a href='#failures'>{n_fail} failure{'s' if n_fail != 1 else ''}</a>" if n_fail else " · no failures"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head><body id=top>"
        f"<h1>{_e(heading)}</h1><p class=status>genlab {_e(__version__)} · generated {generated} · "
        f"{len(runs)} runs in {len(groups)} themes</p>"
        f"<p class=headline><b>{_e(counts.summary())}</b>{fail_link}"
        + (f" · {n_mon} monitoring run{'s' if n_mon != 1 else ''} (measurements and findings, no claims)" if n_mon else "")
        + "</p>"
        "<p class=status>Counted are the papers' claims; preconditions (is the run in the paper's regime?) and "
        "findings (measured numbers the paper does not predict) are shown in each section, not counted.</p>"
        + rep.summary_table(groups) + failures + (_overlays(store, runs) if overlay else "") + "".join(sections)
        + "</body></html>"
    )


def _overlays(store: Store, runs: list[dict[str, Any]]) -> str:
    """One section per experiment with two or more of the runs: each shared series, all runs on one axes."""
    import io

    import matplotlib.pyplot as plt

    from genlab.report.compare import overlay_figures

    by_exp: dict[str, list[int]] = {}
    for r in runs:
        by_exp.setdefault(r["experiment"], []).append(r["id"])
    parts = []
    for name, ids in by_exp.items():
        if len(ids) < 2:
            continue
        figs = []
        for metric, fig in overlay_figures(store, ids):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            plt.close(fig)
            b64 = base64.b64encode(buf.getvalue()).decode("ascii")
            figs.append(f'<figure><img alt="{_e(metric)}" src="data:image/png;base64,{b64}"><figcaption>{_e(metric)}: '
                        f"runs {_e(', '.join(map(str, ids)))}</figcaption></figure>")
        links = " · ".join(f"<a href='#run-{i}'>run {i}</a>" for i in ids)
        parts.append(f"<section id='overlay-{_e(name)}'><h2>Overlay: {_e(name)}</h2><p class=status>{links}</p>"
                     + ("".join(figs) or "<p>no series recorded by all of these runs</p>")
                     + "<p class=back><a href='#summary'>↑ summary</a></p></section>")
    return "".join(parts) or "<p class=status>overlay: no experiment has two or more of these runs</p>"


def write_report(
    store: Store,
    run_ids: Iterable[int],
    out: str | os.PathLike[str],
    info: Mapping[str, ExperimentInfo] | None = None,
    heading: str = "genlab report",
    titles: Mapping[str, str] | None = None,
    overlay: bool = False,
) -> Path:
    """Write the report atomically (temporary file, then rename) and return its path."""
    text = render_report(store, run_ids, info=info, heading=heading, titles=titles, overlay=overlay)
    final = Path(out)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)
    return final


def write_run_page(home: str | os.PathLike[str], run_id: int, out: str | os.PathLike[str]) -> Path:
    """One run's page (a monitored training's dashboard, verdicts, config) from the store in ``home``."""
    with Store(home, create=False) as store:
        run = store.get_run(run_id)
        return write_report(store, [run_id], out, heading=f"genlab · {run['experiment'] if run else run_id}")
