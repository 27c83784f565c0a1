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


@dataclass(frozen=True)
class SNRSummary:
    """Signal-to-noise of one group of parameters."""

    mean_snr: float  # mean over parameters of μ_j²/σ_j² (parameters with σ_j = 0 left out)
    median_snr: float
    pooled_snr: float  # Σ_j μ_j² / Σ_j σ_j²
    count: int  # parameters with σ_j > 0
    zero_variance: int  # parameters with σ_j = 0 (left out of the mean and median)


@dataclass(frozen=True)
class GradientSNR:
    per_parameter: dict[str, torch.Tensor]  # name → μ²/σ² (nan where σ = 0)
    layers: dict[str, SNRSummary]
    overall: SNRSummary
    info: ProbeInfo | None = None


def _summary(values: list[torch.Tensor], mu2_sum: float, var_sum: float, zeros: int) -> SNRSummary:
    snr = torch.cat(values) if values else torch.zeros(0)
    return SNRSummary(
        mean_snr=float(snr.mean()) if snr.numel() else float("nan"),
        median_snr=float(snr.median()) if snr.numel() else float("nan"),
        pooled_snr=mu2_sum / var_sum if var_sum > 0 else float("nan"),
        count=int(snr.numel()),
        zero_variance=zeros,
    )


def gradient_snr(model: nn.Module, loss_fn: LossFn, data: Data, **engine: object) -> GradientSNR:
    """Per-parameter gradient signal-to-noise ratio μ_j² / σ_j² over the examples.

    μ_j = (1/N) Σ_i g_ij and σ_j² = (1/N) Σ_i g_ij² − μ_j² (population variance over examples);
    the elementwise second moments come from the engine exactly (for a Linear layer
    Σ_i (g_i a_iᵀ)² = (g²)ᵀ(a²)). This is the per-coordinate SNR of Liu, Bernstein, Meister & Yue
    2020 ("Understanding why neural networks generalize well through GSNR of parameters",
    arXiv 2001.07384, eq. 2, with the population variance); summarized per layer and overall
    (mean and median over parameters with σ_j > 0, and the pooled Σμ_j² / Σσ_j²).

    Rounding counts as zero variance: a variance below max(1e-12, 10·eps) of the entry's second
    moment (cancellation in E g² − (E g)²), and an entry whose second moment is at rounding level
    relative to its layer — below (100·eps)² × the layer's largest — i.e. a gradient that is zero
    in exact arithmetic and nonzero only by rounding (the key bias of ``nn.MultiheadAttention``,
    which softmax's shift invariance makes exactly gradient-free).
    """
    st = per_example_stats(model, loss_fn, data, second_moment=True, **engine)  # type: ignore[arg-type]
    assert st.second_moment is not None
    per: dict[str, torch.Tensor] = {}
    groups: dict[str, list] = {}
    layer_max: dict[str, float] = {}
    for n, sec in st.second_moment.items():
        layer_max[layer_of(n)] = max(layer_max.get(layer_of(n), 0.0), float(sec.max()) if sec.numel() else 0.0)
    for n, mu in st.mean_grad.items():
        mu2 = mu.pow(2)
        second = st.second_moment[n]
        var = second - mu2
        eps = torch.finfo(second.dtype).eps
        ok = (var > max(1e-12, 10 * eps) * second) & (second > (100 * eps) ** 2 * layer_max[layer_of(n)])
        snr = mu2 / torch.where(ok, var, torch.ones_like(var))
        per[n] = torch.where(ok, snr, torch.full_like(snr, float("nan")))
        g = groups.setdefault(layer_of(n), [[], 0.0, 0.0, 0])
        g[0].append(snr[ok])
        g[1] += float(mu2.sum())
        g[2] += float(torch.where(ok, var, torch.zeros_like(var)).sum())
        g[3] += int(ok.numel() - ok.sum())
    layers = {k: _summary(*g) for k, g in groups.items()}
    overall = _summary(
        [v for g in groups.values() for v in g[0]],
        sum(g[1] for g in groups.values()),
        sum(g[2] for g in groups.values()),
        sum(g[3] for g in groups.values()),
    )
    return GradientSNR(per_parameter=per, layers=layers, overall=overall, info=st.info)


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
