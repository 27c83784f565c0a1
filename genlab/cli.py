"""The ``genlab`` command line — the only code that talks to the terminal.

Bad input (unknown experiment or key, wrong type, out-of-range value, unreadable YAML) gets one
line naming the field and what is allowed, exit code 2, and nothing written.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from genlab import __version__
from genlab.cli_options import preset_options, threads_option
from genlab.errors import InputError
from genlab.paths import check_out_path
from genlab.store import Store, claim_outcome, count_claims, is_monitoring_run, resolve_home

_OUTCOME_STYLE = {"pass": "green", "met": "green", "FAIL": "red", "NOT MET": "red", "not tested": "yellow", "finding": "dim"}

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

HOME_OPTION = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="genlab home folder (default: $GENLAB_HOME or ./genlab-runs)",
)
RUN_ID = click.IntRange(1, 2**63 - 1)
"""A run id: SQLite's integer range (a larger number cannot name a run)."""


@contextmanager
def _progress_bar(description: str, total: int, unit: str = "steps") -> Iterator[Any]:
    """A rich progress bar on stderr counting ``unit`` (silent when stderr is not a terminal)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(escape(unit)),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, disable=not err.is_terminal, transient=True) as progress:
        task = progress.add_task(escape(description), total=total)

        class _Bar:
            def advance(self, n: int = 1) -> None:
                progress.advance(task, n)

        yield _Bar()


def _open_store(home: Path | None, must_exist: bool = False) -> Store | None:
    path = resolve_home(home) / "genlab.sqlite"
    if must_exist and not path.exists():
        return None
    return Store(home)


def _build(name: str, preset: str | None, config_file: Path | None, sets: Sequence[str], seed: int | None):
    from genlab.config import build_config, load_yaml, parse_assignments
    from genlab.experiments import get_experiment

    exp = get_experiment(name)
    overrides: dict[str, Any] = {}
    if config_file is not None:
        overrides.update(load_yaml(config_file))
    overrides.update(parse_assignments(list(sets)))
    if seed is not None:
        overrides["seed"] = seed
    return exp, build_config(exp.Config, preset, overrides)


def _verdict_table(verdicts: Sequence[Any], title: str) -> Table:
    """Verdicts with their tolerance; every stored string escaped (Rich reads ``[...]`` as markup)."""
    table = Table(title=escape(title), show_lines=False, expand=False)
    for col in ("claim", "predicted", "measured", "tolerance", "verdict"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        outcome = claim_outcome(v, verdicts)
        label = f"[{_OUTCOME_STYLE[outcome]}]{escape(outcome)}[/]"
        claim = escape(v.claim if v.kind == "claim" else f"{v.kind}: {v.claim}")
        table.add_row(claim, escape(v.predicted), escape(v.measured), escape(v.tolerance), label)
    return table


def _home_args(home: Path | None) -> str:
    return f" --home {home}" if home else ""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="genlab")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """genlab: measure, reproduce and check what gradient descent finds and why it generalizes."""
    if ctx.invoked_subcommand is None:  # bare `genlab`: the help, as `genlab --help` prints it
        click.echo(ctx.get_help())


@cli.command("list", short_help="List the experiments; with NAME, its config keys and presets.")
@click.argument("name", required=False)
def list_cmd(name: str | None) -> None:
    """List the registered experiments; with NAME, that experiment's config keys (types, defaults,
    allowed values, quick and full presets)."""
    from genlab.experiments import get_experiment, registry, themes

    if name is not None:
        from genlab.config_table import config_rows

        exp = get_experiment(name)
        out.print(f"[bold]{escape(exp.name)}[/] · {escape(exp.title)}")
        out.print(f"paper: {escape(exp.paper)}")
        table = Table(title=escape(f"{exp.name} config (genlab run {exp.name} --set KEY=VALUE)"))
        for col in ("key", "type", "default", "allowed", "quick", "full", "meaning"):
            table.add_column(col, overflow="fold")
        for row in config_rows(exp.Config):
            table.add_row(*(escape(str(c)) for c in row))
        out.print(table)
        return

    titles = {key: t.title for key, t in themes().items()}
    table = Table(title="experiments")
    table.add_column("theme")
    table.add_column("name")
    table.add_column("title", overflow="fold")
    table.add_column("paper", overflow="fold")
    for name, exp in registry().items():
        table.add_row(escape(titles.get(exp.theme, exp.theme)), escape(name), escape(exp.title), escape(exp.paper))
    out.print(table)


@cli.command("run", short_help="Run one experiment into the store and print its verdicts.")
@click.argument("name")
@preset_options("the quick preset (5–25 s of CPU per experiment, measured on a 2-core AMD EPYC VM)",
                "the full preset (the paper's scale where feasible; minutes to hours)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override one config value (repeatable)")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="YAML file of config values")
@click.option("--seed", type=int, default=None, help="seed of the run")
@threads_option
@HOME_OPTION
def run_cmd(name: str, preset: str | None, sets: tuple[str, ...], config_file: Path | None, seed: int | None,
            threads: int | None, home: Path | None) -> None:
    """Run experiment NAME into the store and print its verdicts (config keys: genlab list NAME)."""
    from genlab.runner import execute
    from genlab.threads import fit_threads

    exp, config = _build(name, preset, config_file, sets, seed)
    fit_threads(1, threads)
    store = Store(home)
    err.print(f"running [bold]{escape(name)}[/] ({preset or 'default'} preset) into {escape(str(store.home))}")
    t0 = time.time()
    outcome = execute(name, config, store, preset=preset, progress_factory=_progress_bar)
    if outcome.status == "failed":
        err.print(f"[red]run {outcome.run_id} failed[/]: {escape(str(outcome.error))}")
        err.print(f"details: genlab show {outcome.run_id}{escape(_home_args(home))}")
        sys.exit(1)
    out.print(_verdict_table(outcome.verdicts, f"{name} · run {outcome.run_id} · {outcome.status} · {time.time() - t0:.1f} s"))
    counted = count_claims(outcome.verdicts)
    style = "red" if counted.failed else ("yellow" if counted.not_tested else "green")
    out.print(f"[{style}]{escape(counted.summary())}[/]")
    out.print(f"next: genlab report {outcome.run_id}{escape(_home_args(home))}   (HTML with figures; genlab show {outcome.run_id} for metrics)")


@cli.command("runs", short_help="List the runs in the store (filter by experiment or sweep).")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--experiment", default=None, help="only runs of this experiment")
@click.option("--sweep", default=None, help="only the points of this sweep ('-': only runs outside sweeps)")
@HOME_OPTION
def runs_cmd(as_json: bool, experiment: str | None, sweep: str | None, home: Path | None) -> None:
    """List the runs in the store (the sweep column names the sweep a run is a point of)."""
    from genlab.errors import did_you_mean

    store = _open_store(home, must_exist=True)
    if experiment is not None:
        from genlab.experiments import registry

        known = set(registry()) | ({r["experiment"] for r in store.runs()} if store else set())
        if experiment not in known:
            raise InputError(f"--experiment: {experiment!r} unknown;{did_you_mean(experiment, known)} allowed: {', '.join(sorted(known))}")
    if sweep is not None and sweep != "-":
        sweeps = sorted({r["sweep"] for r in store.runs() if r.get("sweep")}) if store else []
        if sweep not in sweeps:
            raise InputError(f"--sweep: no sweep {sweep!r} in the store;{did_you_mean(sweep, sweeps)} known: {', '.join(sweeps) or 'none'}")
    runs = [] if store is None else store.runs(experiment=experiment, sweep=None if sweep == "-" else sweep)
    if sweep == "-":
        runs = [r for r in runs if not r.get("sweep")]
    if as_json:
        for r in runs:
            r["passed"] = [v.passed for v in store.checks(r["id"])] if store else []
        click.echo(json.dumps(runs, indent=1))
        return
    table = Table(title=escape(f"runs in {resolve_home(home)}"))
    for col in ("id", "experiment", "status", "preset", "seed", "sweep", "started", "seconds", "claims"):
        table.add_column(col)
    for r in runs:
        verdicts = store.checks(r["id"]) if store else []
        seconds = f"{(r['ended'] or time.time()) - r['started']:.1f}"
        counted = count_claims(verdicts)
        checks = f"{counted.passed}/{counted.passed + counted.failed} pass" if counted.passed + counted.failed else "-"
        if counted.not_tested:
            checks += f", {counted.not_tested} not tested"
        if is_monitoring_run(r) and not counted.total:
            checks = "monitoring run"
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"]))
        table.add_row(str(r["id"]), escape(r["experiment"]), escape(r["status"]), escape(r.get("preset") or "-"), str(r["seed"]),
                      escape(r.get("sweep") or "-"), started, seconds, checks)
    out.print(table)


def _get_run(store: Store | None, run_id: int) -> dict[str, Any]:
    run = None if store is None else store.get_run(run_id)
    if run is None:
        raise InputError(f"RUN: no run with id {run_id} in the store")
    return run


@cli.command("show")
@click.argument("run_id", metavar="RUN", type=RUN_ID)
@click.option("--json", "as_json", is_flag=True, help="print JSON: config, verdicts, final metrics")
@HOME_OPTION
def show_cmd(run_id: int, as_json: bool, home: Path | None) -> None:
    """Show one run: config, verdicts and final metrics."""
    store = _open_store(home, must_exist=True)
    run = _get_run(store, run_id)
    assert store is not None
    verdicts = store.checks(run_id)
    final = store.final_metrics(run_id)
    if as_json:
        payload = dict(run)
        payload["verdicts"] = [v.as_dict() for v in verdicts]
        payload["final_metrics"] = final
        payload["artifacts"] = store.artifacts(run_id)
        click.echo(json.dumps(payload, indent=1, default=str))
        return
    out.print(f"[bold]run {run_id}[/] · {escape(run['experiment'])} · {escape(run['status'])} · seed {run['seed']}"
              + (f" · sweep {escape(run['sweep'])}" if run.get("sweep") else ""))
    out.print_json(json.dumps(run["config"]))
    from genlab.provenance import stored

    out.print(f"reproduce: {escape(stored(store, run)['command'])}")
    if verdicts:
        out.print(_verdict_table(verdicts, "verdicts"))
    table = Table(title="final metrics")
    table.add_column("name")
    table.add_column("value")
    for k, v in sorted(final.items()):
        table.add_row(escape(k), f"{v:.6g}")
    out.print(table)
    if is_monitoring_run(run) and not count_claims(verdicts).total:
        out.print(f"monitoring run: measurements and {len(verdicts)} findings, no claims to pass or fail")
    elif verdicts:
        out.print(escape(count_claims(verdicts).summary()))
    if run.get("error"):
        out.print(escape(run["error"]))


def _info() -> dict[str, Any]:
    from genlab.report.catalog import registry_info

    return registry_info()


@cli.command("report", short_help="Write one offline HTML report of runs (--overlay compares them).")
@click.argument("run_ids", metavar="[RUN]...", nargs=-1, type=RUN_ID)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="HTML file to write (default: HOME/report.html)")
@click.option("--overlay", is_flag=True, help="also draw the curves of the given runs of one experiment on shared axes")
@HOME_OPTION
def report_cmd(run_ids: tuple[int, ...], out_path: Path | None, overlay: bool, home: Path | None) -> None:
    """Write one self-contained HTML report of the given runs (default: the latest finished run of each
    experiment, sweep points left out)."""
    from genlab.report import write_report

    check_out_path(out_path)
    store = _open_store(home, must_exist=True)
    if store is None:
        raise InputError(f"--home: no genlab store in {resolve_home(home)}")
    ids = list(run_ids)
    for i in ids:
        _get_run(store, i)
    if not ids:  # the latest completed run of each experiment, sweep points left out
        latest: dict[str, int] = {}
        for r in store.runs():
            if r["status"] in ("finished", "diverged") and not r.get("sweep"):
                latest[r["experiment"]] = r["id"]
        ids = list(latest.values())
        if not ids:
            raise InputError("RUN: no finished run outside a sweep in the store; give run ids (genlab runs lists them)")
    if overlay and len(ids) < 2:
        raise InputError("--overlay: give two or more runs of one experiment")
    path = write_report(store, ids, out_path or store.home / "report.html", info=_info(), overlay=overlay)
    out.print(f"wrote {escape(str(path))}")


@cli.command("atlas", short_help="Run every experiment and write the atlas report.")
@preset_options("quick presets (the default)", "full presets (paper scale; hours)")
@click.option("--only", multiple=True, help="run only these experiments (repeatable)")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="HTML file (default: HOME/atlas.html)")
@threads_option
@HOME_OPTION
def atlas_cmd(preset: str | None, only: tuple[str, ...], out_path: Path | None, threads: int | None, home: Path | None) -> None:
    """Run every registered experiment and write one report: claims passing, a summary by theme,
    the failures, then each experiment (quick: every experiment's quick preset, about 7 min for its 54 experiments on 2 cores with OMP_NUM_THREADS=1, measured)."""
    from genlab.config import build_config
    from genlab.experiments import get_experiment, registry
    from genlab.report import write_report
    from genlab.runner import execute

    preset = preset or "quick"
    check_out_path(out_path)
    names = list(only) or list(registry())
    configs = {n: build_config(get_experiment(n).Config, preset) for n in names}
    from genlab.threads import fit_threads

    fit_threads(1, threads)  # the experiments run one after another in this process
    store = Store(home)
    ids, t0 = [], time.time()
    summary = Table(title=f"atlas ({preset})")
    for col in ("experiment", "run", "status", "claims passed", "seconds"):
        summary.add_column(col)
    for name in names:
        t1 = time.time()
        err.print(f"[bold]{escape(name)}[/] …")
        outcome = execute(name, configs[name], store, preset=preset, progress_factory=_progress_bar)
        ids.append(outcome.run_id)
        counted = count_claims(outcome.verdicts)
        summary.add_row(escape(name), str(outcome.run_id), outcome.status, f"{counted.passed}/{counted.passed + counted.failed}", f"{time.time() - t1:.1f}")
        if outcome.error:
            err.print(f"[red]{escape(name)} failed[/]: {escape(str(outcome.error))}")
    path = write_report(store, ids, out_path or store.home / "atlas.html", info=_info(), heading=f"genlab atlas ({preset})")
    out.print(summary)
    out.print(f"wrote {escape(str(path))} in {time.time() - t0:.1f} s")


from genlab.sweep.commands import sweep_cmd, sweep_report_cmd  # noqa: E402  (sweeps live in genlab.sweep)

cli.add_command(sweep_cmd)
cli.add_command(sweep_report_cmd)

from genlab.cli_data import diff_cmd, metrics_cmd  # noqa: E402  (data out and comparison)

cli.add_command(metrics_cmd)
cli.add_command(diff_cmd)

from genlab.cli_diagnose import diagnose_cmd  # noqa: E402  (a trained model of the user's)

cli.add_command(diagnose_cmd)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: bad input is one line on stderr and exit code 2."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="genlab", standalone_mode=False)
    except InputError as exc:
        click.echo(f"genlab: error: {exc}", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        msg = exc.format_message().replace("\n", " ")
        click.echo(f"genlab: error: {msg}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("genlab: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("genlab: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
