"""The optimizer registry, each against a reference: torch.optim, or the update written out in
numpy from the paper's algorithm. Tolerance 1e-10 in float64 (only rounding separates them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.train import Trainer
from genlab.train.optimizers import OPTIMIZERS, DelayedSGD, make_optimizer

A = np.array([[3.0, 0.5], [0.5, 1.0]])
TOL = 1e-10


def _quadratic_params():
    """Two parameter tensors (a 'layer' of 2 and one of 3) on L = ½ xᵀAx + ½ ‖y − c‖²."""
    x = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.5, 0.3, -0.2], dtype=torch.float64, requires_grad=True)
    return x, y


C = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)


def _loss(x, y):
    a = torch.tensor(A)
    return 0.5 * x @ a @ x + 0.5 * ((y - C) ** 2).sum()


def _grads(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return A @ x, y - C.numpy()


def _run(name, steps=3, **kw):
    x, y = _quadratic_params()
    opt = make_optimizer(name, [x, y], **kw)

    def closure():
        opt.zero_grad()
        loss = _loss(x, y)
        loss.backward()
        return loss

    for _ in range(steps):
        if getattr(opt, "requires_closure", False):
            opt.step(closure)
        else:
            closure()
            opt.step()
    return x.detach().numpy(), y.detach().numpy(), opt


def test_registry_names_and_bad_input():
    assert {"sgd", "adam", "adamw", "lars", "lamb", "sam", "delayed-sgd"} <= set(OPTIMIZERS)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("rmsprop-ish", [torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="lamb"):
        make_optimizer("lamb", [torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)


@pytest.mark.parametrize("name,kw,ref", [
    ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.01), torch.optim.SGD),
    ("adam", dict(betas=(0.8, 0.9)), torch.optim.Adam),
    ("adamw", dict(weight_decay=0.1), torch.optim.AdamW),
])
def test_torch_optim_entries(name, kw, ref):
    xs, ys, _ = _run(name, lr=0.1, **kw)
    x, y = _quadratic_params()
    opt = ref([x, y], lr=0.1, **kw)
    for _ in range(3):
        opt.zero_grad()
        _loss(x, y).backward()
        opt.step()
    assert np.allclose(xs, x.detach().numpy(), atol=TOL) and np.allclose(ys, y.detach().numpy(), atol=TOL)


def test_lars_against_algorithm_1():
    lr, b, wd = 0.1, 0.9, 0.01
    xs, ys, _ = _run("lars", lr=lr, momentum=b, weight_decay=wd)
    x, y = (t.detach().numpy().copy() for t in _quadratic_params())
    mx, my = np.zeros(2), np.zeros(3)
    for _ in range(3):
        gx, gy = _grads(x, y)
        mx = b * mx + (1 - b) * (gx + wd * x)
        my = b * my + (1 - b) * (gy + wd * y)
        x = x - lr * np.linalg.norm(x) / np.linalg.norm(mx) * mx
        y = y - lr * np.linalg.norm(y) / np.linalg.norm(my) * my
    assert np.allclose(xs, x, atol=TOL) and np.allclose(ys, y, atol=TOL)


def test_lamb_against_algorithm_2():
    lr, b1, b2, eps, wd = 0.05, 0.9, 0.99, 1e-6, 0.01
    xs, ys, _ = _run("lamb", lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    x, y = (t.detach().numpy().copy() for t in _quadratic_params())
    state = {k: (np.zeros(n), np.zeros(n)) for k, n in (("x", 2), ("y", 3))}
    for t in range(1, 4):
        g = dict(zip("xy", _grads(x, y)))
        new = {}
        for k, w in (("x", x), ("y", y)):
            m, v = state[k]
            m = b1 * m + (1 - b1) * g[k]
            v = b2 * v + (1 - b2) * g[k] ** 2
            state[k] = (m, v)
            r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            u = r + wd * w
            new[k] = w - lr * np.linalg.norm(w) / np.linalg.norm(u) * u
        x, y = new["x"], new["y"]
    assert np.allclose(xs, x, atol=TOL) and np.allclose(ys, y, atol=TOL)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_sam_against_hand_step(momentum):
    lr, rho = 0.1, 0.2
    xs, ys, _ = _run("sam", lr=lr, rho=rho, base="sgd", momentum=momentum)
    x, y = (t.detach().numpy().copy() for t in _quadratic_params())
    vx = vy = None
    for _ in range(3):
        gx, gy = _grads(x, y)
        norm = np.sqrt(gx @ gx + gy @ gy)
        ex, ey = rho * gx / norm, rho * gy / norm
        hx, hy = _grads(x + ex, y + ey)
        vx = hx if vx is None else momentum * vx + hx
        vy = hy if vy is None else momentum * vy + hy
        x, y = x - lr * vx, y - lr * vy
    assert np.allclose(xs, x, atol=TOL) and np.allclose(ys, y, atol=TOL)


def _delayed_reference(lr, tau_seq, momentum, steps):
    x, y = (t.detach().numpy().copy() for t in _quadratic_params())
    hist = [(x, y)]
    vx = vy = None
    for t in range(steps):
        sx, sy = hist[max(t - tau_seq[t], 0)]
        gx, gy = _grads(sx, sy)
        vx = gx if (vx is None or not momentum) else momentum * vx + gx
        vy = gy if (vy is None or not momentum) else momentum * vy + gy
        x, y = x - lr * vx, y - lr * vy
        hist.append((x, y))
    return x, y


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_delayed_sgd_fixed_delay_against_loop(momentum):
    xs, ys, _ = _run("delayed-sgd", steps=8, lr=0.1, delay=3, momentum=momentum)
    x, y = _delayed_reference(0.1, [3] * 8, momentum, 8)
    assert np.allclose(xs, x, atol=TOL) and np.allclose(ys, y, atol=TOL)


def test_delayed_sgd_random_delay_against_loop():
    xs, ys, opt = _run("delayed-sgd", steps=12, lr=0.1, delay=4, random_delay=True, momentum=0.3, seed=5)
    assert isinstance(opt, DelayedSGD)
    drawn = opt.delays
    assert all(0 <= d <= 4 for d in drawn) and len(set(drawn)) > 1
    # the reference takes the stale iterate t − τ_t clipped at 0, as the optimizer documents
    x, y = _delayed_reference(0.1, drawn, 0.3, 12)
    assert np.allclose(xs, x, atol=TOL) and np.allclose(ys, y, atol=TOL)


def test_delayed_sgd_zero_delay_is_torch_sgd():
    xs, ys, _ = _run("delayed-sgd", steps=5, lr=0.1, delay=0, momentum=0.9)
    x, y = _quadratic_params()
    opt = torch.optim.SGD([x, y], lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        _loss(x, y).backward()
        opt.step()
    assert np.allclose(xs, x.detach().numpy(), atol=TOL)


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g, dtype=torch.float64)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1).double()


def test_trainer_with_registry_optimizer_matches_manual_loop():
    x, y = _data()
    mse = torch.nn.functional.mse_loss
    m1 = _model()
    Trainer(m1, mse, (x, y), lr=0.05, max_steps=20, optimizer="adam").fit()
    m2 = _model()
    opt = torch.optim.Adam(m2.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        mse(m2(x), y).backward()
        opt.step()
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(a, b, atol=1e-12)


def test_trainer_registry_sgd_equals_fast_path_minibatch():
    x, y = _data()
    mse = torch.nn.functional.mse_loss
    m1, m2 = _model(), _model()
    Trainer(m1, mse, (x, y), lr=0.05, batch_size=8, max_steps=15, momentum=0.9, seed=3).fit()
    Trainer(m2, mse, (x, y), lr=0.05, batch_size=8, max_steps=15, seed=3, optimizer="sgd", optimizer_options={"momentum": 0.9}).fit()
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(a, b, atol=1e-12)


def test_trainer_closure_optimizer_and_option_conflict():
    x, y = _data()
    mse = torch.nn.functional.mse_loss
    res = Trainer(_model(), mse, (x, y), lr=0.05, max_steps=30, optimizer="sam", optimizer_options={"rho": 0.01}).fit()
    assert res.status == "budget" and res.loss < mse(_model()(x), y).item()
    with pytest.raises(ValueError, match="optimizer_options"):
        Trainer(_model(), mse, (x, y), lr=0.05, momentum=0.9, optimizer="adam")
