"""Every socket a local Ray instance started by genlab opens is on the loopback address.

Ray's processes listen on the node's IP address; the Ray executor starts a local instance with
``_node_ip_address="127.0.0.1"``. This test runs the executor in a loopback-only network
namespace (``unshare -n``), so nothing it opens is reachable from outside even if it were
wrong, and records every TCP/UDP socket in the namespace (``/proc/net/*``) while a task runs.
Skipped when Ray is not installed or the namespace cannot be made (no ``unshare``/privileges).
Marked slow: starting Ray takes 10-60 s on a loaded 2-core machine."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from genlab.sweep.executors import RayExecutor
    from genlab.sweep.worker import run_point

    def sockets():
        out = set()
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = open(f"/proc/net/{proto}").read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                local = line.split()[1]
                out.add((proto, local))
        return out

    ex = RayExecutor(workers=1)
    seen = sockets()
    ref = ex._ray.remote(lambda: sorted(sockets())).remote()  # sockets seen from a worker too
    seen |= {tuple(s) for s in ex._ray.get(ref)}
    for _ in range(5):
        seen |= sockets()
        time.sleep(0.2)
    ex.close()
    print(json.dumps(sorted(seen)))
    """
)


def _address(proto: str, local: str) -> str:
    """The IP of a ``/proc/net`` local-address field (little-endian hex words)."""
    hexip = local.split(":")[0]
    raw = bytes.fromhex(hexip)
    if proto.endswith("6"):
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        return str(ip.ipv4_mapped or ip)
    return str(ipaddress.IPv4Address(raw[::-1]))


def test_address_parsing() -> None:
    assert _address("tcp", "0100007F:1F90") == "127.0.0.1"
    assert _address("tcp", "00000000:1F90") == "0.0.0.0"
    assert _address("tcp6", "0000000000000000FFFF00000100007F:9C41") == "127.0.0.1"
    assert _address("tcp6", "00000000000000000000000000000000:0016") == "::"


@pytest.mark.slow
def test_every_ray_socket_is_on_loopback(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip to make a loopback-only network namespace")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {probe.stderr.decode().strip()[:200]}")
    script = tmp_path / "ray_sockets.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = f"ip link set lo up; exec {sys.executable} {script}"
    r = subprocess.run(["unshare", "-n", "sh", "-c", cmd], capture_output=True, text=True, timeout=600, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(seen) >= 3, seen  # Ray's GCS, raylet and workers opened sockets: the recording worked
    off_loopback = sorted({(proto, _address(proto, local)) for proto, local in seen} - {(p, "127.0.0.1") for p, _ in seen})
    assert not off_loopback, f"sockets not on 127.0.0.1: {off_loopback}"
