"""The ``genlab sweep`` and ``genlab sweep-report`` commands (registered on the CLI group in genlab.cli)."""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rich.markup import escape

from genlab.cli_options import preset_options, threads_option
from genlab.config import short_repr
from genlab.errors import InputError
from genlab.paths import check_out_path
from genlab.store import Store, resolve_home
from genlab.sweep.grid import MAX_POINTS


def _home_option(f: Any) -> Any:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="genlab home folder (default: $GENLAB_HOME or ./genlab-runs)",
    )(f)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def named_plan(plan: Any, sweep_name: str, home: Path | None) -> Any:
    """The plan under a readable id; a name already used by other points (another grid or
    experiment) is refused, so one name never mixes two sweeps. Nothing is written."""
    if not _NAME.fullmatch(sweep_name):
        raise InputError(f"--name: {sweep_name!r} must be 1–64 letters, digits, '.', '_' or '-' (starting with a letter or digit)")
    db = resolve_home(home) / "genlab.sqlite"
    if db.exists():
        hashes = {p.hash for p in plan.points}
        for r in Store(home).runs(sweep=sweep_name):
            if r["experiment"] != plan.experiment or r["config_hash"] not in hashes:
                raise InputError(f"--name: sweep {sweep_name!r} already holds other points "
                                 f"({r['experiment']} run {r['id']}); pick another name")
    return dataclasses.replace(plan, sweep=sweep_name)


def point_progress_text(running: dict[int, dict[str, Any]], limit: int = 3) -> str:
    """The running points' own progress, e.g. ``point 3: 1200/3000 steps (40%)``, at most ``limit``
    points (then ``+k more``)."""
    parts = []
    for index in sorted(running)[:limit]:
        p = running[index]
        total = max(int(p["total"]), 0)
        pct = f" ({100 * min(p['completed'], total) // total}%)" if total else ""
        parts.append(f"point {index}: {p['completed']}/{total} {p['unit']}{pct}")
    if len(running) > limit:
        parts.append(f"+{len(running) - limit} more")
    return " · ".join(parts)


@click.command("sweep", short_help="Run an experiment over a grid of configs (resumable).")
@click.argument("name")
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2,…|KEY=A:B", help="a swept key (repeatable); A:B is A, …, B−1")
@preset_options("the quick preset at every point", "the full preset at every point")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a fixed config value (repeatable)")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="where points run")
@click.option("--workers", type=click.IntRange(1, 1024), default=None, help="points in parallel (default: the CPUs genlab may use — affinity, cgroup quota —, or the Ray cluster's CPUs)")
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
@threads_option
@click.option("--name", "sweep_name", default=None, metavar="NAME",
              help="a readable sweep id (letters, digits, . _ -); the same --name resumes it (default: a hash of the grid)")
@click.option("--max-points", type=click.IntRange(1, 10**7), default=MAX_POINTS, show_default=True,
              help="refuse a grid of more points than this (counted before anything runs)")
@_home_option
def sweep_cmd(name: str, grids: tuple[str, ...], preset: str | None, sets: tuple[str, ...], executor: str,
              workers: int | None, address: str | None, threads: int | None, sweep_name: str | None, max_points: int,
              home: Path | None) -> None:
    """Run experiment NAME at every point of the grid (resumable: the same command skips finished points)."""
    from genlab.cli import err, out
    from genlab.config import parse_assignments
    from genlab.sweep.driver import run_sweep, plan_sweep
    from genlab.sweep.executors import make_executor

    plan = plan_sweep(name, preset, list(grids), parse_assignments(list(sets)), max_points)
    if workers is not None and workers < 1:
        raise InputError(f"--workers: must be >= 1, got {workers}")
    if address and executor != "ray":
        raise InputError("--address: only with --executor ray")
    if executor == "ray":
        from genlab.sweep.executors import RAY_HINT, ray_available

        if not ray_available():
            raise InputError(f"--executor ray: Ray is not installed; {RAY_HINT}")
    if sweep_name is not None:
        plan = named_plan(plan, sweep_name, home)
    store = Store(home)
    ex = make_executor(executor, workers, address, threads)
    err.print(f"sweep [bold]{plan.sweep}[/]: {len(plan.points)} points of {name} ({preset or 'default'} preset) "
              f"on {executor} ({ex.slots} slots, {getattr(ex, 'threads', 1)} threads each) into {escape(str(store.home))}")
    live = err.is_terminal
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("points ·"),
               TextColumn("{task.fields[failed]} failed · {task.fields[remaining]} remaining"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[running]}"))
    t0 = time.time()
    with Progress(*columns, console=err, disable=not live, transient=False) as progress:
        task = progress.add_task(plan.sweep, total=len(plan.points), failed=0, remaining=len(plan.points), running="")
        running: dict[int, dict[str, Any]] = {}

        def on_event(kind: str, point: Any, stats: Any, res: Any) -> None:
            if kind == "progress":
                running[point.index] = res
            elif point is not None:
                running.pop(point.index, None)
            progress.update(task, completed=stats.skipped + stats.done + stats.failed, failed=stats.failed,
                            remaining=stats.remaining, running=escape(point_progress_text(running)))
            if kind == "progress":
                return
            if kind == "start" and stats.skipped:
                err.print(f"{stats.skipped} points already finished: skipped")
            if kind in ("done", "failed") and not live:
                what = res["status"] if kind == "done" else f"FAILED ({res.get('summary')})"
                err.print(f"point {point.index} {escape(str(point.values))}: {escape(str(what))} in {res['seconds']:.1f} s "
                          f"[{stats.done + stats.skipped} done, {stats.failed} failed, {stats.remaining} remaining]")

        try:
            stats = run_sweep(plan, store, ex, on_event)
        except KeyboardInterrupt as exc:
            s = exc.args[0] if exc.args else None
            if s is not None:
                err.print(f"sweep {plan.sweep} interrupted: {s.done + s.skipped} done, {s.failed} failed, "
                          f"{s.interrupted} in flight marked interrupted; run the same command to resume")
            raise KeyboardInterrupt from None
    out.print(f"sweep {plan.sweep}: {stats.done + stats.skipped}/{stats.total} points done "
              f"({stats.skipped} skipped as already finished), {stats.failed} failed, in {time.time() - t0:.1f} s")
    out.print(f"report: genlab sweep-report {plan.sweep}" + (f" --home {escape(str(home))}" if home else ""))
    if stats.failed:
        for line in stats.errors:
            err.print(f"[red]{escape(line)}[/]")
        sys.exit(1)


@click.command("sweep-report", short_help="Write a sweep's HTML tables of claims and metrics.")
@click.argument("sweep")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write (default: HOME/sweep-SWEEP.html)")
@_home_option
def sweep_report_cmd(sweep: str, out_path: Path | None, home: Path | None) -> None:
    """Write one HTML page for SWEEP: a claims table and a metrics table with a row per grid cell (intervals over
    seeds: min–max below 5 seeds, a 95% bootstrap from 5), links to the runs, each metric against each swept key."""
    from genlab.cli import out
    from genlab.sweep.driver import known_sweeps
    from genlab.sweep.report import write_sweep_report

    check_out_path(out_path)
    path = resolve_home(home) / "genlab.sqlite"
    if not path.exists():
        raise InputError(f"--home: no genlab store in {resolve_home(home)}")
    store = Store(home)
    sweeps = known_sweeps(store)
    if sweep not in sweeps:
        raise InputError(f"SWEEP: no sweep {short_repr(sweep)} in the store; known: {', '.join(sweeps[:20]) or 'none'}")
    written = write_sweep_report(store, sweep, out_path or store.home / f"sweep-{sweep}.html")
    out.print(f"wrote {escape(str(written))}")
