"""The weight-decay continuation path reaches the ridge-regression minimizer (closed form)."""

import numpy as np
import pytest
import torch

from genlab.train.weight_decay_path import weight_decay_path


def test_reaches_ridge_solution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64) + 0.1 * torch.randn(40, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(5, 1, bias=False, dtype=torch.float64)
    seen = []
    for lam in weight_decay_path(model, x, y, lambda: 0.5 * model.weight.pow(2).sum(), [0.1, 1.0], steps=3000, lr=0.05):
        seen.append(lam)
        # minimizer of (1/2n)‖Xw − y‖² + (λ/2)‖w‖²: (XᵀX/n + λI)⁻¹Xᵀy/n
        n = x.shape[0]
        ridge = np.linalg.solve(x.T.numpy() @ x.numpy() / n + lam * np.eye(5), x.T.numpy() @ y.numpy() / n)
        # Adam with a cosine-annealed step ends within ~1e-4 of the minimizer of this strongly convex problem
        assert model.weight.detach().numpy().ravel() == pytest.approx(ridge, abs=1e-3)
    assert seen == [1.0, 0.1]
