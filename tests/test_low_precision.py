"""Simulated low-bit accumulation against IEEE half / bfloat16 and a sequential numpy loop."""

import numpy as np
import pytest
import torch

from genlab.models.low_precision import AccumLinear, accumulate_matmul, round_float


def test_rounding_matches_half_and_bfloat16():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, generator=g, dtype=torch.float64) * torch.exp(torch.randn(20000, generator=g, dtype=torch.float64) * 4)
    x = x[(x.abs() < 6e4)]  # half's finite range
    x = torch.cat([x, torch.tensor([0.0, 1e-8, -3e-6, 2.0**-24, 1.5 * 2.0**-24, 65504.0])])  # subnormals, ties
    # float32 inputs: torch converts float64 → half through float32 (double rounding), float32 → half once
    x = x.float().double()
    assert torch.equal(round_float(x, 10, 5), x.to(torch.float16).to(torch.float64))
    y = x * 1e10
    assert torch.equal(round_float(y, 7, 8), y.to(torch.bfloat16).to(torch.float64))
    # saturation instead of inf
    assert float(round_float(torch.tensor([1e6], dtype=torch.float64), 10, 5)) == 65504.0
    with pytest.raises(ValueError, match="mantissa"):
        round_float(x, -1, 5)


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_accumulation_matches_sequential_half_loop(chunk):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 23, generator=g, dtype=torch.float64)
    w = torch.randn(5, 23, generator=g, dtype=torch.float64) * 3
    got = accumulate_matmul(x, w, 10, 5, chunk=chunk)
    ref = np.zeros((4, 5))
    for b in range(4):
        for o in range(5):
            p = (x[b] * w[o]).numpy()
            total = np.float16(0)
            for start in range(0, 23, chunk):
                s = np.float16(0)
                for v in p[start:start + chunk]:
                    s = np.float16(np.float64(s) + v)  # one correctly rounded half addition
                total = np.float16(np.float64(total) + np.float64(s))
            ref[b, o] = float(total)
    assert np.array_equal(got.numpy(), ref)


def test_wide_accumulator_is_exact_and_narrow_one_swamps():
    x = torch.tensor([[1.0] + [1e-3] * 99], dtype=torch.float64)
    w = torch.ones(1, 100, dtype=torch.float64)
    assert float(accumulate_matmul(x, w, 40, 11, chunk=100)) == pytest.approx(1.099, abs=1e-10)  # ≤ 99 roundings of ½ulp = 2^-41 each
    # 4 mantissa bits (ulp 1/16 at 1): 1 + 1e-3 rounds back to 1 every time (swamping); with chunks of 50
    # the second chunk sums to 0.05 in its own accumulator, and 1 + 0.05 rounds up to 1.0625
    assert float(accumulate_matmul(x, w, 4, 6, chunk=100)) == 1.0
    assert float(accumulate_matmul(x, w, 4, 6, chunk=50)) == 1.0625


def test_gradients():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 8, generator=g, dtype=torch.float64, requires_grad=True)
    out = accumulate_matmul(x, w, 3, 5, chunk=4, grad_mode="ste")
    gx, gw = torch.autograd.grad(out.sum(), [x, w])
    assert torch.allclose(gx, torch.ones(3, 4, dtype=torch.float64) @ w) and torch.allclose(gw, torch.ones(4, 3, dtype=torch.float64) @ x)
    # swamp mode with a wide accumulator: nothing is swamped, so it equals the STE
    out = accumulate_matmul(x, w, 30, 8, chunk=4, grad_mode="swamp")
    gx2, gw2 = torch.autograd.grad(out.sum(), [x, w])
    assert torch.allclose(gx2, gx) and torch.allclose(gw2, gw)
    # a swamped product gets no gradient
    xs = torch.tensor([[1.0, 1e-3]], dtype=torch.float64, requires_grad=True)
    ws = torch.ones(1, 2, dtype=torch.float64, requires_grad=True)
    (gws,) = torch.autograd.grad(accumulate_matmul(xs, ws, 4, 6, chunk=2, grad_mode="swamp").sum(), [ws])
    assert gws.tolist() == [[1.0, 0.0]]


def test_accum_linear_full_precision_and_low():
    torch.manual_seed(0)
    lin = AccumLinear(6, 3, dtype=torch.float64)
    x = torch.randn(5, 6, dtype=torch.float64)
    assert torch.allclose(lin(x), x @ lin.weight.T + lin.bias)
    lin.mantissa, lin.exponent = 23, 8
    assert torch.allclose(lin(x), x @ lin.weight.T + lin.bias, rtol=1e-5, atol=1e-6)
    lin.mantissa = 2
    assert not torch.allclose(lin(x), x @ lin.weight.T + lin.bias, rtol=1e-3)


def test_accum_conv1d():
    from genlab.models.low_precision import AccumConv1d

    torch.manual_seed(0)
    conv = AccumConv1d(3, 5, 4, stride=2, padding=1, dtype=torch.float64)
    x = torch.randn(2, 3, 17, dtype=torch.float64)
    ref = torch.nn.functional.conv1d(x, conv.weight, conv.bias, stride=2, padding=1)
    assert torch.allclose(conv(x), ref)
    conv.mantissa, conv.exponent = 40, 11  # a wide accumulator reproduces the convolution
    assert torch.allclose(conv(x), ref, atol=1e-9)
    # a narrow one equals the rounded accumulation of the same dot products, computed directly
    conv.mantissa, conv.exponent, conv.chunk = 4, 5, 5
    got = conv(x).detach()
    xp = torch.nn.functional.pad(x, (1, 1))
    for b, o, t in [(0, 0, 0), (1, 4, 7), (0, 2, 3)]:
        terms = (xp[b, :, 2 * t:2 * t + 4] * conv.weight[o].detach()).reshape(1, -1)
        expect = accumulate_matmul(terms, torch.ones(1, terms.shape[1], dtype=torch.float64), 4, 5, chunk=5)
        assert float(got[b, o, t]) == pytest.approx(float(expect) + float(conv.bias[o].detach()), abs=1e-12)
