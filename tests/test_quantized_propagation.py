"""The quantized MLP and the layer-correlation probe, against explicit loops and the theory's φ."""

import numpy as np
import pytest
import torch

from genlab.models.quantized import QuantizedHardTanh, quantized_mlp
from genlab.probes.signal_propagation import layer_correlations
from genlab.theory.signal_propagation import quantized_activation


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_activation_matches_theory(n):
    x = torch.linspace(-2, 2, 4001, dtype=torch.float64)
    x = x[(x.unsqueeze(1) - torch.tensor(np.linspace(-1, 1, n)[:-1] + 1 / (n - 1))).abs().min(1).values > 1e-9]
    assert np.array_equal(QuantizedHardTanh(n)(x).numpy(), quantized_activation(x.numpy(), n))


def test_straight_through_gradient():
    x = torch.tensor([-1.5, -0.3, 0.2, 0.99, 1.2], requires_grad=True)
    QuantizedHardTanh(4)(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_layer_correlations_against_loop():
    g = torch.Generator().manual_seed(1)
    model = quantized_mlp(5, 64, 4, 5, 1.1, 0.05, generator=g, dtype=torch.float64)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    before = [p.clone() for p in model.parameters()]
    got = layer_correlations(model, x, [(0, 1), (1, 2)])
    # explicit loop over the layers
    h, ref = x, []
    for m in model:
        m.requires_grad_(False)

        h = m(h).detach()
        if isinstance(m, torch.nn.Linear):
            ref.append([float(torch.nn.functional.cosine_similarity(h[i], h[j], dim=0)) for i, j in [(0, 1), (1, 2)]])
    assert got.shape == (4, 2)
    assert np.allclose(got, ref, atol=1e-12)
    model.requires_grad_(True)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model[0]._forward_hooks


def test_init_statistics():
    model = quantized_mlp(10, 400, 2, 4, 1.3, 0.2, generator=torch.Generator().manual_seed(0))
    w = model[2].weight
    # std of 160000 entries: relative error ~ 1/sqrt(2·160000) ≈ 0.002
    assert float(w.detach().std()) * np.sqrt(400) == pytest.approx(1.3, rel=0.01)
    with pytest.raises(ValueError, match="n_levels"):
        QuantizedHardTanh(1)
