"""Provenance of a run: the versions it ran with and the command that reproduces it.

Kept beside each run as ``provenance.json`` (an artifact of kind ``provenance``) and shown in
the report. Imports no torch: the torch version is read from the installed distribution.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from genlab import __version__


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the git checkout genlab runs from (``+dirty`` if it has changes), else None."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "genlab"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "") if commit else None


def _invocation() -> str | None:
    """The command line of this process as typed (``python -m genlab.cli`` shown as ``genlab``)."""
    if not sys.argv or not sys.argv[0]:
        return None
    prog = Path(sys.argv[0]).name
    prog = "genlab" if prog in ("cli.py", "__main__.py") else prog
    return shlex.join([prog, *sys.argv[1:]])


def _cli_value(value: Any) -> str:
    """A config value as ``--set`` reads it back (JSON is YAML; a bare string stays bare)."""
    if isinstance(value, str) and value and value == value.strip() and not any(c in value for c in ",:[]{}#'\"") \
            and value.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "~"):
        try:
            float(value)
        except ValueError:
            return value
    return json.dumps(value)


def reproduce_command(
    experiment: str, preset: str | None, config: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> str:
    """``genlab run EXPERIMENT [--quick|--full] --seed S --set k=v …`` giving exactly ``config``.

    Keys equal in ``baseline`` (the preset's config) are left out; without a baseline every
    key is set, which reproduces the run whatever the defaults are.
    """
    words = ["genlab", "run", experiment]
    if preset in ("quick", "full"):
        words.append(f"--{preset}")
    words += ["--seed", str(config.get("seed", 0))]
    for key in sorted(config):
        if key == "seed" or (baseline is not None and key in baseline and baseline[key] == config[key]):
            continue
        words += ["--set", f"{key}={_cli_value(config[key])}"]
    return shlex.join(words)


def collect(experiment: str, preset: str | None, config: Mapping[str, Any],
            baseline: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Versions (genlab, torch, numpy, Python), platform, git commit and the reproducing command."""
    return {
        "genlab": __version__,
        "torch": _dist_version("torch"),
        "numpy": _dist_version("numpy"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "git_commit": git_commit(),
        "argv": _invocation(),
        "command": reproduce_command(experiment, preset, config, baseline),
    }


def stored(store: Any, run: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run's provenance (its ``provenance.json``), always with a ``command``: a run
    recorded without one (older runs, sweep points) gets the command built from its config."""
    prov: dict[str, Any] = {}
    for a in store.artifacts(run["id"], kind="provenance"):
        try:
            prov = json.loads(Path(a["path"]).read_text())
        except (OSError, ValueError):
            pass
    if not prov.get("command"):
        prov["command"] = reproduce_command(run["experiment"], run.get("preset"), run["config"])
    return prov


__all__ = ["collect", "git_commit", "reproduce_command", "stored"]
