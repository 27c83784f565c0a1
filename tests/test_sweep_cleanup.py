"""A sweep whose driver is SIGKILLed leaves no process behind: its fork server and pool workers
exit (parent-death signal and a watchdog on the driver's pid) instead of computing points that
nobody will write."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_sigkill_of_the_driver_leaves_no_worker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = [sys.executable, "-m", "genlab.cli", "sweep", "stable-minima", "--grid", "seed=0:40", "--workers", "2",
            "--home", str(home)]
    for kv in TINY:
        args += ["--set", kv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.time() + 120
        running = False
        while time.time() < deadline and driver.poll() is None and not running:
            seen |= _descendants(driver.pid)
            if (home / "genlab.sqlite").exists():
                with Store(home) as s:
                    running = any(r["status"] == "running" for r in s.runs())
            time.sleep(0.1)
        seen |= _descendants(driver.pid)
        assert driver.poll() is None and running, "the sweep ended (or never started a point) before the kill"
        assert len(seen) >= 3, f"expected a fork server and 2 workers, saw {sorted(seen)}"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
        deadline = time.time() + 20  # the watchdog polls every 0.5 s; a worker may be mid-step
        while time.time() < deadline and any(_alive(p) for p in seen):
            time.sleep(0.2)
        survivors = [p for p in seen if _alive(p)]
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
