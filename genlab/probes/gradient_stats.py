"""Statistics of per-example and minibatch gradients: coherence, signal-to-noise, noise tail index.

All per-example quantities come from :func:`genlab.probes.per_example.per_example_stats`
(no per-example gradient tensors for Linear/Conv layers) and take its keywords (``mode`` —
default ``"eval"``, train-mode BatchNorm refused —, ``seed``, ``output_fn``, ``batch_size_fn``,
``indices``). The minibatch-noise probes default to ``mode="train"`` (the noise of the SGD steps
being taken; BatchNorm on each minibatch's statistics, on copies of the buffers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import torch
from torch import nn

from genlab.errors import InputError
from genlab.probes._functional import LossFn, Data
from genlab.probes._setup import ProbeInfo, forward_with_copies, logits, probe_call, seeded, take
from genlab.probes.per_example import layer_of, per_example_stats


@dataclass(frozen=True)
class Coherence:
    """α = ‖E g‖² / E‖g‖² over m examples, α⊥ = 1/m and the m-coherence m·α = α/α⊥."""

    alpha: float
    m_coherence: float
    alpha_orthogonal: float
    m: int
    mean_grad_sq_norm: float
    mean_sq_norm: float
    info: ProbeInfo | None = None


def gradient_coherence(model: nn.Module, loss_fn: LossFn, data: Data, **engine: object) -> Coherence:
    """Coherence of the per-example gradients g_z over the examples z of ``data``.

    α(V) = ‖E_z g_z‖² / E_z‖g_z‖² ∈ [0, 1] (Chatterjee & Zielinski 2020, "Making coherence out of
    nothing at all: measuring the evolution of gradient alignment", arXiv 2008.01217, Sec. 2;
    Chatterjee & Zielinski 2022, "On the generalization mystery in deep
    learning", arXiv 2203.10036, Sec. 4). For m pairwise orthogonal gradients of equal norm
    α = 1/m (α⊥), so m·α = α/α⊥ (the m-coherence) is ≈ 1 for orthogonal and m for identical
    gradients: the number of examples a step on one example helps, on average.
    """
    st = per_example_stats(model, loss_fn, data, **engine)  # type: ignore[arg-type]
    mean_sq = float(st.sq_norms.mean())
    mg_sq = float(st.mean_grad_flat().pow(2).sum())
    alpha = mg_sq / mean_sq if mean_sq > 0 else float("nan")
    return Coherence(
        alpha=alpha,
        m_coherence=st.n * alpha,
        alpha_orthogonal=1.0 / st.n,
        m=st.n,
        mean_grad_sq_norm=mg_sq,
        mean_sq_norm=mean_sq,
        info=st.info,
    )


class SNRSummary:
    """Signal-to-noise of one group of parameters. ``pooled_snr`` = Σ_j μ_j² / Σ_j σ_j² and
    ``zero_variance`` are computed at once; ``mean_snr``, ``median_snr`` (over parameters with
    σ_j > 0) and ``count`` on first access (they need every parameter's μ_j²/σ_j²; the median a sort)."""

    def __init__(self, values: Callable[[], list[torch.Tensor]], mu2_sum: float, var_sum: float, zeros: int):
        self._values = values
        self.pooled_snr = mu2_sum / var_sum if var_sum > 0 else float("nan")
        self.zero_variance = zeros  # parameters with σ_j = 0 (left out of the mean and median)

    @cached_property
    def _snr(self) -> torch.Tensor:
        parts = self._values()
        return torch.cat(parts) if parts else torch.zeros(0)

    @property
    def count(self) -> int:
        """Parameters with σ_j > 0."""
        return int(self._snr.numel())

    @cached_property
    def mean_snr(self) -> float:
        """Mean over parameters of μ_j²/σ_j² (parameters with σ_j = 0 left out)."""
        return float(self._snr.mean()) if self._snr.numel() else float("nan")

    @cached_property
    def median_snr(self) -> float:
        return float(self._snr.median()) if self._snr.numel() else float("nan")

    def __repr__(self) -> str:
        return f"SNRSummary(pooled_snr={self.pooled_snr!r}, zero_variance={self.zero_variance!r}, ...)"


class GradientSNR:
    """Per-parameter gradient SNR μ²/σ² of :func:`gradient_snr`: ``overall`` and ``layers``
    (:class:`SNRSummary`, their pooled values computed at once) and ``per_parameter`` (name →
    μ²/σ², nan where σ = 0), formed on first access."""

    def __init__(self, mean_grad: dict[str, torch.Tensor], second_moment: dict[str, torch.Tensor],
                 info: ProbeInfo | None = None):
        self.info = info
        self._mean, self._second = mean_grad, second_moment
        layer_max: dict[str, float] = {}
        for n, sec in second_moment.items():
            layer_max[layer_of(n)] = max(layer_max.get(layer_of(n), 0.0), float(sec.max()) if sec.numel() else 0.0)
        self._ok: dict[str, torch.Tensor] = {}
        sums: dict[str, list] = {}
        for n, mu in mean_grad.items():
            mu2 = mu.pow(2)
            second = second_moment[n]
            var = second - mu2
            eps = torch.finfo(second.dtype).eps
            ok = (var > max(1e-12, 10 * eps) * second) & (second > (100 * eps) ** 2 * layer_max[layer_of(n)])
            self._ok[n] = ok
            g = sums.setdefault(layer_of(n), [[], 0.0, 0.0, 0])
            g[0].append(n)
            g[1] += float(mu2.sum())
            g[2] += float((var * ok).sum())
            g[3] += int(ok.numel() - ok.count_nonzero())
        self.layers = {k: SNRSummary(self._values_of(g[0]), g[1], g[2], g[3]) for k, g in sums.items()}
        self.overall = SNRSummary(self._values_of(list(mean_grad)), sum(g[1] for g in sums.values()),
                                  sum(g[2] for g in sums.values()), sum(g[3] for g in sums.values()))

    def _values_of(self, names: list[str]) -> Callable[[], list[torch.Tensor]]:
        return lambda: [self.per_parameter[n][self._ok[n]] for n in names]

    @cached_property
    def per_parameter(self) -> dict[str, torch.Tensor]:
        """name → μ²/σ² (nan where σ = 0 or at rounding level; see :func:`gradient_snr`)."""
        out = {}
        for n, mu in self._mean.items():
            mu2 = mu.pow(2)
            ok = self._ok[n]
            var = self._second[n] - mu2
            out[n] = torch.where(ok, mu2 / torch.where(ok, var, torch.ones_like(var)), torch.full_like(mu2, float("nan")))
        return out


def gradient_snr(model: nn.Module, loss_fn: LossFn, data: Data, **engine: object) -> GradientSNR:
    """Per-parameter gradient signal-to-noise ratio μ_j² / σ_j² over the examples.

    μ_j = (1/N) Σ_i g_ij and σ_j² = (1/N) Σ_i g_ij² − μ_j² (population variance over examples);
    the elementwise second moments come from the engine exactly (for a Linear layer
    Σ_i (g_i a_iᵀ)² = (g²)ᵀ(a²)). This is the per-coordinate SNR of Liu, Bernstein, Meister & Yue
    2020 ("Understanding why neural networks generalize well through GSNR of parameters",
    arXiv 2001.07384, eq. 2, with the population variance); summarized per layer and overall
    (mean and median over parameters with σ_j > 0, and the pooled Σμ_j² / Σσ_j²). The pooled
    values are computed at once; the per-parameter map, means and medians when first read.

    Rounding counts as zero variance: a variance below max(1e-12, 10·eps) of the entry's second
    moment (cancellation in E g² − (E g)²), and an entry whose second moment is at rounding level
    relative to its layer — below (100·eps)² × the layer's largest — i.e. a gradient that is zero
    in exact arithmetic and nonzero only by rounding (the key bias of ``nn.MultiheadAttention``,
    which softmax's shift invariance makes exactly gradient-free).
    """
    st = per_example_stats(model, loss_fn, data, second_moment=True, **engine)  # type: ignore[arg-type]
    assert st.second_moment is not None
    return GradientSNR(st.mean_grad, st.second_moment, st.info)


def _largest_divisor_at_most_sqrt(n: int) -> int:
    k = math.isqrt(n)
    while n % k:
        k -= 1
    return k


def tail_index(samples: np.ndarray | torch.Tensor) -> float:
    """Tail index α̂ of symmetric α-stable samples (Mohammadi, Mohammadpour & Ogata 2015,
    "On estimating the tail index and the spectral measure of multivariate α-stable
    distributions", Metrika 78, Cor. 2.4), as used by Simsekli, Sagun & Gurbuzbalaban 2019
    ("A tail-index analysis of stochastic gradient noise in deep neural networks", arXiv 1901.06053).

    With N = K·L samples (K the largest divisor of N not above √N) and Y_l the sum of the l-th
    block of K consecutive samples: 1/α̂ = (1/log K)·[(1/L) Σ_l log|Y_l| − (1/N) Σ_i log|X_i|],
    since a sum of K i.i.d. SαS variables is K^{1/α} times one of them. α̂ = 2 for Gaussian noise,
    α̂ < 2 for heavy tails.
    """
    x = samples.detach().cpu().double().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, float)
    x = x.reshape(-1)
    n = x.size
    if n < 4:
        raise ValueError(f"tail_index needs at least 4 samples, got {n}")
    k = _largest_divisor_at_most_sqrt(n)
    if k < 2:
        # N prime: drop the last sample so that a useful block size exists
        x = x[:-1]
        n -= 1
        k = _largest_divisor_at_most_sqrt(n)
    eps = np.finfo(float).tiny
    y = x.reshape(n // k, k).sum(1)
    inv = (np.mean(np.log(np.abs(y) + eps)) - np.mean(np.log(np.abs(x) + eps))) / math.log(k)
    return float(1.0 / inv)


def minibatch_gradient_noise(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    batch_size: int,
    seed: int = 0,
    *,
    mode: str = "train",
    output_fn=None,
    batch_size_fn=None,
) -> torch.Tensor:
    """Minibatch gradients minus the full gradient, one row per minibatch of a shuffled pass (L × P).

    The pass (shuffled from ``seed``) over all of ``data`` uses ⌊N/b⌋ disjoint minibatches of size
    b (a remainder is dropped); the full gradient is the mean loss's gradient over the examples used
    (= the mean of the minibatch gradients). ``mode="train"`` (default): BatchNorm on each
    minibatch's statistics (copies of the buffers), minibatch k's dropout drawn from (seed, k)."""
    with probe_call(model, loss_fn, data, mode=mode, seed=seed, output_fn=output_fn, batch_size_fn=batch_size_fn) as s:
        m = s.model
        n = s.data.n
        if not (isinstance(batch_size, int) and 1 <= batch_size <= n // 2):
            raise InputError(f"batch_size: got {batch_size!r}; must be in [1, {n // 2}] (at least two minibatches of the {n} examples)")
        x, y = s.data.whole()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        params = [p for p in m.parameters() if p.requires_grad]
        rows = []
        for k, i in enumerate(range(0, n - batch_size + 1, batch_size)):
            idx = perm[i : i + batch_size]
            with torch.enable_grad(), seeded(seed, k):
                out = forward_with_copies(m, take(x, idx))
                loss = loss_fn(logits(out, output_fn) if output_fn is not None else out, y[idx])
                gs = torch.autograd.grad(loss, params, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, gs)]))
    noise = torch.stack(rows)
    return noise - noise.mean(0, keepdim=True)


def gradient_noise_tail_index(
    model: nn.Module, loss_fn: LossFn, data: Data, batch_size: int, seed: int = 0, **kwargs: object
) -> float:
    """Tail index of stochastic gradient noise, every coordinate of every minibatch a sample
    (Simsekli, Sagun & Gurbuzbalaban 2019, Sec. 4: "we treat each coordinate as an i.i.d. sample"),
    over all of ``data`` (keywords of :func:`minibatch_gradient_noise`)."""
    return tail_index(minibatch_gradient_noise(model, loss_fn, data, batch_size, seed, **kwargs))  # type: ignore[arg-type]
