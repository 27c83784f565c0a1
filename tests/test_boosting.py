"""The boosted trainer: pseudo-residuals against autograd, one group = ordinary training, a
two-group run checked by hand (frozen first group, residuals of the second)."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import InputError
from genlab.train.boosting import boosted_fit, initial_constant, pseudo_residuals
from genlab.train.losses import half_squared_loss


def _data(n=40, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return x, y


def test_pseudo_residuals_are_minus_the_per_example_gradient():
    x, y = _data()
    F = torch.randn(len(y), 3, dtype=torch.float64, requires_grad=True)
    ce = torch.nn.functional.cross_entropy(F, y, reduction="sum")
    (g,) = torch.autograd.grad(ce, F)
    torch.testing.assert_close(pseudo_residuals("cross_entropy", F.detach(), y), -g)
    t = torch.randn(len(y), 3, dtype=torch.float64)
    sq = 0.5 * ((F - t) ** 2).sum()
    (g,) = torch.autograd.grad(sq, F)
    torch.testing.assert_close(pseudo_residuals("squared", F.detach(), t), -g)
    # F₀ minimizes the mean loss: the mean pseudo-residual at F₀ is zero
    F0 = initial_constant("cross_entropy", y, 3).expand(len(y), 3)
    torch.testing.assert_close(pseudo_residuals("cross_entropy", F0.double(), y).mean(0), torch.zeros(3, dtype=torch.float64))


def test_one_group_equals_ordinary_training():
    x, _ = _data()
    target = torch.sin(x[:, :2]).double()
    res = boosted_fit(x, target, loss="squared", groups=1, group_size=6, steps=50, lr=0.05, optimizer="sgd", seed=7)
    # the same network trained as a whole with torch's own SGD on ½‖y − f‖², output bias offset by F₀
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        first, last = torch.nn.Linear(5, 6).double(), torch.nn.Linear(6, 2).double()
    with torch.no_grad():
        last.bias += target.mean(0)
    opt = torch.optim.SGD(list(first.parameters()) + list(last.parameters()), lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        half_squared_loss(last(torch.relu(first(x))), target).backward()
        opt.step()
    m = res.model
    torch.testing.assert_close(m.hidden.weight, first.weight)
    torch.testing.assert_close(m.out.weight, last.weight)
    torch.testing.assert_close(m.base + m.group_bias[0], last.bias)
    torch.testing.assert_close(m(x), last(torch.relu(first(x))))


def test_two_groups_by_hand():
    x, y = _data(seed=1)
    nu = 0.5
    res = boosted_fit(x, y, groups=2, group_size=4, steps=30, lr=0.02, shrinkage=nu, seed=3)
    m = res.model
    one = boosted_fit(x, y, groups=1, group_size=4, steps=30, lr=0.02, shrinkage=nu, seed=3).model
    # group 1 is frozen while group 2 trains: its units are those of the one-group run
    torch.testing.assert_close(m.hidden.weight[:4], one.hidden.weight)
    torch.testing.assert_close(m.out.weight[:, :4], one.out.weight)
    torch.testing.assert_close(m(x, groups=1), one(x))
    # group 2 fitted the residuals of F₁ = one(x): rebuild h₂ from the stored weights and check its fit loss
    with torch.no_grad():
        h2 = (m(x) - m(x, groups=1)) / nu
        r1 = torch.nn.functional.one_hot(y, 3).double() - torch.softmax(one(x), 1)
    assert res.fit_loss[1] == pytest.approx(float(0.5 * ((r1 - h2) ** 2).sum(1).mean()), rel=1e-9)
    # and fitting lowered the squared error below that of h = 0
    assert res.fit_loss[1] < float(0.5 * (r1**2).sum(1).mean())


def test_bad_input():
    x, y = _data()
    with pytest.raises(InputError, match="loss"):
        boosted_fit(x, y, loss="hinge")
    with pytest.raises(InputError, match="shrinkage"):
        boosted_fit(x, y, shrinkage=0)


def test_line_search_minimizes_the_loss_along_the_group():
    from genlab.train.boosting import _line_search, _mean_loss

    x, y = _data(seed=2)
    g = torch.Generator().manual_seed(0)
    F = torch.randn(len(y), 3, generator=g, dtype=torch.float64)
    h = torch.randn(len(y), 3, generator=g, dtype=torch.float64)
    h = h + torch.nn.functional.one_hot(y, 3).double()  # a descent direction
    rho = _line_search("cross_entropy", F, h, y)
    grid = torch.linspace(0, 5, 5001, dtype=torch.float64)  # brute force on a grid of step 1e-3
    vals = torch.stack([_mean_loss("cross_entropy", F + r * h, y) for r in grid])
    assert abs(rho - float(grid[vals.argmin()])) <= 1e-3
    # squared loss: the closed form ⟨y − F, h⟩ / ‖h‖²
    t = torch.randn(len(y), 3, generator=g, dtype=torch.float64)
    want = float(((t - F) * h).sum() / (h * h).sum())
    assert _line_search("squared", F, h, t) == pytest.approx(max(want, 0.0), abs=1e-9)
