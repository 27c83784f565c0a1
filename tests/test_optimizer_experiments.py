"""The optimizers theme: its probes against dense references, and each experiment's checks computed
from measurements (they fail when the data say so); tiny end-to-end runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.experiments.optimizers.optimizer_eos import EXPERIMENT as OEOS
from genlab.probes.dense import dense_hessian
from genlab.probes.preconditioned import adam_preconditioner, preconditioned_sharpness


class _Recorder:
    """In-memory recorder with a no-op progress bar."""

    def __init__(self):
        self.rows = []

    def log_many(self, values, step=0):
        self.rows.append((step, dict(values)))

    def progress(self, name, total):
        class _Bar:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def advance(self, n=1):
                pass

        return _Bar()


def _tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    return model, (x, torch.sin(x.sum(1, keepdim=True)))


def test_preconditioned_sharpness_against_dense():
    model, data = _tiny()
    mse = torch.nn.functional.mse_loss
    opt = torch.optim.Adam(model.parameters(), lr=0.01, eps=1e-8)
    for _ in range(3):
        opt.zero_grad()
        mse(model(data[0]), data[1]).backward()
        opt.step()
    p = adam_preconditioner(opt, model)
    # reference: eigenvalues of P⁻¹H from the dense Hessian, v̂ rebuilt by hand from Adam's state
    parts = []
    for q in model.parameters():
        st = opt.state[q]
        parts.append((st["exp_avg_sq"] / (1 - 0.999 ** float(st["step"]))).sqrt().reshape(-1) + 1e-8)
    p_ref = torch.cat(parts)
    assert torch.allclose(p, p_ref, rtol=1e-12)
    h = dense_hessian(model, mse, data)
    ref = float(np.max(np.linalg.eigvals(np.diag(1 / p_ref.numpy()) @ h.numpy()).real))
    got = preconditioned_sharpness(model, mse, data, p, tol=1e-10).top
    assert got == pytest.approx(ref, rel=1e-8)  # Lanczos to 1e-10 residual on a 21-dim operator


def _eos_run(kind, eta, thr, ratios, status="budget"):
    lam = [r * thr for r in ratios]
    steps = list(range(0, 10 * len(lam), 10))
    return {"kind": kind, "eta": eta, "threshold": thr, "gd_threshold": 2 / eta, "status": status, "measured_steps": steps,
            "measured": lam, "raw_steps": steps, "raw": lam, "loss_steps": steps, "loss": [1.0] * len(lam)}


def test_optimizer_eos_checks_pass_and_fail_from_measurements():
    cfg = OEOS.Config()
    thr = 3.0 / 0.07
    hover = [0.3, 0.5, 0.8, 1.02, 0.9, 0.97, 1.01, 0.95, 1.0, 0.98, 1.03, 0.96]
    good = {"runs": [_eos_run("momentum", 0.07, thr, hover), _eos_run("adam", 0.003, 38 / 0.003, hover)]}
    v = OEOS.checks(cfg, good)
    assert [x.passed for x in v if x.kind != "finding"] == [True, True, True, True, True]
    stuck = [0.3, 0.5, 0.6, 0.62, 0.63, 0.64, 0.65, 0.65, 0.66, 0.66, 0.66, 0.67]  # sits at GD's 2/η, below 2(1+β)/η
    bad = {"runs": [_eos_run("momentum", 0.07, thr, stuck), _eos_run("adam", 0.003, 38 / 0.003, stuck)]}
    assert [x.passed for x in OEOS.checks(cfg, bad) if x.kind == "claim"] == [False, False, False]
    div = {"runs": [_eos_run("momentum", 0.07, thr, hover, status="diverged")]}
    assert [x.passed for x in OEOS.checks(cfg, div)] == [False, False, False]


def test_optimizer_eos_tiny_run():
    cfg = OEOS.Config(steps=30, measure_every=10, widths=[8], momentum_step_sizes=[0.07], adam_step_sizes=[0.003])
    res = OEOS.run(cfg, _Recorder())
    assert [r["kind"] for r in res["runs"]] == ["momentum", "adam"]
    assert all(len(r["measured"]) >= 3 for r in res["runs"])
    OEOS.checks(cfg, res)
    assert "optimizer_eos.png" in OEOS.figures(cfg, res)
