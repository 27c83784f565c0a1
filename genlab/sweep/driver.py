"""The sweep driver: plan the points, skip the finished ones, dispatch the rest to an executor,
and write every result into the store from this one process.

A point is done when the store holds a ``finished`` or ``diverged`` run of the sweep with its
config hash; failed and interrupted points are run again (their old rows stay as history).
A run row is created when its point is dispatched (``running``) and completed when its result
comes back; on SIGINT/SIGTERM the points in flight are marked ``interrupted`` and the workers stopped.
A signal that arrives while a row and the table of points in flight change together (a point being
dispatched, a result being written) takes effect right after that step, so no row is left ``running``.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from genlab.config import build_config, config_hash, short_repr
from genlab.errors import InputError
from genlab.store import Store, Verdict
from genlab.sweep.grid import MAX_POINTS, grid_points, parse_grid, sweep_id

DONE = ("finished", "diverged")


@dataclass
class Point:
    index: int
    values: dict[str, Any]  # the grid values of this point
    config: dict[str, Any]  # the full validated config (JSON values)
    hash: str


@dataclass
class SweepPlan:
    experiment: str
    preset: str | None
    sweep: str
    grid: dict[str, list[Any]]
    sets: dict[str, Any]
    points: list[Point]


@dataclass
class SweepStats:
    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    interrupted: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.done - self.failed


def plan_sweep(
    experiment: str, preset: str | None, grid_items: Sequence[str], sets: dict[str, Any], max_points: int = MAX_POINTS
) -> SweepPlan:
    """Validate every point's config before anything is written (bad input is an InputError);
    a grid of more than ``max_points`` points is refused before it is expanded."""
    from genlab.experiments import get_experiment

    exp = get_experiment(experiment)
    grid = parse_grid(grid_items, max_points)
    both = sorted(set(grid) & set(sets))
    if both:
        raise InputError(f"--grid: key {both[0]!r} is also given with --set; give it once")
    points = []
    for i, values in enumerate(grid_points(grid)):
        try:
            cfg = build_config(exp.Config, preset, {**sets, **values})
        except InputError as exc:
            raise InputError(f"--grid point {short_repr(values, 120)}: {exc}") from None
        points.append(Point(i, values, cfg.model_dump(mode="json"), config_hash(cfg)))
    if len({p.hash for p in points}) != len(points):
        raise InputError("--grid: two points have the same config (a grid key that does not change the config?)")
    return SweepPlan(experiment, preset, sweep_id(experiment, preset, grid, sets), grid, sets, points)


def _write_result(store: Store, run_id: int, out: dict[str, Any]) -> None:
    from genlab.recorder import Recorder

    store.log_metrics(run_id, out.get("rows") or [])
    if out["status"] == "failed":
        store.finish_run(run_id, "failed", error=out.get("error") or "failed")
        return
    rec = Recorder(store, run_id)
    rec.save_json("result.json", out["result"])
    for name, (kind, data) in (out.get("files") or {}).items():
        rec.save_bytes(name, data, kind)
    store.add_checks(run_id, [Verdict(**v) for v in out["verdicts"]])
    for name, png in out["figures"].items():
        final = rec.run_dir / name
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        tmp.write_bytes(png)
        os.replace(tmp, final)
        store.add_artifact(run_id, "figure", name, final)
    store.finish_run(run_id, out["status"])


def _emit_progress(executor: Any, plan: SweepPlan, emit: Callable[..., None], stats: SweepStats) -> None:
    """Forward the running points' progress messages, the latest per point, as ``progress`` events."""
    latest: dict[Any, tuple[Any, str, int, int, str]] = {}
    for msg in getattr(executor, "progress", lambda: [])():
        latest[msg[0]] = msg
    for token, description, completed, total, unit in latest.values():
        if isinstance(token, int) and 0 <= token < len(plan.points):
            emit("progress", plan.points[token], stats,
                 {"description": description, "completed": completed, "total": total, "unit": unit})


class _Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM; a KeyboardInterrupt, so that libraries that poll for signals inside
    their own waits (Ray's ``ray.wait``) hand it on as they do Ctrl-C."""


class _Signals:
    """SIGINT and SIGTERM raise ``_Interrupted``, except inside :meth:`held`, where the signal is
    kept and raised when the held step is complete (Python runs signal handlers in the main thread
    between two bytecodes, so without this a Ctrl-C could fall between a store write and the
    bookkeeping of the points in flight)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._depth = 0
        self._pending: str | None = None
        self.received: str | None = None  # the last signal's name (Ray re-raises a plain KeyboardInterrupt)
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum: int, frame: Any) -> None:
        name = self.received = signal.Signals(signum).name
        if self._depth:
            self._pending = self._pending or name
            return
        raise _Interrupted(name)

    @contextmanager
    def held(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:
            name, self._pending = self._pending, None
            raise _Interrupted(name)

    def restore(self) -> None:
        """Put the previous handlers back (idempotent): a second Ctrl-C during cleanup is a plain one."""
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


def run_sweep(
    plan: SweepPlan,
    store: Store,
    executor: Any,
    on_event: Callable[[str, Point | None, SweepStats, dict[str, Any] | None], None] | None = None,
) -> SweepStats:
    """Run the plan's pending points on ``executor``; return the counts.

    ``on_event(kind, point, stats, out)`` is called with ``start`` (after planning), ``done`` /
    ``failed`` per point, and ``progress`` with ``out = {"description", "completed", "total",
    "unit"}`` when a running point's own progress bar moves (executors that report it). On SIGINT/SIGTERM the in-flight points are marked ``interrupted``, the
    executor is stopped and ``KeyboardInterrupt`` is raised."""
    finished = {r["config_hash"] for r in store.runs(sweep=plan.sweep) if r["status"] in DONE}
    pending = [p for p in plan.points if p.hash not in finished]
    stats = SweepStats(total=len(plan.points), skipped=len(plan.points) - len(pending))
    emit = on_event or (lambda *a: None)
    emit("start", None, stats, None)
    in_flight: dict[Any, tuple[Point, int]] = {}
    queue = list(pending)
    signals = _Signals()
    try:
        while queue or in_flight:
            while queue and len(in_flight) < executor.slots:
                with signals.held():  # the row and its entry in in_flight appear together
                    point = queue.pop(0)
                    run_id = store.create_run(
                        plan.experiment, point.config, point.hash, int(point.config.get("seed", 0)),
                        preset=plan.preset, sweep=plan.sweep,
                    )
                    in_flight[executor.submit(plan.experiment, point.config, token=point.index)] = (point, run_id)
            _emit_progress(executor, plan, emit, stats)
            for handle, out in executor.wait(list(in_flight), timeout=0.5):
                with signals.held():  # a result leaves in_flight when its row is complete
                    point, run_id = in_flight.pop(handle)
                    _write_result(store, run_id, out)
                    failed = out["status"] == "failed"
                    if failed:
                        stats.failed += 1
                        stats.errors.append(f"point {point.values}: {out.get('summary') or 'failed'}")
                    else:
                        stats.done += 1
                emit("failed" if failed else "done", point, stats, out)
    except KeyboardInterrupt:  # _Interrupted too
        signals.restore()
        for point, run_id in in_flight.values():
            store.finish_run(run_id, "interrupted", error=f"sweep interrupted ({signals.received or 'SIGINT'})")
        stats.interrupted = len(in_flight)
        executor.close(cancel=True)
        raise KeyboardInterrupt(stats) from None
    finally:
        signals.restore()
    executor.close()
    return stats


def sweep_runs(store: Store, sweep: str) -> list[dict[str, Any]]:
    """The latest finished or diverged run of every point of a sweep (one per config hash)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in store.runs(sweep=sweep):
        if r["status"] in DONE:
            latest[r["config_hash"]] = r
    return sorted(latest.values(), key=lambda r: r["id"])


def known_sweeps(store: Store) -> list[str]:
    return sorted({r["sweep"] for r in store.runs() if r.get("sweep")})
