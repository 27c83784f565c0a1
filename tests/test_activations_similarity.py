"""Layer activations (against a manual forward; the model left as it was) and CKA (against the HSIC
definition with explicit centering matrices; invariances)."""

import numpy as np
import pytest
import torch
from torch import nn

from genlab.errors import InputError
from genlab.probes.activations import layer_activations
from genlab.probes.similarity import cka, linear_cka, rbf_cka


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Tanh(), nn.Dropout(0.5), nn.Linear(7, 3)).double()


def _snapshot(model):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [len(m._forward_hooks) for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
    )


def test_layer_activations_match_a_manual_forward_and_leave_the_model_unchanged():
    net = _net()
    x = torch.randn(32, 5, dtype=torch.float64)
    net.train()  # a train-mode model: the probe measures in eval mode and gives the model back in train mode
    before = _snapshot(net)
    acts = layer_activations(net, x, ["0", "2", "4"], batch_size=10)
    after = _snapshot(net)
    for k in before[0]:
        assert torch.equal(before[0][k], after[0][k])
    assert before[1:] == after[1:]
    net.eval()
    with torch.no_grad():
        h0 = net[0](x)
        h2 = net[2](net[1](h0))
        out = net[4](net[3](h2))
    torch.testing.assert_close(acts["0"], h0, rtol=0, atol=1e-12)
    torch.testing.assert_close(acts["2"], h2, rtol=0, atol=1e-12)
    torch.testing.assert_close(acts["4"], out, rtol=0, atol=1e-12)
    assert not acts["2"].requires_grad


def test_train_mode_activations_restore_batchnorm_buffers():
    net = _net()
    net.eval()
    before = _snapshot(net)
    x = torch.randn(16, 5, dtype=torch.float64)
    acts = layer_activations(net, x, ["1"], mode="train")
    with torch.no_grad():  # batch statistics were used ...
        h = net[0](x)
        ref = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + net[1].eps) * net[1].weight + net[1].bias
    torch.testing.assert_close(acts["1"], ref, rtol=1e-10, atol=1e-10)
    after = _snapshot(net)  # ... but the running statistics and the eval flag are as they were
    for k in before[0]:
        assert torch.equal(before[0][k], after[0][k])
    assert before[1:] == after[1:]
    state = torch.get_rng_state()  # dropout in train mode does not consume the global random stream
    layer_activations(net, x, ["3"], mode="train")
    assert torch.equal(state, torch.get_rng_state())


def test_layer_activations_bad_names():
    net = _net()
    with pytest.raises(InputError, match="layers: unknown submodule 'fc9'"):
        layer_activations(net, torch.zeros(2, 5, dtype=torch.float64), ["fc9"])
    with pytest.raises(InputError, match="mode"):
        layer_activations(net, torch.zeros(2, 5, dtype=torch.float64), ["0"], mode="x")
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def _cka_definition(k, l):
    """tr(KHLH)/(n−1)² normalised, with the explicit centering matrix H (Kornblith et al. Eq. 3-4)."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    hsic = lambda a, b: np.trace(a @ h @ b @ h) / (n - 1) ** 2
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _rbf_gram(x, frac):
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    med = np.median(np.sqrt(d2[~np.eye(len(x), dtype=bool)]))
    return np.exp(-d2 / (2 * (frac * med) ** 2))


def test_cka_against_its_definition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 6))
    y = np.tanh(x @ rng.standard_normal((6, 4))) + 0.3 * rng.standard_normal((30, 4))
    xt, yt = torch.tensor(x), torch.tensor(y)
    assert float(linear_cka(xt, yt)) == pytest.approx(_cka_definition(x @ x.T, y @ y.T), rel=1e-10)
    wide = np.hstack([y, rng.standard_normal((30, 40))])  # more features than examples: the Gram form
    assert float(linear_cka(xt, torch.tensor(wide))) == pytest.approx(_cka_definition(x @ x.T, wide @ wide.T), rel=1e-10)
    for frac in (0.4, 0.8):
        assert float(rbf_cka(xt, yt, frac)) == pytest.approx(_cka_definition(_rbf_gram(x, frac), _rbf_gram(y, frac)), rel=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_cka_invariances(kernel):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((40, 8)))
    y = torch.tensor(rng.standard_normal((40, 5))) + x[:, :5]
    q = torch.linalg.qr(torch.tensor(rng.standard_normal((8, 8))))[0]
    base = float(cka(x, y, kernel))
    assert float(cka(x, x, kernel)) == pytest.approx(1.0, abs=1e-12)
    assert float(cka(x @ q, y, kernel)) == pytest.approx(base, abs=1e-10)  # orthogonal transform
    assert float(cka(3.7 * x, y, kernel)) == pytest.approx(base, abs=1e-10)  # isotropic scaling
    assert 0.0 < base < 1.0
    if kernel == "linear":  # not invariant to an anisotropic (invertible) linear map
        a = torch.diag(torch.tensor([10.0, 1, 1, 1, 1, 1, 1, 0.1], dtype=torch.float64))
        assert abs(float(cka(x @ a, y, kernel)) - base) > 1e-2
        assert float(cka(x + 5.0, y, kernel)) == pytest.approx(base, abs=1e-10)  # translation (centering)


def test_cka_is_differentiable_and_validates():
    x = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(10, 4, dtype=torch.float64)
    (1 - rbf_cka(x, y) - linear_cka(x, y)).backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(InputError, match="kernel"):
        cka(x, y, "poly")
    with pytest.raises(InputError, match="same number of examples"):
        cka(x, y[:5])
