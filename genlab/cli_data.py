"""The ``genlab metrics`` and ``genlab diff`` commands (registered on the CLI group in genlab.cli):
any series of any run out of the store (table, CSV, JSON, a plot), and two runs compared."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from genlab.errors import InputError
from genlab.store import Store, resolve_home

_PLOT_FORMATS = ("svg", "png", "pdf")


def _home_option(f):  # type: ignore[no-untyped-def]
    return click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="genlab home folder (default: $GENLAB_HOME or ./genlab-runs)")(f)


def _store(home: Path | None) -> Store:
    if not (resolve_home(home) / "genlab.sqlite").exists():
        raise InputError(f"--home: no genlab store in {resolve_home(home)}")
    return Store(home)


def _run(store: Store, run_id: int) -> dict:
    run = store.get_run(run_id)
    if run is None:
        raise InputError(f"RUN: no run with id {run_id} in the store")
    return run


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.6g}"


@click.command("metrics", short_help="Print, export (CSV/JSON) or plot a run's metric series.")
@click.argument("run_id", metavar="RUN", type=int)
@click.argument("names", metavar="[NAME]...", nargs=-1)
@click.option("--csv", "as_csv", is_flag=True, help="print long-format CSV: run,step,name,value")
@click.option("--json", "as_json", is_flag=True, help="print JSON: {name: {step: [...], value: [...]}}")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="draw the series against step into this file (.svg, .png or .pdf)")
@_home_option
def metrics_cmd(run_id: int, names: tuple[str, ...], as_csv: bool, as_json: bool, plot_path: Path | None,
                home: Path | None) -> None:
    """The metric series of RUN: all of them, or the NAMEs given (exact names or globs like 'eta=0.1/*').

    Without --csv/--json: one line per series (points, steps, last value); with NAMEs, their values step by step."""
    from genlab.cli import out
    from genlab.report.compare import series

    if as_csv and as_json:
        raise click.UsageError("--csv and --json: give one of them, not both")
    if plot_path is not None and plot_path.suffix.lstrip(".").lower() not in _PLOT_FORMATS:
        raise InputError(f"--plot: {str(plot_path)!r} must end in one of .{', .'.join(_PLOT_FORMATS)}")
    store = _store(home)
    _run(store, run_id)
    data = series(store, run_id, names)
    if plot_path is not None:
        _plot(data, run_id, plot_path)
    if as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["run", "step", "name", "value"])
        for name, (steps, values) in data.items():
            for s, v in zip(steps, values):
                w.writerow([run_id, s, name, "" if math.isnan(v) else repr(v)])
        return
    if as_json:
        payload = {n: {"step": s, "value": [v if math.isfinite(v) else None for v in vals]} for n, (s, vals) in data.items()}
        click.echo(json.dumps({"run": run_id, "series": payload}, indent=1))
        return
    if names:
        steps = sorted({s for st, _ in data.values() for s in st})
        table = Table(title=escape(f"run {run_id}: {len(data)} series"))
        table.add_column("step")
        for n in data:
            table.add_column(escape(n))
        cols = {n: dict(zip(s, v)) for n, (s, v) in data.items()}
        for step in steps:
            table.add_row(str(step), *(_fmt(cols[n][step]) if step in cols[n] else "" for n in data))
    else:
        table = Table(title=escape(f"run {run_id}: {len(data)} metric series (genlab metrics {run_id} NAME… for values)"))
        for col in ("name", "points", "first step", "last step", "last value"):
            table.add_column(col)
        for n, (s, v) in data.items():
            table.add_row(escape(n), str(len(s)), str(s[0]), str(s[-1]), _fmt(v[-1]))
    out.print(table)
    if plot_path is not None:
        out.print(f"wrote {escape(str(plot_path))}")


def _plot(data: dict, run_id: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not data:
        raise InputError(f"--plot: run {run_id} has no metrics to draw")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, (steps, values) in data.items():
        ax.plot(steps, values, lw=1.3, label=name)
    ax.set_xlabel("step")
    ax.set_title(f"run {run_id}", fontsize=10)
    if len(data) <= 12:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


@click.command("diff", short_help="Compare two runs: config, claim outcomes, final metrics.")
@click.argument("a", metavar="A", type=int)
@click.argument("b", metavar="B", type=int)
@click.option("--all", "all_metrics", is_flag=True, help="list every shared final metric, not only the changed ones")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@_home_option
def diff_cmd(a: int, b: int, all_metrics: bool, as_json: bool, home: Path | None) -> None:
    """Compare runs A and B: config differences, claim outcomes (changed first), final-metric deltas."""
    from genlab.cli import _OUTCOME_STYLE, out
    from genlab.report.compare import diff_runs

    d = diff_runs(_store(home), a, b, all_metrics)
    if as_json:
        click.echo(json.dumps(d.as_dict(), indent=1, default=str))
        return
    out.print(f"[bold]run {a}[/] {escape(d.a['experiment'])} ({escape(d.a['status'])}) vs "
              f"[bold]run {b}[/] {escape(d.b['experiment'])} ({escape(d.b['status'])})")
    if d.config:
        t = Table(title="config: differing keys")
        for col in ("key", f"run {a}", f"run {b}"):
            t.add_column(col, overflow="fold")
        for k, x, y in d.config:
            t.add_row(escape(k), escape(json.dumps(x) if not isinstance(x, str) else x),
                      escape(json.dumps(y) if not isinstance(y, str) else y))
        out.print(t)
    else:
        out.print("config: identical")
    if d.verdicts:
        t = Table(title="verdicts (changed first)")
        for col in ("claim", f"run {a}", f"run {b}"):
            t.add_column(col, overflow="fold")
        for c, x, y in d.verdicts:
            mark = "" if x == y else " ←"
            t.add_row(escape(c), f"[{_OUTCOME_STYLE.get(x, 'dim')}]{escape(x)}[/]",
                      f"[{_OUTCOME_STYLE.get(y, 'dim')}]{escape(y)}[/]{mark}")
        out.print(t)
    if not d.metrics:
        out.print("final metrics: " + ("none shared" if all_metrics else "every shared one is equal"))
    t = Table(title="final metrics" + ("" if all_metrics else " that differ (--all for every one)"))
    for col in ("metric", f"run {a}", f"run {b}", "B − A", "relative"):
        t.add_column(col)
    for n, x, y in d.metrics:
        rel = (y - x) / abs(x) if x and math.isfinite(x) and math.isfinite(y) else float("nan")
        t.add_row(escape(n), _fmt(x), _fmt(y), _fmt(y - x), "" if math.isnan(rel) else f"{rel:+.2%}")
    if d.metrics:
        out.print(t)
    if d.only_a or d.only_b:
        out.print(escape(f"metrics only in run {a}: {len(d.only_a)}; only in run {b}: {len(d.only_b)}"))


__all__ = ["diff_cmd", "metrics_cmd"]
