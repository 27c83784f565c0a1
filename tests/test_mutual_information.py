"""The MI estimators against the truth: exact binned MI on finite populations (a python loop over
the joint table), closed forms for Gaussian pairs and a binary symmetric channel, numerical
integration for binned Gaussians, Monte Carlo for the noisy-output channel."""

import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from genlab.errors import InputError
from genlab.probes.mutual_information import adaptive_bins, binned_mi, fixed_bins, kde_mi, noisy_mi
from genlab.theory.information import bsc_mi, gaussian_mi


def loop_mi(a_rows, b_rows):
    """I(A;B) in bits from the joint table of hashable rows, by the definition Σ p log p/(p p)."""
    n = len(a_rows)
    pa, pb, pab = Counter(a_rows), Counter(b_rows), Counter(zip(a_rows, b_rows))
    return sum(c / n * math.log2((c / n) / (pa[a] / n * pb[b] / n)) for (a, b), c in pab.items())


def test_binned_mi_is_exact_on_a_population():
    # 12 binary inputs (4096 equally likely patterns), a deterministic 3-unit tanh layer, a label
    rng = np.random.default_rng(0)
    x = ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(float)
    t = np.tanh(x @ rng.standard_normal((12, 3)))
    y = (x.sum(1) > 6).astype(int)
    bins = 30
    tb = [tuple(r) for r in np.clip(np.floor((t + 1) / 2 * bins), 0, bins - 1).astype(int)]
    xr = [tuple(r) for r in x]
    r_xt = binned_mi(x, t, a_discrete=True, b_range=(-1, 1), bins=bins, population=True)
    r_ty = binned_mi(t, y, b_discrete=True, a_range=(-1, 1), bins=bins, population=True)
    assert r_xt.value == pytest.approx(loop_mi(xr, tb), abs=1e-10)
    assert r_ty.value == pytest.approx(loop_mi(tb, list(y)), abs=1e-10)
    assert r_xt.bias == 0 and r_xt.stderr == 0
    # T a function of X, X uniform on 4096 patterns: I(X;T) = H(T_binned) ≤ 12 bits; I(X;Y) = H(Y)
    counts = np.array(list(Counter(tb).values())) / 4096
    assert r_xt.value == pytest.approx(-(counts * np.log2(counts)).sum(), abs=1e-10)
    assert binned_mi(x, x, a_discrete=True, b_discrete=True, population=True).value == pytest.approx(12.0, abs=1e-12)
    p1 = y.mean()
    assert binned_mi(x, y, a_discrete=True, b_discrete=True, population=True).value == pytest.approx(
        -(p1 * math.log2(p1) + (1 - p1) * math.log2(1 - p1)), abs=1e-12
    )


def test_bin_assignments():
    assert fixed_bins(np.array([-1.0, -0.99, 0.0, 0.99, 1.0]), 4, -1, 1).tolist() == [0, 0, 2, 3, 3]
    v = np.random.default_rng(1).standard_normal((999, 3))
    counts = np.bincount(adaptive_bins(v, 10).reshape(-1), minlength=10)
    # equal mass: quantile edges of 2997 pooled distinct values put 299 or 300 values in each bin
    assert counts.min() >= 299 and counts.max() <= 300


def _binned_gaussian_truth(rho, edges):
    """Exact MI of the binned pair (A, B) ~ N(0, [[1, ρ], [ρ, 1]]): cell probabilities by the CDF."""
    e = np.concatenate([[-12.0], edges, [12.0]])
    mvn = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]])
    F = np.array([[mvn.cdf([a, b]) if np.isfinite(a) and np.isfinite(b) else 0.0 for b in e] for a in e])
    P = np.clip(F[1:, 1:] - F[:-1, 1:] - F[1:, :-1] + F[:-1, :-1], 0, None)
    pa, pb = P.sum(1), P.sum(0)
    m = P > 1e-300
    return float((P[m] * np.log2(P[m] / np.outer(pa, pb)[m])).sum())


@pytest.mark.parametrize("strategy", ["fixed", "adaptive"])
def test_binned_mi_of_gaussian_samples_within_its_error_bar(strategy):
    rho, n, bins = 0.8, 4000, 12
    rng = np.random.default_rng(2)
    z = rng.standard_normal((n, 2))
    a, b = z[:, 0], rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]
    if strategy == "fixed":
        r = binned_mi(a, b, bins=bins, a_range=(-4, 4), b_range=(-4, 4))
        edges = np.linspace(-4, 4, bins + 1)[1:-1]
    else:
        r = binned_mi(a, b, bins=bins, strategy="adaptive")
        edges = norm.ppf(np.linspace(0, 1, bins + 1)[1:-1])  # population quantiles
    truth = _binned_gaussian_truth(rho, edges)
    # the sample estimate minus its estimated bias is within 4 standard errors of the exact binned MI
    # (the adaptive edges are themselves estimated: their O(1/√N) jitter is inside the error bar)
    assert abs(r.corrected - truth) <= 4 * r.stderr
    assert r.bias > 0 and r.miller_madow > 0  # the plug-in MI overestimates
    # and the binned MI approaches the closed form as bins get finer (data-processing: it is below)
    assert truth < gaussian_mi(rho) < truth + 0.15


def test_binned_mi_binary_symmetric_channel_error_bar_is_calibrated():
    rng = np.random.default_rng(3)
    flip, n = 0.1, 2000

    def draw():
        x = rng.integers(0, 2, n)
        return x, np.where(rng.random(n) < flip, 1 - x, x)

    est = [binned_mi(*draw(), a_discrete=True, b_discrete=True, repeats=10, seed=i) for i in range(40)]
    values = np.array([e.value for e in est])
    se = np.array([e.stderr for e in est])
    # mean over 40 draws within 4 standard errors of its mean of the closed form 1 − H(0.1)
    assert abs(values.mean() - bsc_mi(flip)) <= 4 * values.std(ddof=1) / math.sqrt(40)
    # the reported error bar matches the spread over independent draws (factor 1.6: the ratio of a
    # std from 40 draws to the truth lies within ±35% with high probability, plus the half-sample approximation)
    assert 1 / 1.6 <= np.median(se) / values.std(ddof=1) <= 1.6


def _kde_large_n_limit(rho, n):
    """E[resubstitution KDE MI] as N → ∞ with Scott's bandwidth at this n: the cross-entropies
    E_p[−log q] with q = p convolved with the kernel (Gaussian, closed form), in bits."""
    def ce(cov, c2):
        q = cov + c2 * np.diag(np.diag(cov))
        return 0.5 * math.log(np.linalg.det(2 * math.pi * q)) + 0.5 * np.trace(np.linalg.solve(q, cov))
    cov = np.array([[1.0, rho], [rho, 1.0]])
    c1, c2 = n ** (-2 / 5), n ** (-2 / 6)
    return (ce(cov[:1, :1], c1) * 2 - ce(cov, c2)) / math.log(2)


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_kde_mi_of_gaussian_pair(rho):
    n = 1000
    z = np.random.default_rng(4).standard_normal((n, 2))
    a, b = z[:, 0], rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]
    r = kde_mi(a, b)
    # within 4 standard errors of its large-sample limit (the smoothing bias of Scott's rule, exact for Gaussians)
    assert abs(r.value - _kde_large_n_limit(rho, n)) <= 4 * r.stderr
    # and that smoothing bias is small at this n: within 0.1 bits of −½log2(1−ρ²)
    assert abs(_kde_large_n_limit(rho, n) - gaussian_mi(rho)) <= 0.1


def test_kde_and_binned_mi_of_a_gaussian_noise_channel_with_discrete_input():
    # Y a fair bit, T = 2Y − 1 + N(0, s²): I(T;Y) = h(T) − h(T|Y) by numerical integration
    s, n = 0.7, 2000
    grid = np.linspace(-8, 8, 20001)
    p = 0.5 * (norm.pdf(grid, -1, s) + norm.pdf(grid, 1, s))
    truth = (-np.trapezoid(p * np.log2(p), grid)) - 0.5 * math.log2(2 * math.pi * math.e * s * s)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    t = 2 * y - 1 + s * rng.standard_normal(n)
    r = kde_mi(t, y, b_discrete=True)
    assert abs(r.value - truth) <= 4 * r.stderr + 0.03  # + the O(h²) smoothing bias, ≤ 0.03 bits at h = 0.27·σ̂
    rb = binned_mi(t, y, b_discrete=True, bins=30, a_range=(-4, 4))
    assert abs(rb.corrected - truth) <= 4 * rb.stderr + 0.02  # + discretization (bin width 0.27 ≈ 0.4 s)


def _mixture_mi_monte_carlo(t, noise_var, y=None, samples=100_000, seed=0):
    """I(X;T') (or I(Y;T')) of T' = t_X + N(0, σ²I), X uniform: −E log p(T') − h(noise) by sampling
    T' and evaluating the exact mixture density; returns (value, standard error) in bits."""
    rng = np.random.default_rng(seed)
    n, d = t.shape
    idx = rng.integers(0, n, samples)
    tp = t[idx] + math.sqrt(noise_var) * rng.standard_normal((samples, d))

    def log_mix(points, centers):
        d2 = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
        lk = -d2 / (2 * noise_var)
        m = lk.max(1, keepdims=True)
        return (m + np.log(np.exp(lk - m).mean(1, keepdims=True))).reshape(-1) - 0.5 * d * math.log(2 * math.pi * noise_var)

    lp = log_mix(tp, t)
    if y is None:
        per = -lp / math.log(2) - 0.5 * d * math.log2(2 * math.pi * math.e * noise_var)
    else:
        lc = np.empty(samples)
        for c in np.unique(y):
            sel = y[idx] == c
            lc[sel] = log_mix(tp[sel], t[y == c])
        per = (lc - lp) / math.log(2)
    return float(per.mean()), float(per.std(ddof=1) / math.sqrt(samples))


@pytest.mark.parametrize("spread", [0.3, 1.0, 3.0])
def test_noisy_mi_brackets_the_noisy_channel(spread):
    rng = np.random.default_rng(6)
    t = spread * rng.standard_normal((40, 2))
    y = (t[:, 0] > 0).astype(int)
    r = noisy_mi(t, noise_var=0.1)
    truth, se = _mixture_mi_monte_carlo(t, 0.1)
    assert r.lower - 4 * se <= truth <= r.value + 4 * se
    ry = noisy_mi(t, y, noise_var=0.1)
    truth_y, se_y = _mixture_mi_monte_carlo(t, 0.1, y=y)
    # I(Y;T') = H(T') − H(T'|Y): a difference of bounds is no bound, but each entropy is bracketed,
    # so the truth is within the bracket width of the estimate
    assert abs(ry.value - truth_y) <= r.bias + 4 * se_y


def test_noisy_mi_limits():
    far = np.arange(16.0)[:, None] * 100
    assert noisy_mi(far, noise_var=0.1).value == pytest.approx(4.0, abs=1e-9)  # log2 16: inputs told apart
    assert noisy_mi(far, noise_var=0.1, bound="lower").value == pytest.approx(4.0, abs=1e-9)
    assert noisy_mi(np.zeros((16, 3)), noise_var=0.1).value == pytest.approx(0.0, abs=1e-12)


def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="strategy"):
        binned_mi(np.zeros(3), np.zeros(3), strategy="x")
    with pytest.raises(InputError, match="a and b"):
        binned_mi(np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match="noise_var"):
        noisy_mi(np.zeros((3, 1)), noise_var=0)


def test_codes_match_whole_row_comparison():
    from genlab.probes.mutual_information import codes

    rng = np.random.default_rng(7)
    for shape in [(300, 3), (300, 45)]:  # mixed radix, and the whole-row fallback (3^45 > 2^62)
        a = rng.integers(0, 3, shape).astype(float)
        assert np.array_equal(codes(a), np.unique(a, axis=0, return_inverse=True)[1].reshape(-1))
