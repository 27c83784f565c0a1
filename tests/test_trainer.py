"""The Trainer against closed-form GD iterates, torch.optim.SGD, and its stopping rules."""

import numpy as np
import pytest
import torch

from genlab.recorder import MemoryRecorder
from genlab.train import Measurement, Trainer, save_checkpoint, load_checkpoint, step_decay, cosine


def linreg(seed=0, n=20, d=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    return x, y


def linear_model(d=3):
    m = torch.nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        m.weight.zero_()
    return m


def mse(o, t):
    return 0.5 * ((o - t) ** 2).mean()


def test_gd_matches_closed_form_iterates():
    x, y = linreg()
    m = linear_model()
    Trainer(m, mse, (x, y), lr=0.1, max_steps=50).fit()
    X, Y = x.numpy(), y.numpy()
    w = np.zeros((3, 1))
    for _ in range(50):
        w -= 0.1 * X.T @ (X @ w - Y) / len(X)
    np.testing.assert_allclose(m.weight.detach().numpy().T, w, rtol=1e-12)


@pytest.mark.parametrize("momentum,wd", [(0.9, 0.0), (0.0, 0.01), (0.5, 0.1)])
def test_sgd_matches_torch_optim(momentum, wd):
    x, y = linreg(1)
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    b = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    b.load_state_dict(a.state_dict())
    Trainer(a, mse, (x, y), lr=0.05, momentum=momentum, weight_decay=wd, max_steps=30).fit()
    opt = torch.optim.SGD(b.parameters(), lr=0.05, momentum=momentum, weight_decay=wd)
    for _ in range(30):
        opt.zero_grad()
        mse(b(x), y).backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_minibatch_sgd_is_deterministic_for_a_seed():
    x, y = linreg(2, n=40)

    def train(seed):
        torch.manual_seed(0)
        m = torch.nn.Linear(3, 1).double()
        Trainer(m, mse, (x, y), lr=0.05, batch_size=8, max_steps=60, seed=seed).fit()
        return torch.cat([p.detach().reshape(-1) for p in m.parameters()])

    assert torch.equal(train(5), train(5))
    assert not torch.equal(train(5), train(6))


def test_divergence_is_a_status_with_the_step():
    x, y = linreg()
    m = linear_model()
    rec = MemoryRecorder()
    r = Trainer(m, mse, (x, y), lr=50.0, max_steps=10_000, recorder=rec).fit()
    assert r.status == "diverged" and r.diverged
    assert 0 < r.steps < 10_000
    steps, values = rec.series("diverged_at")
    assert values == [r.steps]


def test_convergence_by_gradient_tolerance():
    x, y = linreg()
    m = linear_model()
    r = Trainer(m, mse, (x, y), lr=0.2, max_steps=100_000, grad_tol=1e-9).fit()
    assert r.status == "converged" and r.grad_norm <= 1e-9
    w_star = torch.linalg.lstsq(x, y).solution
    torch.testing.assert_close(m.weight.detach().T, w_star, rtol=1e-7, atol=1e-8)
    r2 = Trainer(linear_model(), mse, (x, y), lr=0.2, max_steps=7).fit()
    assert r2.status == "budget" and r2.steps == 7


def test_loss_tolerance_and_measurements():
    x, y = linreg(n=3)  # 3 points, 3 weights: interpolable
    m = linear_model()
    rec = MemoryRecorder()
    calls = []
    meas = Measurement(5, lambda model, step: calls.append(step) or {"w0": float(model.weight[0, 0].detach())})
    r = Trainer(m, mse, (x, y), lr=0.1, max_steps=100_000, loss_tol=1e-6, measurements=[meas], recorder=rec, prefix="p/").fit()
    assert r.status == "converged" and r.loss <= 1e-6
    assert calls[:3] == [0, 5, 10] and calls[-1] == r.steps
    assert len(calls) == len(set(calls))  # the last step is measured once, due or not
    assert rec.series("p/w0")[0] == calls
    assert rec.series("p/loss")[0][0] == 0


def test_schedules_and_checkpoint(tmp_path):
    s = step_decay(1.0, [10, 20], 0.5)
    assert [s(0), s(10), s(25)] == [1.0, 0.5, 0.25]
    c = cosine(1.0, 100)
    assert c(0) == pytest.approx(1.0) and c(100) == pytest.approx(0.0) and c(50) == pytest.approx(0.5)
    m = linear_model()
    with torch.no_grad():
        m.weight.fill_(3.0)
    path = save_checkpoint(m, tmp_path / "ck.pt")
    m2 = load_checkpoint(linear_model(), path)
    assert torch.equal(m2.weight, m.weight)


def test_half_squared_loss_against_hand_values():
    from genlab.train.losses import half_squared_loss

    out = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    tgt = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    # (1/2)·mean over examples of ‖·‖²: ((1 + 4) + 9) / 2 / 2 = 3.5
    assert float(half_squared_loss(out, tgt)) == pytest.approx(3.5)
    # scalar outputs: (n,) and (n, 1) give the same value, no broadcasting to (n, n)
    a, b = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    assert float(half_squared_loss(a, b)) == pytest.approx(1.25)
    assert float(half_squared_loss(a[:, None], b)) == pytest.approx(1.25)
