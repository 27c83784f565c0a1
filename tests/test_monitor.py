"""genlab.Monitor: schedules, thresholds, verdicts, store, and the no-side-effect guarantees."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.errors import InputError
from genlab.monitor import Monitor, optimizer_threshold
from genlab.monitor.schedule import Schedule
from genlab.monitor.verdicts import first_eos_step, first_sharpening_step
from genlab.probes.curvature import hessian_eigenvalues
from genlab.probes.dense import dense_top_eigenvalue
from genlab.probes.preconditioned import adam_preconditioner, preconditioned_sharpness
from genlab.probes.trace import hessian_trace
from genlab.store import Store


def _setup(seed: int = 0, dropout: bool = True):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Tanh()]
    layers += [torch.nn.Dropout(0.2)] if dropout else []
    model = torch.nn.Sequential(*layers, torch.nn.Linear(6, 3)).double()
    x = torch.randn(64, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (64,))
    return model, x, y


def _train(model, opt, x, y, steps, monitor=None):
    for i in range(steps):
        xb, yb = x[(i % 4) * 16:(i % 4 + 1) * 16], y[(i % 4) * 16:(i % 4 + 1) * 16]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step((xb, yb), loss=loss)


def test_top_level_export():
    assert genlab.Monitor is Monitor


def _rude_probe(model, loss_fn, batch):
    """A custom probe that draws from the global RNG, writes .grad and switches to eval mode:
    the Monitor must undo all three."""
    model.eval()
    loss_fn(model(batch[0]), batch[1]).backward()
    return float(torch.rand(()))


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: torch.optim.AdamW(p, lr=1e-2),
])
def test_training_with_and_without_monitor_is_bit_identical(make_opt):
    """Same weights, buffers, optimizer state, modes, grads and global RNG state with and without
    the Monitor (dropout in the model consumes the global RNG, so a draw by the Monitor would show)."""
    results = []
    for use in (False, True):
        model, x, y = _setup()
        opt = make_opt(model.parameters())
        mon = Monitor(model, F.cross_entropy, opt, probes=["economy", "curvature", _rude_probe], every=2) if use else None
        _train(model, opt, x, y, 6, mon)
        results.append((copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
                        [p.grad.clone() for p in model.parameters()], [m.training for m in model.modules()],
                        torch.get_rng_state()))
    (s0, o0, g0, m0, r0), (s1, o1, g1, m1, r1) = results
    assert s0.keys() == s1.keys() and all(torch.equal(s0[k], s1[k]) for k in s0)
    assert all(torch.equal(a, b) for a, b in zip(g0, g1))
    assert m0 == m1 and torch.equal(r0, r1)
    for k, st in o0["state"].items():
        for name, v in st.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(o1["state"][k][name]))


def test_sharpness_and_trace_equal_standalone_probes():
    """Monitor's λ_max and trace on batch B equal the standalone probes on the same weights (1e-6,
    float64), and λ_max equals the dense Hessian's top eigenvalue (independent reference)."""
    model, x, y = _setup(dropout=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, F.cross_entropy, opt, probes="curvature", every=1, sharpness_tol=1e-10)
    _train(model, opt, x, y, 3, mon)
    batch = (x[32:48], y[32:48])  # the batch of step 3
    lam = hessian_eigenvalues(model, F.cross_entropy, batch, tol=1e-10).top
    dense = dense_top_eigenvalue(model, F.cross_entropy, batch)
    tr = hessian_trace(model, F.cross_entropy, batch, method="hutchinson", num_matvecs=30, seed=3)
    got = dict((k, v[-1][1]) for k, v in mon.history.items())
    assert got["sharpness"] == pytest.approx(lam, rel=1e-6, abs=1e-9)
    assert got["sharpness"] == pytest.approx(dense, rel=1e-6)
    assert got["trace"] == pytest.approx(tr.estimate, rel=1e-6) and got["trace_se"] == pytest.approx(tr.stderr, rel=1e-6)
    assert got["threshold"] == pytest.approx(2 / 0.05)


def test_adam_uses_preconditioned_sharpness_against_its_threshold():
    model, x, y = _setup(dropout=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.999))
    mon = Monitor(model, F.cross_entropy, opt, probes=["sharpness"], every=2, sharpness_tol=1e-10)
    _train(model, opt, x, y, 4, mon)
    ref = preconditioned_sharpness(model, F.cross_entropy, (x[48:64], y[48:64]), adam_preconditioner(opt, model), tol=1e-10).top
    assert mon.history["preconditioned_sharpness"][-1][1] == pytest.approx(ref, rel=1e-6)
    assert mon.history["threshold"][-1][1] == pytest.approx(38 / 1e-2)


def test_thresholds_follow_the_param_groups():
    w = [torch.nn.Parameter(torch.zeros(2))]
    opt = torch.optim.SGD(w, lr=0.1)
    assert optimizer_threshold(opt).value == pytest.approx(20.0)
    opt.param_groups[0]["lr"] = 0.2  # a schedule changed it
    assert optimizer_threshold(opt).value == pytest.approx(10.0)
    assert optimizer_threshold(torch.optim.SGD(w, lr=0.1, momentum=0.5)).value == pytest.approx(2 * 1.5 / 0.1)
    unknown = optimizer_threshold(torch.optim.Adagrad(w, lr=0.1))
    assert unknown.value is None and "no known threshold" in unknown.rule


def test_unknown_optimizer_gives_measurement_and_no_verdict():
    model, x, y = _setup(dropout=False)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    mon = Monitor(model, F.cross_entropy, opt, probes=["sharpness"], every=1)
    _train(model, opt, x, y, 2, mon)
    assert len(mon.history["sharpness"]) == 2 and "threshold" not in mon.history
    assert mon.verdicts() == [] and "no known threshold" in mon.config()["threshold_rule"]


def test_verdict_steps_by_hand():
    lam = [(1, 1.0), (2, 1.1), (3, 1.3), (4, 1.9), (5, 2.0), (6, 2.05)]
    ratio = [v / 2.0 for _, v in lam]
    assert first_sharpening_step(lam, ratio, band=0.1, rise=0.2) == 3
    assert first_eos_step([t for t, _ in lam], ratio, band=0.1, window=3) == 6
    assert first_eos_step([t for t, _ in lam], ratio, band=0.1, window=4) is None


def test_eos_verdict_on_quadratic_gd_at_its_edge():
    """GD on a fixed quadratic with η·λ_max/2 = 0.98: the EoS finding holds from the 3rd measurement."""
    model = torch.nn.Linear(2, 1, bias=False).double()
    x = torch.tensor([[1.0, 0.0], [0.0, 0.3]], dtype=torch.float64)
    y = torch.zeros(2, 1, dtype=torch.float64)
    lf = torch.nn.functional.mse_loss  # H = (2/(N·1)) XᵀX → λ_max = 1.0
    opt = torch.optim.SGD(model.parameters(), lr=1.96)
    mon = Monitor(model, lf, opt, probes=["sharpness"], every=1, band=0.05, window=3)
    for _ in range(4):
        opt.zero_grad(); lf(model(x), y).backward(); opt.step(); mon.step((x, y))
    vs = {v.claim.split(":")[0]: v for v in mon.verdicts()}
    assert vs["edge of stability"].passed and "step 3" in vs["edge of stability"].measured
    assert not vs["progressive sharpening"].passed


def test_schedules():
    s = Schedule(every=3)
    assert [t for t in range(1, 10) if s.due(t)] == [3, 6, 9]
    log = Schedule(every=None, log_spaced=True, base=2.0)
    assert [t for t in range(1, 20) if log.due(t)] == [1, 2, 4, 8, 16]
    powers = [1.5**k for k in range(40)]  # brute force: steps t with a power of 1.5 in (t − 1, t]
    want = [t for t in range(1, 3000) if any(t - 1 < p <= t for p in powers)]
    assert [t for t in range(1, 3000) if Schedule(None, log_spaced=True).due(t)] == want
    model, x, y = _setup(dropout=False)
    mon = Monitor(model, F.cross_entropy, None, probes=["loss", "distance"], every={"distance": 2})
    for t in range(4):
        mon.step((x[:16], y[:16]))
    assert [t for t, _ in mon.history["loss"]] == [1, 2, 3, 4] and [t for t, _ in mon.history["distance"]] == [2, 4]


def test_custom_probe_and_store(tmp_path):
    model, x, y = _setup(dropout=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def out_norm(m, lf, batch):
        with torch.no_grad():
            return {"out_norm": float(m(batch[0]).norm())}

    with Monitor(model, F.cross_entropy, opt, probes=["curvature", out_norm], every=2, store=tmp_path, name="demo") as mon:
        _train(model, opt, x, y, 4, mon)
    with Store(tmp_path) as st:
        run = st._db.execute("SELECT * FROM runs WHERE id = ?", (mon.run_id,)).fetchone()
        names = {r[0] for r in st._db.execute("SELECT DISTINCT name FROM metrics WHERE run = ?", (mon.run_id,))}
        checks = st._db.execute("SELECT kind FROM checks WHERE run = ?", (mon.run_id,)).fetchall()
    assert run["experiment"] == "monitor:demo" and run["status"] == "finished"
    assert '"optimizer": "SGD"' in run["config"] and '"model": "Sequential"' in run["config"]
    assert {"loss", "sharpness", "threshold", "trace", "trace_se", "out_norm"} <= names
    assert [c[0] for c in checks] == ["finding", "finding", "finding"]  # sharpening, EoS, EoSS (plain SGD)


@pytest.mark.parametrize("kwargs, arg", [
    ({"probes": "econmy"}, "probes:"),
    ({"probes": ["sharpness", "nope"]}, "probes:"),
    ({"every": 0}, "every:"),
    ({"every": {"sharpness": -1}, "probes": "curvature"}, "every:"),
    ({"every": {"trace": 2}, "probes": "economy"}, "every:"),
])
def test_bad_input_names_the_argument(kwargs, arg):
    model, _, _ = _setup()
    with pytest.raises(InputError) as e:
        Monitor(model, F.cross_entropy, **kwargs)
    assert str(e.value).startswith(arg) and "\n" not in str(e.value)


def test_no_trainable_parameters():
    model = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(InputError, match="^model: has no trainable"):
        Monitor(model, F.cross_entropy)


def test_non_scalar_loss():
    model, x, y = _setup()
    mon = Monitor(model, F.cross_entropy, probes=["loss"])
    with pytest.raises(InputError, match="^loss:"):
        mon.step((x, y), loss=torch.ones(3))



def test_per_layer_curvature_equals_block_probes():
    """Monitor's per-block series equal the standalone probes with ``params=`` on the same batch."""
    model, x, y = _setup(dropout=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, F.cross_entropy, opt, probes="curvature", every=1, sharpness_tol=1e-10, per_layer=True,
                  params={"last": model[3]})
    _train(model, opt, x, y, 2, mon)
    batch = (x[16:32], y[16:32])
    assert {"sharpness/0", "sharpness/1", "sharpness/3", "sharpness/last", "trace/0", "trace_se/3"} <= set(mon.history)
    lam = hessian_eigenvalues(model, F.cross_entropy, batch, tol=1e-10, params="3").top
    tr = hessian_trace(model, F.cross_entropy, batch, method="hutchinson", num_matvecs=30, seed=2, params="0")
    assert mon.history["sharpness/3"][-1][1] == pytest.approx(lam, rel=1e-6)
    assert mon.history["sharpness/last"][-1][1] == pytest.approx(lam, rel=1e-6)
    assert mon.history["trace/0"][-1][1] == pytest.approx(tr.estimate, rel=1e-6)
