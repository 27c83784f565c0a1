"""Linear and Conv1d layers whose dot products accumulate in a simulated low-bit floating-point accumulator.

Blumenfeld, Hubara & Soudry 2024, "Towards cheaper inference in deep networks with lower bit-width
accumulators" (ICLR; arXiv 2401.14110), Fig. 1: in a multiply-accumulate unit the products are
summed in chunks; each partial sum is held in a float with m mantissa and e exponent bits, so
every addition is rounded (Q_acc), which loses the small terms added to a large sum ("swamping")
and the values beyond the format's range. Simulated here in float64: every addition s ← Q(s + p)
is rounded to nearest (ties to even) to m mantissa bits with e exponent bits (IEEE-style bias
2^(e−1) − 1, subnormals kept, values beyond the largest finite number saturate). A dot product of
length K with chunk size c: within each chunk the products are added one by one, then the chunk
sums are added one by one. Products and the bias are kept exact (the paper also quantizes
products, Q_prod; not simulated here).

Gradients: ``"ste"`` — straight through, the gradient of the exact matmul. ``"swamp"`` — each
product's gradient is zeroed when adding it left its partial sum unchanged (fully swamped): the
product then had no effect on the output. The paper states that finer gradient approximations
help at the lowest bit widths; we could not read its exact estimator, so ``"swamp"`` is our
reading of "fine-grained", not the paper's formula.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

GradMode = Literal["ste", "swamp"]


def round_float(x: torch.Tensor, mantissa: int, exponent: int) -> torch.Tensor:
    """x rounded to nearest (ties to even) in a float with ``mantissa`` fraction bits and
    ``exponent`` exponent bits (bias 2^(e−1) − 1; subnormals; saturating at the largest finite
    value). (10, 5) is IEEE half precision, (7, 8) bfloat16, within range."""
    if mantissa < 0 or exponent < 2:
        raise ValueError(f"need mantissa >= 0 and exponent >= 2, got {mantissa}, {exponent}")
    bias = 2 ** (exponent - 1) - 1
    e_min = 1 - bias
    e_max = 2**exponent - 2 - bias
    largest = (2.0 - 2.0 ** (-mantissa)) * 2.0**e_max
    _, k = torch.frexp(x)  # x = f·2^k, |f| ∈ [0.5, 1): leading bit at 2^(k−1)
    e = torch.clamp(k - 1, min=e_min)  # subnormals share the smallest exponent's spacing
    ulp = torch.ldexp(torch.ones_like(x), (e - mantissa).to(torch.int32))
    y = torch.round(x / ulp) * ulp  # torch.round: half to even
    return torch.clamp(y, -largest, largest)


def _accumulate(p: torch.Tensor, mantissa: int, exponent: int, chunk: int, want_mask: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ over the last axis of ``p`` with every addition rounded; chunked. Returns the sum and (if
    ``want_mask``) a mask of the terms whose addition left the partial sum unchanged (swamped)."""
    k = p.shape[-1]
    n_chunks = math.ceil(k / chunk)
    pad = n_chunks * chunk - k
    if pad:
        p = torch.nn.functional.pad(p, (0, pad))
    pc = p.reshape(*p.shape[:-1], n_chunks, chunk)
    s = torch.zeros(pc.shape[:-1], dtype=p.dtype)
    swamped = torch.zeros_like(pc, dtype=torch.bool) if want_mask else torch.zeros(0, dtype=torch.bool)
    for i in range(chunk):
        new = round_float(s + pc[..., i], mantissa, exponent)
        if want_mask:
            swamped[..., i] = (new == s) & (pc[..., i] != 0)
        s = new
    total = torch.zeros(s.shape[:-1], dtype=p.dtype)
    for j in range(n_chunks):
        total = round_float(total + s[..., j], mantissa, exponent)
    return total, (swamped.reshape(*p.shape[:-1], n_chunks * chunk)[..., :k] if want_mask else swamped)


class _AccumMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, mantissa, exponent, chunk, grad_mode, sim_dtype):  # type: ignore[override]
        p = x.to(sim_dtype)[:, None, :] * w.to(sim_dtype)[None, :, :]  # (batch, out, in) products
        out, swamped = _accumulate(p, mantissa, exponent, chunk, want_mask=grad_mode == "swamp" and ctx.needs_input_grad[0] | ctx.needs_input_grad[1])
        ctx.save_for_backward(x, w, swamped)
        ctx.grad_mode = grad_mode
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w, swamped = ctx.saved_tensors
        if ctx.grad_mode == "ste":
            return g @ w, g.T @ x, None, None, None, None, None
        gp = g[:, :, None] * (~swamped).to(g.dtype)  # ∂out/∂p = 1 unless swamped
        return torch.einsum("boi,oi->bi", gp, w), torch.einsum("boi,bi->oi", gp, x), None, None, None, None, None


def accumulate_matmul(x: torch.Tensor, w: torch.Tensor, mantissa: int, exponent: int, chunk: int = 16,
                      grad_mode: GradMode = "ste", sim_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """x (batch, in) @ wᵀ (in → out) with every accumulation rounded (see the module docstring).

    ``sim_dtype`` float64 is exact for m ≤ 23 mantissa bits; float32 (faster) rounds each sum
    s + p once to 24 bits before the m-bit rounding, a double rounding that can move a value
    sitting within 2^-24 relative of a tie by one m-bit ulp — rare, and fine for a simulation."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if grad_mode not in ("ste", "swamp"):
        raise ValueError(f"grad_mode must be 'ste' or 'swamp', got {grad_mode!r}")
    return _AccumMatmul.apply(x, w, int(mantissa), int(exponent), int(chunk), grad_mode, sim_dtype)


class AccumLinear(nn.Linear):
    """nn.Linear whose matmul accumulates in an (m, e) float with chunk size ``chunk``; the bias is
    added exactly. ``mantissa=None`` computes in full precision (the float32 baseline)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, mantissa: int | None = None,
                 exponent: int = 8, chunk: int = 16, grad_mode: GradMode = "ste", sim_dtype: torch.dtype = torch.float64,
                 **kwargs):
        super().__init__(in_features, out_features, bias=bias, **kwargs)
        self.mantissa, self.exponent, self.chunk, self.grad_mode = mantissa, exponent, chunk, grad_mode
        self.sim_dtype = sim_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mantissa is None:
            return super().forward(x)
        shape = x.shape
        out = accumulate_matmul(x.reshape(-1, shape[-1]), self.weight, self.mantissa, self.exponent, self.chunk, self.grad_mode,
                                self.sim_dtype)
        out = out.reshape(*shape[:-1], self.out_features)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mantissa={self.mantissa}, exponent={self.exponent}, chunk={self.chunk}, grad={self.grad_mode}"


class AccumConv1d(nn.Conv1d):
    """nn.Conv1d (groups = 1, dilation 1) whose dot products (in_channels × kernel_size terms
    per output) accumulate in the simulated (m, e) float, through :func:`accumulate_matmul` on the
    unfolded input; the bias is added exactly. ``mantissa=None`` is the full-precision layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, mantissa: int | None = None, exponent: int = 8, chunk: int = 16,
                 grad_mode: GradMode = "ste", sim_dtype: torch.dtype = torch.float64, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias, **kwargs)
        if self.groups != 1 or self.dilation != (1,) or self.padding_mode != "zeros":
            raise ValueError("AccumConv1d supports groups=1, dilation=1 and zero padding only")
        self.mantissa, self.exponent, self.chunk, self.grad_mode = mantissa, exponent, chunk, grad_mode
        self.sim_dtype = sim_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mantissa is None:
            return super().forward(x)
        (k,), (s,), (p,) = self.kernel_size, self.stride, self.padding
        xp = torch.nn.functional.pad(x, (p, p))
        cols = xp.unfold(2, k, s)  # (batch, in, L_out, k)
        batch, _, length, _ = cols.shape
        cols = cols.permute(0, 2, 1, 3).reshape(batch * length, -1)  # rows: (in, k) flattened like the weight
        out = accumulate_matmul(cols, self.weight.reshape(self.out_channels, -1), self.mantissa, self.exponent, self.chunk,
                                self.grad_mode, self.sim_dtype)
        out = out.reshape(batch, length, self.out_channels).permute(0, 2, 1)
        return out + self.bias[None, :, None] if self.bias is not None else out
