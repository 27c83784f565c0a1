"""One sweep point computed in a worker: run, checks and figures in memory, returned as plain data.

Workers never touch the store: the driver process writes everything (one writer)."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import traceback
from typing import Any

from genlab.store import process_alive

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PROGRESS_EVERY = 0.25  # seconds between two progress messages of a point (its last one always goes)

_progress_sink: Any = None  # where a pool worker sends its points' progress (set by init_worker)


class _PointBar:
    """A point's progress bar inside a worker: counts, and sends ``(token, description, completed,
    total, unit)`` to ``sink`` at most every PROGRESS_EVERY seconds and when it closes."""

    def __init__(self, sink: Any, token: Any, description: str, total: int, unit: str):
        self.sink, self.token, self.description, self.total, self.unit = sink, token, description, int(total), unit
        self.completed, self._last = 0, 0.0

    def _send(self) -> None:
        self._last = time.monotonic()
        try:
            self.sink((self.token, self.description, self.completed, self.total, self.unit))
        except Exception:  # progress is best effort: a full or closed channel never fails the point
            pass

    def advance(self, n: int = 1) -> None:
        self.completed += n
        if time.monotonic() - self._last >= PROGRESS_EVERY:
            self._send()

    def __enter__(self) -> "_PointBar":
        self._send()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._send()


def progress_factory(sink: Any, token: Any) -> Any:
    """A recorder progress factory whose bars report to ``sink(message)`` under ``token``."""

    def make(description: str, total: int, unit: str = "steps") -> _PointBar:
        return _PointBar(sink, token, description, total, unit)

    return make


def _parent_death_signal() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def watch_driver(pid: int, start: str | None, every: float = 0.5) -> threading.Thread:
    """A daemon thread that ends this process as soon as the driver ``pid`` is gone, so that a
    killed sweep (SIGKILL, OOM) leaves no worker computing points nobody will write."""

    def loop() -> None:
        while process_alive(pid, start):
            time.sleep(every)
        os._exit(0)

    thread = threading.Thread(target=loop, name="genlab-driver-watchdog", daemon=True)
    thread.start()
    return thread


def init_worker(threads: int = 1, driver: tuple[int, str | None] | None = None, progress: Any = None) -> None:
    """Pool initializer: the driver handles SIGINT (workers ignore it); ``threads`` intra-op threads
    (the worker's share of the CPUs, :mod:`genlab.threads`; also ``OMP_NUM_THREADS`` for its children).

    With ``driver = (pid, start)`` the worker dies with its parent (``PR_SET_PDEATHSIG``) and a
    watchdog thread ends it when the driver process is gone (its parent may be a fork server).
    ``progress``: a queue the points' progress messages go to (see :func:`run_point`)."""
    global _progress_sink
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if progress is not None:
        _progress_sink = progress.put_nowait
    if driver is not None:
        _parent_death_signal()
        watch_driver(*driver)
    from genlab.threads import apply_threads

    threads = max(int(threads), 1)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    apply_threads(threads)


def run_point(name: str, config: dict[str, Any], token: Any = None, progress: Any = None) -> dict[str, Any]:
    """Run experiment ``name`` with the validated ``config`` values.

    The experiment's own progress bars (``recorder.progress``) report ``(token, description,
    completed, total, unit)`` to ``progress(message)``, or to the pool's progress queue when the
    worker has one and ``token`` is given; without either they are silent.

    Returns ``status`` (finished/diverged/failed), ``rows`` (metric rows), ``result``,
    ``verdicts`` (dicts), ``figures`` (name → PNG bytes), ``error`` and ``seconds``. An exception
    inside the experiment is returned as ``status="failed"`` with its traceback."""
    t0 = time.time()
    from genlab.recorder import MemoryRecorder

    sink = progress or (_progress_sink if token is not None else None)
    recorder = MemoryRecorder(progress_factory(sink, token) if sink is not None else None)
    try:
        import torch

        from genlab.config import build_config
        from genlab.experiments import get_experiment
        from genlab.experiments._base import run_status

        exp = get_experiment(name)
        cfg = build_config(exp.Config, None, config)
        torch.manual_seed(cfg.seed)
        result = exp.run(cfg, recorder)
        verdicts = [v.as_dict() for v in exp.checks(cfg, result)]
        figures: dict[str, bytes] = {}
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from genlab.report.figures import legible

        for fname, fig in exp.figures(cfg, result).items():
            buf = io.BytesIO()
            legible(fig).savefig(buf, format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            figures[fname] = buf.getvalue()
        status = run_status(result)
        return {
            "status": status,
            "rows": recorder.rows,
            "result": result,
            "verdicts": verdicts,
            "figures": figures,
            "files": recorder.files,
            "error": None,
            "seconds": time.time() - t0,
        }
    except Exception as exc:  # a failing point is a recorded result; the sweep goes on
        return {
            "status": "failed",
            "rows": recorder.rows,
            "result": None,
            "verdicts": [],
            "figures": {},
            "error": "".join(traceback.format_exception(exc)),
            "summary": f"{type(exc).__name__}: {exc}",
            "seconds": time.time() - t0,
        }
