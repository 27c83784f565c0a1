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


def _memoized_make_dataset(make_dataset):
    """MNIST-1D's ``make_dataset`` generated once per argument set for the whole session (~4 s of
    CPU a call; several experiments and examples in the suite call it with the package defaults).
    A repeat call returns a deep copy of the first result and leaves the global ``random`` and
    ``numpy.random`` states where the generator leaves them (it seeds both), so callers see
    exactly what a fresh call gives them."""
    import copy
    import random

    import numpy as np

    done: dict = {}

    def make(args=None, template=None):
        if template is not None or args is None:
            return make_dataset(args, template)
        key = repr(sorted(vars(args).items()))
        if key not in done:
            out = make_dataset(args, template)
            done[key] = (copy.deepcopy(out), random.getstate(), np.random.get_state())
        out, py_state, np_state = done[key]
        random.setstate(py_state)
        np.random.set_state(np_state)
        return copy.deepcopy(out)

    make.__wrapped__ = make_dataset  # type: ignore[attr-defined]
    return make


@pytest.fixture(scope="session", autouse=True)
def _mnist1d_once():
    try:
        import mnist1d.data
    except ImportError:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mnist1d.data, "make_dataset", _memoized_make_dataset(mnist1d.data.make_dataset))
        yield


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
