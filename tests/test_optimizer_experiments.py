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


# -- async-delay ------------------------------------------------------------------------------------
from genlab.experiments.optimizers.async_delay import EXPERIMENT as ASYNC  # noqa: E402
from genlab.experiments.optimizers.async_delay import quadratic_threshold  # noqa: E402
from genlab.theory.thresholds import delayed_gd_step_threshold, delayed_momentum_step_threshold  # noqa: E402


def test_quadratic_threshold_measured_by_delayed_sgd_matches_theory():
    # grid of 400 log-spaced points in [1e-3, 4.5]: spacing 2.1%, so the measured value is within 2.2%
    for tau, beta in ((3, 0.0), (2, 0.5)):
        m = quadratic_threshold(tau, beta, 400, 150 * (2 * tau + 1))
        assert m == pytest.approx(delayed_momentum_step_threshold(tau, beta), rel=0.022)


def test_fit_exponent_recovers_a_power_law():
    rows = [{"tau": t, "stable": 0.9 * t**-1.0, "unstable": 1.1 * t**-1.0} for t in (2, 4, 8, 16)]
    fit = ASYNC.fit_exponent(rows)
    assert fit["slope"] == pytest.approx(-1.0, abs=1e-9) and fit["low"] < -1.0 < fit["high"]
    assert -1.0 < fit["theory"] < -0.8


def _async_result(eta_star: dict[int, float], sharp_ratio: float, mom_factor: float) -> dict:
    def row(tau, beta, eta):
        eta_c = 0.5 * eta
        return {"tau": tau, "beta": beta, "stable": eta * 0.97, "unstable": eta * 1.03, "evaluations": [], "eta_c": eta_c,
                "start_loss": 0.3, "final_loss": 0.01, "settle_diverged": False,
                "sharpness": sharp_ratio * delayed_gd_step_threshold(tau) / eta_c}
    quad = [{"tau": t, "measured": delayed_gd_step_threshold(t) * 1.005, "predicted": delayed_gd_step_threshold(t)} for t in (0, 2)]
    qm = [{"tau": 2, "measured": delayed_momentum_step_threshold(2, 0.9), "measured_no_momentum": 0.618,
           "predicted": delayed_momentum_step_threshold(2, 0.9)}]
    rows = [row(t, 0.0, e) for t, e in eta_star.items()]
    return {"quadratic": quad, "quadratic_momentum": qm, "lambda0": 10.0, "mlp": rows,
            "mlp_momentum": row(2, 0.9, eta_star[2] * mom_factor), "mlp_no_momentum": rows[1]}


def test_async_checks_pass_and_fail_from_measurements():
    cfg = ASYNC.Config(momentum_delay=2)
    good = _async_result({0: 0.4, 2: 0.4 * 0.618 / 2, 8: 0.4 * 0.1845 / 2}, sharp_ratio=0.95, mom_factor=0.1)
    assert all(v.passed for v in ASYNC.checks(cfg, good))
    # η* flat in τ, sharpness far above the delayed threshold, momentum no worse
    bad = _async_result({0: 0.4, 2: 0.4, 8: 0.4}, sharp_ratio=2.0, mom_factor=1.5)
    assert [v.passed for v in ASYNC.checks(cfg, bad) if v.kind == "claim"] == [True, True, False, False, False]


def test_async_tiny_run():
    cfg = ASYNC.Config(quad_delays=[1], quad_grid=60, quad_steps=20, momentum_delays=[1], width=4, delays=[0, 2],
                       steps=15, settle_steps=5, rtol=0.5, momentum_delay=2)
    res = ASYNC.run(cfg, _Recorder())
    assert len(res["mlp"]) == 2 and "async_delay.png" in ASYNC.figures(cfg, res)
    assert len(ASYNC.checks(cfg, res)) >= 5


# -- lr-batch-scaling -------------------------------------------------------------------------------
from genlab.experiments.optimizers.lr_batch_scaling import EXPERIMENT as LRB  # noqa: E402


def _lrb_result(lam_full, c, a_shift, sgd_exp, adam_exp):
    bs = [4, 16, 64, 256]
    sharp = [{"batch": b, "mean": lam_full * (1 + a_shift) + c / b, "se": 0.01, "full": lam_full} for b in bs]

    def stable(e):
        return [{"batch": b, "stable": 0.01 * b**e * 0.95, "unstable": 0.01 * b**e * 1.05, "evaluations": 5} for b in bs]

    return {"sharpness": {"init": sharp, "trained": sharp}, "stable": {"sgd": stable(sgd_exp), "adam": stable(adam_exp)}}


def test_lr_batch_scaling_fit_and_checks():
    fit = LRB.fit_inverse([{"batch": b, "mean": 2.0 + 8.0 / b} for b in (4, 16, 64)])
    assert fit["a"] == pytest.approx(2.0) and fit["c"] == pytest.approx(8.0) and fit["r2"] == pytest.approx(1.0)
    cfg = LRB.Config(critical_batch=256)
    assert all(v.passed for v in LRB.checks(cfg, _lrb_result(1.0, 8.0, 0.0, 1.0, 0.5)))
    # intercept far from λ_max(H), SGD's exponent 0.5 and Adam's 1: every fit claim fails
    bad = LRB.checks(cfg, _lrb_result(1.0, 8.0, 1.0, 0.5, 1.0))
    assert [v.passed for v in bad] == [True, False, True, False, False, False]


# -- lr-schedules -----------------------------------------------------------------------------------
from scipy import stats as _stats  # noqa: E402

from genlab.experiments.optimizers.lr_schedules import EXPERIMENT as LRS  # noqa: E402
from genlab.experiments.optimizers.lr_schedules import logistic_runs, paired_interval  # noqa: E402
from genlab.train.schedules import cosine, linear_decay  # noqa: E402


def test_vectorized_logistic_sgd_matches_an_autograd_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    scheds = [cosine(1.0, 30), linear_decay(0.5, 30)]
    loss, norms = logistic_runs(x, y, scheds, [3, 4], 30, 8)
    for k, (sch, seed) in enumerate(zip(scheds, [3, 4])):
        w = torch.zeros(6, 3, dtype=torch.float64, requires_grad=True)
        xb = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], 1)
        gen = torch.Generator().manual_seed(1000 + seed)
        perm, pos = torch.randperm(40, generator=gen), 0
        for t in range(30):
            if pos + 8 > 40:
                perm, pos = torch.randperm(40, generator=gen), 0
            idx = perm[pos : pos + 8]
            pos += 8
            (gw,) = torch.autograd.grad(torch.nn.functional.cross_entropy(xb[idx] @ w, y[idx]), w)
            assert float(gw.norm()) == pytest.approx(norms[k, t], rel=1e-10)
            with torch.no_grad():
                w -= sch(t) * gw
        assert float(torch.nn.functional.cross_entropy(xb @ w, y)) == pytest.approx(loss[k], rel=1e-10)


def test_paired_interval_against_scipy():
    a, b = np.array([1.0, 1.2, 0.9, 1.1]), np.array([1.1, 1.25, 1.0, 1.1])
    iv = paired_interval(a, b)
    r = a / b - 1
    lo, hi = _stats.t.interval(0.95, len(r) - 1, loc=r.mean(), scale=_stats.sem(r))
    assert (iv["low"], iv["high"]) == pytest.approx((lo, hi))


def test_lr_schedules_checks_pass_and_fail():
    cfg = LRS.Config(lr_grid=[1.0, 2.0, 4.0], mlp=False)
    best = {"cosine": 2.0, "linear": 2.0, "refined": 2.0}
    good = {"logistic": {"best_lr": best, "final": {"cosine": [1.0, 1.1, 1.2], "linear": [0.9, 1.0, 1.1], "refined": [0.8, 0.9, 1.0]}}}
    assert all(v.passed for v in LRS.checks(cfg, good))
    bad = {"logistic": {"best_lr": {**best, "refined": 4.0}, "final": {"cosine": [0.9, 1.0, 1.1], "linear": [1.0, 1.1, 1.2], "refined": [1.1, 1.2, 1.3]}}}
    assert [v.passed for v in LRS.checks(cfg, bad)] == [False, False, False]


# -- sharpness-aware --------------------------------------------------------------------------------
from genlab.experiments.optimizers.sharpness_aware import EXPERIMENT as SA  # noqa: E402
from genlab.train.saf import TrajectoryMemory  # noqa: E402


def test_saf_trajectory_loss_against_hand_kl():
    mem = TrajectoryMemory(4, 3, delay_epochs=2, weight=0.3, temperature=5.0)
    g = torch.Generator().manual_seed(0)
    old = torch.randn(4, 3, generator=g)
    idx = torch.tensor([2, 0])
    assert float(mem.loss(old[idx], idx, epoch=0)) == 0.0  # before epoch Ẽ: no trajectory term
    mem.loss(old[torch.tensor([1, 3])], torch.tensor([1, 3]), epoch=0)
    mem.loss(torch.randn(4, 3, generator=g), torch.arange(4), epoch=1)
    now = torch.randn(2, 3, generator=g)
    got = float(mem.loss(now, idx, epoch=2))  # compares with epoch 0's outputs of examples 2 and 0
    p = torch.softmax(old[idx] / 5, -1)
    q = torch.softmax(now / 5, -1)
    ref = 0.3 * float((p * (p.log() - q.log())).sum(-1).mean())
    assert got == pytest.approx(ref, rel=1e-6)


def _sa_row(lam, tr, cpu, loss=0.05):
    return {"seed": 0, "sharpness": lam, "trace": tr, "trace_se": 1.0, "train_loss": loss, "test_acc": 0.5, "cpu_per_step": cpu}


def test_sharpness_aware_checks_pass_and_fail():
    cfg = SA.Config()
    good = {"arms": {"sgd": [_sa_row(3.0, 50, 1.0)], "sam": [_sa_row(2.0, 30, 2.0)], "saf": [_sa_row(2.2, 35, 1.1)]}}
    assert all(v.passed for v in SA.checks(cfg, good))
    bad = {"arms": {"sgd": [_sa_row(3.0, 50, 1.0)], "sam": [_sa_row(4.0, 60, 2.0)], "saf": [_sa_row(3.1, 55, 2.0)]}}
    assert [v.passed for v in SA.checks(cfg, bad) if v.kind == "claim"] == [False] * 5
    untrained = {"arms": {k: [_sa_row(3.0, 50, 1.0, loss=1.6)] for k in ("sgd", "sam", "saf")}}
    assert SA.checks(cfg, untrained)[0].passed is False


# -- train-longer -----------------------------------------------------------------------------------
from genlab.experiments.optimizers.train_longer import EXPERIMENT as TL  # noqa: E402
from genlab.experiments.optimizers.train_longer import train_regime  # noqa: E402
from genlab.train.large_batch import Regime as _Regime  # noqa: E402


def test_train_regime_counts_updates_and_uses_ghost_batches():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    cfg = TL.Config(width=8)
    acc, updates = train_regime(cfg, ((x, y), (x, y)), _Regime(3, (2,), 0.05, 16), 4, seed=0)
    assert updates == 3 * 64 // 16 and 0.0 <= acc <= 1.0


def test_train_longer_checks():
    cfg = TL.Config()

    def res(sb, lb, ad):
        accs = {"SB": sb, "LB": lb, "LB+√": lb, "LB+√+GBN": lb, "LB+√+GBN+RA": ad}
        return {"arms": {a: {"acc": [v, v], "updates": [10, 10]} for a, v in accs.items()}}

    assert [v.passed for v in TL.checks(cfg, res(0.8, 0.7, 0.79))] == [True, True, True]
    assert [v.passed for v in TL.checks(cfg, res(0.8, 0.7, 0.72))] == [True, False, True]
    assert TL.checks(cfg, res(0.8, 0.795, 0.8))[0].passed is False  # no gap: the claim is not tested
