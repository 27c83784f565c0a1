"""The Monitor's probe set ``full``, batch sharpness, the budget, the live findings, the terminal
output and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console

import genlab.monitor.budget as budget_mod
import genlab.monitor.monitor as monitor_mod
from genlab.errors import InputError
from genlab.monitor import Monitor
from genlab.monitor.budget import water_fill
from genlab.monitor.noise import gaussian_control, tail_index_interval
from genlab.monitor.verdicts import coherence_verdict, eoss_verdict, regime_verdicts, tail_verdict
from genlab.probes.data_importance import el2n_scores
from genlab.probes.dense import dense_hessian
from genlab.probes.directional import directional_sharpness
from genlab.probes.gradient_stats import minibatch_gradient_noise, tail_index
from genlab.probes.kernels import empirical_ntk, kernel_distance
from genlab.probes.spectrum import hessian_spectrum


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()


def _data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def test_directional_sharpness_equals_dense():
    model = _mlp()
    x, y = _data()
    h = dense_hessian(model, F.cross_entropy, (x, y))
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    r = directional_sharpness(model, F.cross_entropy, (x, y))
    assert r.value == pytest.approx(float(g @ h @ g / (g @ g)), rel=1e-10)
    assert r.grad_norm == pytest.approx(float(g.norm()), rel=1e-12)


def test_tail_interval_covers_the_truth():
    """Gaussian samples (α = 2): the ~95% interval covers 2 in at least 85% of 60 seeded draws (the
    delta method ignores a positive correlation, so it is conservative); α̂ equals tail_index."""
    rng = np.random.default_rng(0)
    cover = 0
    for _ in range(60):
        x = rng.standard_normal(2000)
        r = tail_index_interval(x)
        assert r.alpha == tail_index(x) and r.low < r.alpha < r.high
        cover += r.low <= 2 <= r.high
    assert cover >= 51
    # Cauchy samples (α = 1): interval near 1, well below 2
    c = tail_index_interval(rng.standard_cauchy(4000))
    assert c.low <= 1.0 <= c.high and c.high < 1.6


def test_gaussian_control_has_the_noise_scale_and_no_global_draws():
    noise = torch.randn(8, 500, dtype=torch.float64) * torch.linspace(0.1, 3, 500)
    state = torch.get_rng_state()
    c = gaussian_control(noise, torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state())
    # The control keeps each coordinate's scale up to one common factor (1.4826·MAD over 8 rows
    # is biased low, ≈ 0.65σ here); a common factor does not move α̂, which compares log-means.
    scale = torch.linspace(0.1, 3, 500, dtype=torch.float64)
    ls, lc = scale.log(), c.std(0).log()
    slope = float(((ls - ls.mean()) * (lc - lc.mean())).sum() / ((ls - ls.mean()) ** 2).sum())
    assert slope == pytest.approx(1.0, abs=0.1)  # se of the slope here ≈ 0.03 (8-row std and MAD noise)
    x = noise[:, 100:]
    assert tail_index_interval(0.5 * x).alpha == pytest.approx(tail_index_interval(x).alpha, rel=1e-9)


def test_water_fill_by_hand_and_against_the_constraint():
    # cheap loss keeps every step, the rest share equally what remains
    iv = water_fill({"loss": (0.001, 1), "trace": (1.0, 1), "sharpness": (3.0, 16)}, allowed=0.1)
    assert iv["loss"] == 1.0
    share = (0.1 - 0.001) / 2
    assert iv["trace"] == pytest.approx(1.0 / share) and iv["sharpness"] == pytest.approx(3.0 / share)
    rng = np.random.default_rng(0)
    for _ in range(200):
        rates = {f"q{i}": (float(rng.uniform(1e-4, 1)), int(rng.integers(1, 50))) for i in range(5)}
        allowed = float(rng.uniform(1e-3, 0.5))
        out = water_fill(rates, allowed)
        assert all(out[q] >= k for q, (_, k) in rates.items())
        assert sum(c / out[q] for q, (c, _) in rates.items()) <= allowed * (1 + 1e-9)


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_budget_holds_the_overhead_on_a_simulated_clock(monkeypatch):
    """A loop of 10 ms per step and a custom probe costing 50 ms (5× a step): with budget=0.1 the
    measured overhead after 2000 steps is within 0.08–0.12, the probe runs about every 50 steps,
    and the skipped measurements are counted. The clock is simulated (no timing in tests)."""
    clock = _FakeClock()
    monkeypatch.setattr(budget_mod.time, "perf_counter", clock)
    monkeypatch.setattr(monitor_mod.time, "perf_counter", clock)
    model = _mlp()
    x, y = _data()

    def costly(m, lf, batch):
        clock.now += 0.05
        return 1.0

    mon = Monitor(model, F.cross_entropy, probes=[costly], every=1, budget=0.1)
    for _ in range(2000):
        clock.now += 0.01  # the user's step
        mon.step((x, y))
    assert 0.08 <= mon.budget.overhead <= 0.12
    measured = len(mon.history["costly"])
    assert 30 <= measured <= 50 and mon.skipped["costly"] == 2000 - measured
    v = mon.close()[-1]
    assert "skipped: costly" in v.measured and v.kind == "finding"


def test_full_set_equals_standalone_probes():
    """Every number of the full set equals its probe recomputed on the same batch and weights."""
    model = _mlp()
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, F.cross_entropy, opt, probes="full", every=2, probe_size=20, kernel_size=6, tail_splits=4)
    for t in range(1, 5):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if t == 2:  # the first kernel measurement
            k0 = empirical_ntk(model, x[:6])
        mon.step((x, y))
    h = {k: v[-1][1] for k, v in mon.history.items()}
    assert [s for s, _ in mon.history["spectrum.moment1"]] == [2, 4]
    # the fixed probe batch is the first 20 examples of the first batch the Monitor saw
    assert h["kernel_distance"] == pytest.approx(kernel_distance(k0, empirical_ntk(model, x[:6])), rel=1e-9)
    assert h["el2n.mean"] == pytest.approx(float(el2n_scores(model, (x[:20], y[:20])).mean()), rel=1e-12)
    sp = hessian_spectrum(model, F.cross_entropy, (x, y), num_probes=3, lanczos_steps=30, seed=4)
    assert h["spectrum.moment1"] == pytest.approx(sp.moment(1), rel=1e-9)
    assert h["spectrum.moment2_se"] == pytest.approx(sp.moment_stderr(2), rel=1e-9)
    noise = minibatch_gradient_noise(model, F.cross_entropy, (x, y), 8, seed=4)
    assert h["tail_index"] == pytest.approx(tail_index(noise), rel=1e-9)
    assert h["tail_index_low"] < h["tail_index"] < h["tail_index_high"]
    assert h["batch_sharpness"] == pytest.approx(directional_sharpness(model, F.cross_entropy, (x, y)).value, rel=1e-9)
    assert h["batch_sharpness_ratio"] == pytest.approx(h["batch_sharpness"] * 0.05 / 2)
    assert "kernel_velocity" in h and "coherence_random" in h and "relative_weight_change" in h
    names = {v.claim.split(":")[0] for v in mon.verdicts()}
    assert {"edge of stochastic stability", "heavy-tailed gradient noise", "gradient coherence above its random-label level",
            "lazy regime", "rich regime"} <= names


def test_findings_by_hand():
    h = {"batch_sharpness_ratio": [(1, 0.5), (2, 0.95), (3, 1.1), (4, 0.98)]}
    v = eoss_verdict(h, band=0.1, window=2)[0]
    assert v.passed and "step 3" in v.measured  # means: .725, 1.025 ✓ at step 3
    rows = {"tail_index": [(1, 1.9), (2, 1.4)], "tail_index_low": [(1, 1.7), (2, 1.3)], "tail_index_high": [(1, 2.1), (2, 1.5)],
            "tail_index_control": [(1, 1.95), (2, 1.9)], "tail_index_control_low": [(1, 1.8), (2, 1.7)],
            "tail_index_control_high": [(1, 2.1), (2, 2.1)]}
    v = tail_verdict(rows)[0]
    assert v.passed and "step 2" in v.measured
    rows["tail_index_high"] = [(1, 2.1), (2, 1.75)]  # below 2 but overlapping the control's interval
    assert not tail_verdict(rows)[0].passed
    v = coherence_verdict({"coherence": [(1, 0.1), (5, 0.3)], "coherence_random": [(1, 0.08), (5, 0.1)]}, factor=2)[0]
    assert v.passed and "step 5" in v.measured
    lazy, rich = regime_verdicts({"relative_weight_change": [(1, 0.01), (9, 0.05)], "kernel_distance": [(1, 0.0), (9, 0.2)]}, 0.1, 0.1)
    assert not lazy.passed and rich.passed and "step 9" in rich.measured


def test_per_quantity_schedules_log_spaced_and_every():
    model = _mlp()
    x, y = _data()
    mon = Monitor(model, F.cross_entropy, None, probes=["loss", "distance", "grad_norm"],
                  every={"loss": 5, "distance": None, "grad_norm": 4}, log_spaced={"distance": True, "grad_norm": True})
    for _ in range(12):
        mon.step((x, y))
    assert [t for t, _ in mon.history["loss"]] == [5, 10]
    assert [t for t, _ in mon.history["distance"]] == [1, 2, 3, 4, 6, 8, 12]
    assert [t for t, _ in mon.history["grad_norm"]] == [1, 2, 3, 4, 6, 8, 12]


def test_terminal_output_at_an_interval_and_escaped():
    model = _mlp()
    x, y = _data()
    con = Console(record=True, width=200)
    mon = Monitor(model, F.cross_entropy, None, probes=["loss"], name="[red]evil", print_every=5, console=con)
    for _ in range(12):
        mon.step((x, y))
    text = con.export_text()
    assert text.count("[red]evil step") == 2 and "step 5:" in text and "step 10:" in text


@pytest.mark.parametrize("kwargs, arg", [
    ({"budget": 0}, "budget:"),
    ({"budget": 1.5}, "budget:"),
    ({"budget": True}, "budget:"),
    ({"every": -3}, "every:"),
    ({"log_spaced": "yes"}, "log_spaced:"),
    ({"print_every": 0}, "print_every:"),
    ({"probes": "curvatur"}, "probes:"),
    ({"params": ["nope"], "probes": "curvature"}, "params:"),
])
def test_bad_arguments(kwargs, arg):
    with pytest.raises(InputError) as e:
        Monitor(_mlp(), F.cross_entropy, **kwargs)
    assert str(e.value).startswith(arg) and "\n" not in str(e.value)


def test_bad_batches_and_losses():
    model = _mlp()
    x, y = _data()
    with pytest.raises(InputError, match="^batch: does not match the model"):
        Monitor(model, F.cross_entropy, probes=["loss"]).step((torch.randn(8, 5, dtype=torch.float64), y[:8]))
    with pytest.raises(InputError, match="^batch: inputs have 8 examples, targets 32"):
        Monitor(model, F.cross_entropy, probes=["loss"]).step((x[:8], y))
    with pytest.raises(InputError, match="^batch: got Tensor"):
        Monitor(model, F.cross_entropy, probes=["loss"]).step(x)
    with pytest.raises(InputError, match="^loss_fn: returns \\(2,\\)"):
        Monitor(model, lambda o, t: F.cross_entropy(o, t, reduction="none"), probes=["loss"]).step((x, y))
    mon = Monitor(model, F.cross_entropy, probes=["grad_norm"])
    with pytest.raises(InputError, match="^step: got 0"):
        mon(0, (x, y))
    with pytest.raises(InputError, match="^batch: does not match"):
        with mon(1, (torch.randn(8, 5, dtype=torch.float64), y[:8])):
            pass
    assert math.isfinite(Monitor(model, F.cross_entropy, probes=["loss"]).step((x, y))["loss"])


def test_paused_time_is_not_loop_time(monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(budget_mod.time, "perf_counter", clock)
    monkeypatch.setattr(monitor_mod.time, "perf_counter", clock)
    x, y = _data()
    mon = Monitor(_mlp(), F.cross_entropy, probes=["loss"], budget=0.5)
    for i in range(10):
        clock.now += 0.01
        if i == 5:
            with mon.paused():
                clock.now += 100.0  # an evaluation pass
        mon.step((x, y))
    assert mon.budget.loop_time == pytest.approx(0.09)  # 9 steps after the first, 10 ms each


def test_the_hessian_symmetry_check_runs_until_one_curvature_call_passes(monkeypatch):
    """The check costs two products per call; the Monitor runs it once, on its first curvature
    measurement, and a model whose second derivatives are wrong (weight_norm) is still refused."""
    from genlab.probes._operators import CurvatureOperator

    calls: list[str] = []
    real = CurvatureOperator.check_symmetry
    monkeypatch.setattr(CurvatureOperator, "check_symmetry", lambda self, policy="raise": calls.append(policy) or real(self, policy))
    model = _mlp()
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, F.cross_entropy, opt, probes=["sharpness", "trace", "batch_sharpness"], every=1)
    for _ in range(3):
        mon.step((x, y))
    assert len(mon.history["sharpness"]) == len(mon.history["trace"]) == len(mon.history["batch_sharpness"]) == 3
    assert calls.count("raise") == 1 and set(calls) == {"raise", "off"}

    torch.manual_seed(0)
    wn = torch.nn.Sequential(torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 8)), torch.nn.Tanh(),
                             torch.nn.Linear(8, 3)).double()
    with pytest.raises(InputError, match="not symmetric"):
        Monitor(wn, F.cross_entropy, None, probes=["batch_sharpness"], every=1).step((x, y))
