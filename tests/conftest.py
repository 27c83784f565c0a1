"""Shared test fixtures: float64 tiny models, a temporary genlab home, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


def run_cli(*args: str, home: Path | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run ``genlab ARGS`` in a subprocess (the real entry point), capturing output."""
    cmd = [sys.executable, "-m", "genlab.cli", *args]
    if home is not None:
        cmd += ["--home", str(home)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "genlab-home"


def run_experiment(name: str, **overrides):
    """Run experiment ``name`` on a config with ``overrides`` in memory: the result must be
    JSON-able and every figure must render. Returns ``(result, verdicts)``."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlab.experiments import get_experiment
    from genlab.recorder import MemoryRecorder

    exp = get_experiment(name)
    config = exp.Config(**overrides)
    result = exp.run(config, MemoryRecorder())
    json.dumps(result)
    verdicts = exp.checks(config, result)
    figs = exp.figures(config, result)
    assert figs
    for fig in figs.values():
        fig.canvas.draw()
        plt.close(fig)
    return result, verdicts
