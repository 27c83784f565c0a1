"""genlab.threads: usable CPUs from affinity and cgroup quota (fake files), the user's override,
and what the CLI and the sweep workers set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from genlab import threads as T
from genlab.errors import InputError


def _cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> Path:
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize("v2, v1, limit", [
    ("150000 100000", None, 1.5),  # cgroup v2: 1.5 CPUs
    ("max 100000", None, None),  # v2 unlimited
    ("200000", None, 2.0),  # v2 without a period: the default 100000 µs
    (None, ("300000", "100000"), 3.0),  # cgroup v1
    (None, ("-1", "100000"), None),  # v1 unlimited
    (None, None, None),  # no cgroup files
    ("garbage here", None, None),
])
def test_cgroup_limit_from_fake_files(tmp_path: Path, v2, v1, limit) -> None:
    assert T.cgroup_cpu_limit(_cgroup(tmp_path, v2, v1)) == limit


def test_usable_cpus_is_affinity_capped_by_quota_rounded_up(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert T.usable_cpus(_cgroup(tmp_path)) == 8  # no quota: the affinity set
    assert T.usable_cpus(_cgroup(tmp_path, "150000 100000")) == 2  # 1.5 CPUs of quota: 2 threads
    (tmp_path / "cpu.max").write_text("5000 100000")
    assert T.usable_cpus(tmp_path) == 1  # never below one
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    (tmp_path / "cpu.max").write_text("400000 100000")
    assert T.usable_cpus(tmp_path) == 1  # pinned to one CPU: the affinity wins over a larger quota


def test_share_divides_usable_cpus_unless_the_user_decides(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    root = _cgroup(tmp_path, "600000 100000")  # 6 CPUs of the 16 the host has
    assert T.thread_share(1, env={}, root=root) == 6
    assert T.thread_share(2, env={}, root=root) == 3
    assert T.thread_share(4, env={}, root=root) == 1  # 6 // 4
    assert T.thread_share(12, env={}, root=root) == 1  # never below one
    assert T.thread_share(2, env={"OMP_NUM_THREADS": "5"}, root=root) == 5  # the user's env, as given
    assert T.thread_share(2, env={"OMP_NUM_THREADS": "4,2"}, root=root) == 4  # nested list: the first level
    assert T.thread_share(2, env={"OMP_NUM_THREADS": "x"}, root=root) == 3  # not a count: ignored
    assert T.thread_share(2, requested=7, env={"OMP_NUM_THREADS": "5"}, root=root) == 7  # --threads wins
    with pytest.raises(InputError, match="--threads"):
        T.thread_share(2, requested=0, env={}, root=root)


def test_apply_sets_torch_threads_and_leaves_the_env() -> None:
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    try:
        assert T.apply_threads(2) == 2
        assert torch.get_num_threads() == 2
        assert os.environ.get("OMP_NUM_THREADS") == env
    finally:
        torch.set_num_threads(before)


def test_cli_rejects_zero_threads(capsys) -> None:
    from genlab.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "stable-minima", "--quick", "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_worker_init_applies_its_share(monkeypatch) -> None:
    """What a sweep worker's initializer sets (in this process; the signal handler put back)."""
    import signal

    from genlab.sweep.worker import init_worker

    before, handler = torch.get_num_threads(), signal.getsignal(signal.SIGINT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        init_worker(3)
        assert T.in_effect() == {"torch": 3, "OMP_NUM_THREADS": "3"}
    finally:
        torch.set_num_threads(before)
        signal.signal(signal.SIGINT, handler)


@pytest.mark.slow
def test_ray_workers_get_their_share(monkeypatch) -> None:
    """Ray tasks: --threads as given; a local instance without it: usable CPUs // slots. Run in a
    network namespace (``unshare -n sh -c 'ip link set lo up; python -m pytest -m slow ...'``)."""
    pytest.importorskip("ray")
    from genlab.sweep.executors import RayExecutor, _ray_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    ex = RayExecutor(workers=2)
    try:
        share = max(T.usable_cpus() // 2, 1)
        assert ex.threads == share
        assert ex._ray.get(ex._ray.remote(num_cpus=1)(_ray_threads).remote(ex.threads)) == {
            "torch": share, "OMP_NUM_THREADS": str(share)}
    finally:
        ex.close()
    ex = RayExecutor(workers=1, threads=3)
    try:
        assert ex.threads == 3
    finally:
        ex.close()


@pytest.mark.slow
def test_local_sweep_workers_get_their_share(monkeypatch) -> None:
    """A worker of the local executor runs with the share the driver computed: --threads as given;
    without it and without OMP_NUM_THREADS, usable CPUs // workers (torch threads and the env)."""
    from genlab.sweep.executors import LocalExecutor

    ex = LocalExecutor(workers=1, threads=3)
    try:
        assert ex.threads == 3
        assert ex._pool.apply_async(T.in_effect).get(60) == {"torch": 3, "OMP_NUM_THREADS": "3"}
    finally:
        ex.close()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = max(T.usable_cpus() // 2, 1)
    ex = LocalExecutor(workers=2)
    try:
        assert ex.threads == share
        got = [ex._pool.apply_async(T.in_effect).get(60) for _ in range(2)]
        assert got == [{"torch": share, "OMP_NUM_THREADS": str(share)}] * 2
    finally:
        ex.close()


@pytest.mark.slow
def test_run_applies_threads(tmp_path: Path) -> None:
    """``genlab run --threads 1`` runs the experiment with 1 torch thread (a tiny stable-minima run;
    the process had 3 before)."""
    from genlab.cli import main

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        try:
            main(["run", "stable-minima", "--threads", "1", "--home", str(tmp_path), "--set", "n=8", "--set", "width=8",
                  "--set", "step_sizes=[0.3]", "--set", "flow_time=150"])
        except SystemExit as exc:  # exit 1 when a verdict fails: the run happened all the same
            assert exc.code == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
