"""One sweep point computed in a worker: run, checks and figures in memory, returned as plain data.

Workers never touch the store: the driver process writes everything (one writer)."""

from __future__ import annotations

import io
import os
import signal
import time
import traceback
from typing import Any


def init_worker(threads: int = 1) -> None:
    """Pool initializer: the driver handles SIGINT (workers ignore it); ``threads`` torch threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(max(int(threads), 1))


def run_point(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run experiment ``name`` with the validated ``config`` values.

    Returns ``status`` (finished/diverged/failed), ``rows`` (metric rows), ``result``,
    ``verdicts`` (dicts), ``figures`` (name → PNG bytes), ``error`` and ``seconds``. An exception
    inside the experiment is returned as ``status="failed"`` with its traceback."""
    t0 = time.time()
    from genlab.recorder import MemoryRecorder

    recorder = MemoryRecorder()
    try:
        import torch

        from genlab.config import build_config
        from genlab.experiments import get_experiment

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
        status = "diverged" if result.get("status") == "diverged" else "finished"
        return {
            "status": status,
            "rows": recorder.rows,
            "result": result,
            "verdicts": verdicts,
            "figures": figures,
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
