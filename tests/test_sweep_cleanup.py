"""A sweep whose driver is SIGKILLed leaves no process behind: its fork server and pool workers
exit (parent-death signal and a watchdog on the driver's pid) instead of computing points that
nobody will write."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genlab.store import Store

TINY = ["n=8", "width=8", "step_sizes=[0.3]", "flow_time=600"]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of children, …), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, stack = set(), [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in out:
                out.add(c)
                stack.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sigkill_leaves_nothing(tmp_path: Path, extra: list[str], wrap: list[str] | None = None, grace: float = 20.0) -> None:
    """Start a 40-point sweep, wait until a point runs, SIGKILL the driver (only it) and check that
    every process it started ends within ``grace`` seconds."""
    home = tmp_path / "home"
    args = [sys.executable, "-m", "genlab.cli", "sweep", "stable-minima", "--grid", "seed=0:40", *extra,
            "--home", str(home)]
    for kv in TINY:
        args += ["--set", kv]
    if wrap is not None:  # e.g. a loopback-only namespace whose shell execs the driver (same pid)
        args = [*wrap[:-1], f"{wrap[-1]} {shlex.join(args)}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.time() + 300
        running = False
        while time.time() < deadline and driver.poll() is None and not running:
            seen |= _descendants(driver.pid)
            if (home / "genlab.sqlite").exists():
                with Store(home) as s:
                    running = any(r["status"] == "running" for r in s.runs())
            time.sleep(0.1)
        time.sleep(1.0)
        seen |= _descendants(driver.pid)
        assert driver.poll() is None and running, "the sweep ended (or never started a point) before the kill"
        assert len(seen) >= 3, f"expected the driver's workers, saw {sorted(seen)}"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        t_kill = time.time()
        deadline = t_kill + grace  # the watchdog polls every 0.5 s; a worker may be mid-step
        while time.time() < deadline and any(_alive(p) for p in seen):
            time.sleep(0.2)
        print(f"last process of the killed sweep ended {time.time() - t_kill:.1f} s after the kill")
        survivors = {p: _cmdline(p) for p in seen if _alive(p)}
        assert not survivors, f"processes of the killed sweep still running: {survivors}"
    finally:
        if driver.poll() is None:
            driver.kill()
        for p in seen:  # only the processes this test started
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


@pytest.mark.slow
def test_sigkill_of_the_driver_leaves_no_worker(tmp_path: Path) -> None:
    _sigkill_leaves_nothing(tmp_path, ["--workers", "2"])


@pytest.mark.slow
def test_sigkill_of_a_ray_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    """The same with a local Ray instance, in a loopback-only network namespace. Ray's tasks and
    raylet go at once; its dashboard and runtime-env agents notice the raylet is gone on their own
    schedule (after some seconds on a loaded machine), hence the longer grace."""
    pytest.importorskip("ray")
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        pytest.skip("cannot create a loopback-only network namespace")
    _sigkill_leaves_nothing(tmp_path, ["--executor", "ray", "--workers", "2"],
                            wrap=["unshare", "-n", "sh", "-c", "ip link set lo up; exec"], grace=120.0)
