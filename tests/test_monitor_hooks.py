"""``with monitor(step, batch):`` around the user's own backward: the hook path gives the standalone
probes' numbers, leaves training bit-identical, and falls back where per-example gradients
cannot come from the user's backward."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from genlab.monitor import Monitor
from genlab.probes.backward_capture import BackwardCapture
from genlab.probes.gradient_stats import gradient_coherence, gradient_snr
from genlab.probes.per_example import per_example_stats


def _cnn(seed=0, norm=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Conv1d(2, 4, 3), torch.nn.Tanh()]
    layers += [torch.nn.LayerNorm(8)] if norm else []
    layers += [torch.nn.Flatten(), torch.nn.Linear(32, 3)]
    return torch.nn.Sequential(*layers).double()


def _data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 10, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("norm", [False, True])
def test_capture_equals_standalone_per_example_stats(norm):
    """Per-example squared norms, mean gradient and second moments from the user's backward equal
    per_example_stats' (Conv1d + Linear by the hooks; LayerNorm by the vmap fallback), float64."""
    model = _cnn(norm=norm)
    x, y = _data()
    with BackwardCapture(model) as cap:
        F.cross_entropy(model(x), y).backward()
    got = cap.stats(F.cross_entropy, (x, y), second_moment=True)
    ref = per_example_stats(model, F.cross_entropy, (x, y), second_moment=True)
    assert got is not None
    assert torch.allclose(got.sq_norms, ref.sq_norms, rtol=1e-10, atol=1e-14)
    for n in ref.mean_grad:
        assert torch.allclose(got.mean_grad[n], ref.mean_grad[n], rtol=1e-10, atol=1e-14)
        assert torch.allclose(got.second_moment[n], ref.second_moment[n], rtol=1e-10, atol=1e-16)
    assert ("2.weight" in got.fallback) == norm and "0.weight" not in got.fallback


def test_capture_with_accumulated_grad_and_loss_scale():
    """.grad present before the block (accumulation) is subtracted; a scaled loss is unscaled."""
    model = _cnn()
    x, y = _data()
    F.cross_entropy(model(x[:5]), y[:5]).backward()  # an earlier micro-batch left .grad
    with BackwardCapture(model, loss_scale=8.0) as cap:
        (8.0 * F.cross_entropy(model(x), y)).backward()
    got = cap.stats(F.cross_entropy, (x, y))
    ref = per_example_stats(model, F.cross_entropy, (x, y))
    assert torch.allclose(got.sq_norms, ref.sq_norms, rtol=1e-9)
    assert got.fallback == []  # the hooks' Σ_i g_i a_iᵀ/B matched the .grad change, no fallback


def test_regularizer_in_the_loss_sends_the_layer_to_the_fallback():
    """A weight-decay term in the backward makes Σ_i g_i a_iᵀ/B ≠ Δ.grad: detected, layer by fallback
    — whose per-example norms are then those of loss_fn alone, i.e. the standalone probe's."""
    model = _cnn()
    x, y = _data()
    with BackwardCapture(model) as cap:
        (F.cross_entropy(model(x), y) + 0.1 * model[3].weight.pow(2).sum()).backward()
    got = cap.stats(F.cross_entropy, (x, y))
    ref = per_example_stats(model, F.cross_entropy, (x, y))
    assert "3.weight" in got.fallback and "0.weight" not in got.fallback
    assert torch.allclose(got.param_sq_norms["3.weight"], ref.param_sq_norms["3.weight"], rtol=1e-10)


def test_monitor_hook_mode_equals_standalone_probes_and_keeps_grad():
    model = _cnn(norm=True)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, F.cross_entropy, opt, probes="economy")
    opt.zero_grad()
    with mon(1, (x, y)):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    got = {k: v[-1][1] for k, v in mon.history.items()}
    assert mon.t == 1 and got["loss"] == pytest.approx(float(loss.detach()), rel=1e-12)
    assert got["grad_norm"] == pytest.approx(float(torch.cat([g.reshape(-1) for g in grads]).norm()), rel=1e-12)
    assert got["coherence"] == pytest.approx(gradient_coherence(model, F.cross_entropy, (x, y)).alpha, rel=1e-9)
    assert got["snr"] == pytest.approx(gradient_snr(model, F.cross_entropy, (x, y)).overall.pooled_snr, rel=1e-9)
    ref = per_example_stats(model, F.cross_entropy, (x, y)).sq_norms.sqrt()
    assert got["per_example.norm_max"] == pytest.approx(float(ref.max()), rel=1e-9)
    # .grad is exactly the user's backward's: recompute it without the Monitor
    clone = _cnn(norm=True)
    F.cross_entropy(clone(x), y).backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, clone.parameters()))
    assert mon.notes == []


def _train_hooked(use_monitor, steps=6):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Tanh(),
                                torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3)).double()
    x = torch.randn(64, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = Monitor(model, F.cross_entropy, opt, probes=["economy", "sharpness"], every=2) if use_monitor else None
    for i in range(steps):
        xb, yb = x[(i % 4) * 16:(i % 4 + 1) * 16], y[(i % 4) * 16:(i % 4 + 1) * 16]
        opt.zero_grad()
        ctx = mon(i + 1, (xb, yb)) if mon is not None else torch.enable_grad()
        with ctx:
            F.cross_entropy(model(xb), yb).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
    return model.state_dict(), opt.state_dict(), grads, torch.get_rng_state(), mon


def test_hook_mode_training_is_bit_identical():
    """Dropout (global RNG) and train-mode BatchNorm (running stats): weights, buffers, optimizer
    state, last .grad and RNG state equal with and without the Monitor; BatchNorm in train mode
    sends the per-example quantities to the second pass, said in the notes."""
    s0, o0, g0, r0, _ = _train_hooked(False)
    s1, o1, g1, r1, mon = _train_hooked(True)
    assert all(torch.equal(s0[k], s1[k]) for k in s0)
    assert all(torch.equal(a, b) for a, b in zip(g0, g1)) and torch.equal(r0, r1)
    for k, st in o0["state"].items():
        assert torch.equal(st["momentum_buffer"], o1["state"][k]["momentum_buffer"])
    assert [t for t, _ in mon.history["coherence"]] == [2, 4, 6]
    assert any("BatchNorm '3' in train mode" in n for n in mon.notes)


def test_exception_in_block_measures_nothing_and_removes_hooks():
    model = _cnn()
    x, y = _data()
    mon = Monitor(model, F.cross_entropy, probes="economy")
    with pytest.raises(ValueError):
        with mon(1, (x, y)):
            raise ValueError("user error")
    assert mon.history == {}
    assert all(not m._forward_hooks for m in model.modules())


def test_hook_mode_over_steps_uses_the_lean_path_with_the_same_numbers():
    """After the first two measurements the consistency check runs every 16th call and Linear
    layers take the fewest-operations path: still the standalone probes' numbers at step 5."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(40, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model, F.cross_entropy, opt, probes="economy")
    for step in range(1, 6):
        xb, yb = x[(step % 2) * 20:(step % 2 + 1) * 20], y[(step % 2) * 20:(step % 2 + 1) * 20]
        opt.zero_grad()
        with mon(step, (xb, yb)):
            F.cross_entropy(model(xb), yb).backward()
        if step < 5:
            opt.step()
    assert mon._capture.calls == 5 and mon.notes == []
    got = {k: v[-1][1] for k, v in mon.history.items()}
    ref = per_example_stats(model, F.cross_entropy, (xb, yb)).sq_norms.sqrt()
    assert got["per_example.norm_mean"] == pytest.approx(float(ref.mean()), rel=1e-10)
    assert got["per_example.norm_std"] == pytest.approx(float(ref.std(unbiased=False)), rel=1e-9)
    assert got["coherence"] == pytest.approx(gradient_coherence(model, F.cross_entropy, (xb, yb)).alpha, rel=1e-10)
    assert got["snr"] == pytest.approx(gradient_snr(model, F.cross_entropy, (xb, yb)).overall.pooled_snr, rel=1e-9)
