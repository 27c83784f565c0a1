"""Schedules, the stable-step bisection, ghost batch norm and large-batch recipes against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.models.ghost_batch_norm import GhostBatchNorm1d
from genlab.train.large_batch import Regime, adapt_regime, augmented_batch, shift_scale_noise
from genlab.train.schedules import linear_decay, refined, refined_weights
from genlab.train.stable_step import largest_stable_step


def test_linear_decay_values():
    s = linear_decay(0.4, 10)
    assert [s(t) for t in (0, 5, 10, 20)] == pytest.approx([0.4, 0.2, 0.0, 0.0])


def test_refined_constant_norms_is_linear_decay():
    w = refined_weights([2.0] * 11)
    assert w == pytest.approx([(10 - t) / 10 for t in range(11)], abs=1e-12)


def test_refined_weights_against_vectorized_formula():
    g = np.random.default_rng(0).uniform(0.5, 3.0, 50)
    inv = g**-2.0
    tail = np.concatenate([np.cumsum(inv[::-1])[::-1][1:], [0.0]])  # Σ_{p>t} ‖g_p‖⁻²
    ref = inv * tail
    assert refined_weights(g) == pytest.approx(list(ref / ref.max()), rel=1e-12)
    s = refined(0.1, g)
    assert s(int(np.argmax(ref))) == pytest.approx(0.1) and s(1000) == 0.0


def test_refined_smoothing_removes_a_spike_and_bad_input():
    g = [1.0] * 21
    g[10] = 100.0
    assert refined_weights(g, smooth=0.2) == pytest.approx(refined_weights([1.0] * 21))
    with pytest.raises(ValueError, match="grad_norms"):
        refined_weights([1.0, 0.0])


def test_largest_stable_step_on_a_quadratic():
    lam = 4.0  # GD on ½λx² diverges iff η > 2/λ = 0.5

    def diverges(eta: float) -> bool:
        x = 1.0  # |x| grows iff |1 − ηλ| > 1: an exact criterion at any distance from 0.5
        for _ in range(50):
            x -= eta * lam * x
        return abs(x) > 1.0

    r = largest_stable_step(diverges, 1e-3, 10.0, rtol=0.01)
    assert r.stable <= 0.5 < r.unstable and r.unstable / r.stable <= 1.01
    assert largest_stable_step(lambda e: False, 0.1, 1.0).unstable == math.inf
    with pytest.raises(ValueError, match="lo"):
        largest_stable_step(diverges, 1.0, 0.5)


def test_ghost_batch_norm_against_a_loop_of_batch_norms():
    torch.manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64) * 3 + 1
    gbn = GhostBatchNorm1d(5, ghost_size=16).double()
    ref = torch.nn.BatchNorm1d(5).double()
    with torch.no_grad():
        gbn.weight.copy_(torch.linspace(0.5, 2, 5))
        ref.weight.copy_(gbn.weight)
    out = gbn(x)
    expect = torch.cat([ref(c) for c in (x[:16], x[16:32], x[32:])])  # last ghost batch has 8
    assert torch.allclose(out, expect, atol=1e-12)
    assert torch.allclose(gbn.running_mean, ref.running_mean) and torch.allclose(gbn.running_var, ref.running_var)
    # each ghost batch normalized by its own statistics
    assert torch.allclose(out[:16].mean(0), gbn.bias.detach(), atol=1e-12)
    gbn.eval(), ref.eval()
    assert torch.allclose(gbn(x), ref(x))


def test_adapt_regime():
    small = Regime(epochs=10, milestones=(5, 8), lr=0.1, batch_size=32)
    big = adapt_regime(small, 512)
    assert big.epochs == 160 and big.milestones == (80, 128) and big.lr == pytest.approx(0.4)
    # number of updates per epoch × epochs matches
    n = 4096
    assert small.epochs * n / small.batch_size == big.epochs * n / big.batch_size
    assert adapt_regime(small, 512, sqrt_lr=False, match_updates=False) == Regime(10, (5, 8), 0.1, 512)


def test_batch_augmentation_replicates_and_varies():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(12.0).reshape(3, 4)
    y = torch.tensor([0, 1, 2])
    xa, ya = augmented_batch(x, y, 4, shift_scale_noise(max_shift=1, scale=0.0, noise=0.0), g)
    assert xa.shape == (12, 4) and ya.tolist() == [0, 1, 2] * 4
    for i in range(12):  # each copy is a circular shift by −1, 0 or 1 of its example
        src = x[i % 3]
        assert any(torch.equal(xa[i], torch.roll(src, s)) for s in (-1, 0, 1))
    assert not all(torch.equal(xa[i], xa[i % 3]) for i in range(12))
