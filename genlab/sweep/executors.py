"""Where sweep points run: ``local`` (a process pool on this machine) or ``ray`` (Ray tasks).

Both run :func:`genlab.sweep.worker.run_point` and hand its result back to the driver, which
alone writes the store. The driver keeps at most ``slots`` points in flight, so a point in
flight is a point running, and an interruption marks exactly those as interrupted.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any, Protocol

from genlab.errors import InputError
from genlab.store import process_start
from genlab.sweep.worker import init_worker, run_point
from genlab.threads import env_threads, thread_share, usable_cpus

RAY_HINT = "install it with: pip install 'genlab[ray]'  (or: pip install 'ray[default]')"


class Executor(Protocol):
    slots: int

    def submit(self, name: str, config: dict[str, Any], token: Any = None) -> Any: ...

    def progress(self) -> list[tuple[Any, str, int, int, str]]: ...

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]: ...

    def close(self, cancel: bool = False) -> None: ...


class LocalExecutor:
    """A process pool of ``workers`` processes (default: the CPUs genlab may use), each with its
    share of threads (:func:`genlab.threads.thread_share`: ``threads`` if given, else
    ``OMP_NUM_THREADS``, else usable CPUs // workers). Worker processes ignore SIGINT;
    ``close(cancel=True)`` terminates them."""

    def __init__(self, workers: int | None = None, threads: int | None = None):
        self.slots = int(workers or usable_cpus())
        self.threads = thread_share(self.slots, threads)
        threads = self.threads
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["genlab.sweep.worker", "genlab.sweep._preload"])
        driver = (os.getpid(), process_start(os.getpid()))
        self._progress = ctx.Queue()  # the points' own progress, (token, description, completed, total, unit)
        self._pool = ctx.Pool(self.slots, initializer=init_worker, initargs=(threads, driver, self._progress))

    def submit(self, name: str, config: dict[str, Any], token: Any = None) -> Any:
        return self._pool.apply_async(run_point, (name, config, token))

    def progress(self) -> list[tuple[Any, str, int, int, str]]:
        """The progress messages the running points sent since the last call (oldest first)."""
        return _drain(self._progress)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while True:
            done = [h for h in handles if h.ready()]
            if done or time.monotonic() >= deadline:
                return [(h, _get_local(h)) for h in done]
            time.sleep(0.05)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._pool.terminate()
        else:
            self._pool.close()
        self._pool.join()
        self._progress.close()
        self._progress.cancel_join_thread()


def _drain(queue: Any, limit: int = 10_000) -> list[Any]:
    import queue as q

    out = []
    while len(out) < limit:
        try:
            out.append(queue.get_nowait())
        except (q.Empty, OSError, ValueError):  # empty, or closed
            break
    return out


def _get_local(handle: Any) -> dict[str, Any]:
    try:
        return handle.get()
    except Exception as exc:  # the worker died or the result could not be sent back
        return {"status": "failed", "rows": [], "result": None, "verdicts": [], "figures": {},
                "error": f"worker error: {type(exc).__name__}: {exc}", "summary": f"{type(exc).__name__}: {exc}",
                "seconds": 0.0}


class InlineExecutor:
    """Runs each point in this process when it is submitted (one slot): for tests and debugging."""

    slots = 1

    def __init__(self) -> None:
        self._events: list[tuple[Any, str, int, int, str]] = []

    def submit(self, name: str, config: dict[str, Any], token: Any = None) -> Any:
        return _Done(run_point(name, config, token, progress=self._events.append))

    def progress(self) -> list[tuple[Any, str, int, int, str]]:
        out, self._events = self._events, []
        return out

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        return [(h, h.out) for h in handles]

    def close(self, cancel: bool = False) -> None:
        pass


class _Done:
    def __init__(self, out: dict[str, Any]):
        self.out = out


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class RayExecutor:
    """Ray tasks: ``ray.init(address=address)`` on a cluster, or a local Ray instance when
    ``address`` is None (``workers`` CPUs, default all). Slots = ``workers`` or the cluster's CPUs.
    Each task declares one CPU; its threads: ``threads`` if given, else ``OMP_NUM_THREADS``, else on
    a local instance this machine's usable CPUs // slots, on a cluster 1 (one CPU per task)."""

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int | None = None):
        try:
            import ray
        except ImportError:
            raise InputError(f"--executor ray: Ray is not installed; {RAY_HINT}") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                ray.init(address=address, **kwargs)
            else:
                # a local instance: its processes take the node address 127.0.0.1, so they listen on
                # loopback only (tests/test_ray_addresses.py records every socket)
                ray.init(num_cpus=workers or usable_cpus(), _node_ip_address="127.0.0.1", **kwargs)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = int(workers or cpus)
        if threads is None and address:
            self.threads = env_threads(os.environ) or 1  # the cluster's nodes are not this machine
        else:
            self.threads = thread_share(self.slots, threads)
        self._remote = ray.remote(num_cpus=1)(_ray_point)
        self._pending: set[Any] = set()

    def submit(self, name: str, config: dict[str, Any], token: Any = None) -> Any:
        ref = self._remote.remote(name, config, self.threads)
        self._pending.add(ref)
        return ref

    def progress(self) -> list[tuple[Any, str, int, int, str]]:
        """Ray tasks report no progress inside a point (only their completion)."""
        return []

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, dict[str, Any]]]:
        ready, _ = self._ray.wait(list(handles), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            self._pending.discard(ref)
            try:
                out.append((ref, self._ray.get(ref)))
            except Exception as exc:  # task crashed (worker died, object lost)
                out.append((ref, {"status": "failed", "rows": [], "result": None, "verdicts": [], "figures": {},
                                  "error": f"ray task error: {exc}", "summary": f"{type(exc).__name__}",
                                  "seconds": 0.0}))
        return out

    def close(self, cancel: bool = False) -> None:
        """Shut the local Ray instance down; with ``cancel`` first cancel the tasks in flight (on a
        cluster they would run on otherwise). A driver killed outright ends its Ray job, and Ray
        then kills the job's workers."""
        if cancel:
            for ref in list(self._pending):
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # already finished or lost
                    pass
            self._pending.clear()
        if self._started:
            self._ray.shutdown()


def _ray_point(name: str, config: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    init_worker(threads)
    return run_point(name, config)


def _ray_threads(threads: int) -> dict[str, Any]:
    """What a Ray task set up like a point's (``init_worker(threads)``) runs with (for checks)."""
    from genlab.threads import in_effect

    init_worker(threads)
    return in_effect()


def make_executor(kind: str, workers: int | None = None, address: str | None = None,
                  threads: int | None = None) -> Executor:
    """The executor called ``kind`` (``local`` or ``ray``); bad options are an InputError."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers: must be >= 1, got {workers}")
    if kind == "local":
        if address:
            raise InputError("--address: only with --executor ray")
        return LocalExecutor(workers, threads)
    if kind == "ray":
        return RayExecutor(address, workers, threads)
    raise InputError(f"--executor: {kind!r} unknown; allowed: local, ray")
