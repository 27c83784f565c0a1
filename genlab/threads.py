"""How many threads genlab's processes use: the CPUs genlab may use, shared among its workers.

On a machine shared with other jobs, or a container given part of the host, torch's default (one
intra-op thread per host core) oversubscribes: on a 2-core machine under load, 2 threads ran a
matmul 10× slower than 1 (issue 22). genlab therefore sets torch's intra-op threads to

    threads = usable CPUs // worker processes   (at least 1)

where the usable CPUs are the CPUs this process may run on (``os.sched_getaffinity``) capped by
the cgroup CPU quota (``cpu.max`` of cgroup v2, ``cpu.cfs_quota_us / cpu.cfs_period_us`` of v1,
rounded up) — not the host's count. The user decides instead when they pass ``--threads`` (the
CLI) or set ``OMP_NUM_THREADS``: that number is used for each process as given.

Only the CLI (``genlab run``, ``atlas``, ``sweep``) and the sweep workers apply this; importing
genlab changes nothing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

from genlab.errors import InputError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path | str = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when unlimited/unknown.

    cgroup v2: ``<root>/cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``; cgroup v1:
    ``<root>/cpu/cpu.cfs_quota_us`` (−1 = unlimited) and ``cpu.cfs_period_us``."""
    root = Path(root)
    text = _read(root / "cpu.max")
    if text is not None:
        parts = text.split()
        if len(parts) >= 1 and parts[0] != "max":
            try:
                quota, period = float(parts[0]), float(parts[1]) if len(parts) > 1 else 100000.0
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    q, p = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if q is None or p is None:
        return None
    try:
        quota, period = float(q), float(p)
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cpus(root: Path | str = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity set, capped by the cgroup quota (rounded up), ≥ 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(int(cpus), 1)


def env_threads(env: Mapping[str, str]) -> int | None:
    """The thread count the user set in ``OMP_NUM_THREADS`` (None when unset or not a count ≥ 1)."""
    value = env.get("OMP_NUM_THREADS", "").strip()
    if not value:
        return None
    try:
        n = int(value.split(",")[0])  # OpenMP allows a list (nested levels): the first is ours
    except ValueError:
        return None
    return n if n >= 1 else None


def thread_share(workers: int = 1, requested: int | None = None, env: Mapping[str, str] | None = None,
                 root: Path | str = CGROUP_ROOT) -> int:
    """Intra-op threads for each of ``workers`` genlab processes: ``requested`` (``--threads``) if
    given, else ``OMP_NUM_THREADS`` if set, else usable CPUs // workers (at least 1)."""
    if requested is not None:
        if not (isinstance(requested, int) and requested >= 1):
            raise InputError(f"--threads: got {requested!r}; must be an integer >= 1")
        return requested
    from_env = env_threads(os.environ if env is None else env)
    if from_env is not None:
        return from_env
    if not (isinstance(workers, int) and workers >= 1):
        raise InputError(f"workers: got {workers!r}; must be an integer >= 1")
    return max(usable_cpus(root) // workers, 1)


def apply_threads(threads: int) -> int:
    """Sets torch's intra-op threads (and the BLAS pools of numpy/scipy, when ``threadpoolctl`` is
    installed) to ``threads``. The environment is left alone (a driver's ``OMP_NUM_THREADS`` would
    read as the user's choice when its workers' share is computed)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return threads
    threadpool_limits(threads, user_api="blas")
    return threads


def fit_threads(workers: int = 1, requested: int | None = None) -> int:
    """:func:`thread_share` applied to this process; returns the number of threads set."""
    return apply_threads(thread_share(workers, requested))


__all__ = ["cgroup_cpu_limit", "usable_cpus", "env_threads", "thread_share", "apply_threads", "fit_threads"]


def in_effect() -> dict[str, object]:
    """The thread settings of this process (torch intra-op threads, ``OMP_NUM_THREADS``): for
    checks of what a worker was given."""
    import torch

    return {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
