"""Live verdicts from a Monitor's history: progressive sharpening and the edge of stability.

Edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar 2021, arXiv 2103.00065; for Adam on the
preconditioned sharpness, Cohen et al. 2022, arXiv 2207.14484): the ratio r = λ_max / threshold
stays in [1 − band, 1 + band] over ``window`` consecutive measurements. Progressive sharpening
(same 2021 paper, §3): λ_max grows by ``rise`` over its first measured value while r < 1 − band.
Both are findings (measured on the user's run; no paper predicts this run's numbers).
"""

from __future__ import annotations

from genlab.monitor.thresholds import Threshold
from genlab.store import Verdict

PAPER = "Cohen et al. 2021 (arXiv 2103.00065); Cohen et al. 2022 (arXiv 2207.14484)"


def first_sharpening_step(lam: list[tuple[int, float]], ratio: list[float], band: float, rise: float) -> int | None:
    """First step where λ ≥ (1 + rise)·λ_first with r < 1 − band."""
    if not lam:
        return None
    base = lam[0][1]
    for (t, v), r in zip(lam, ratio):
        if base > 0 and v >= (1 + rise) * base and r < 1 - band:
            return t
    return None


def first_eos_step(steps: list[int], ratio: list[float], band: float, window: int) -> int | None:
    """Step that completes the first run of ``window`` consecutive ratios within 1 ± band."""
    run = 0
    for t, r in zip(steps, ratio):
        run = run + 1 if abs(r - 1) <= band else 0
        if run >= window:
            return t
    return None


def live_verdicts(history: dict[str, list[tuple[int, float]]], threshold: Threshold, band: float, window: int,
                  rise: float) -> list[Verdict]:
    lam = history.get(threshold.quantity, [])
    ratios = history.get("threshold_ratio", [])
    if threshold.value is None or not lam or len(ratios) != len(lam):
        return []
    steps = [t for t, _ in lam]
    r = [v for _, v in ratios]
    ps = first_sharpening_step(lam, r, band, rise)
    eos = first_eos_step(steps, r, band, window)
    q = "λ_max(P⁻¹H)" if threshold.quantity == "preconditioned_sharpness" else "λ_max"
    return [
        Verdict(claim=f"progressive sharpening: {q} rises below the threshold {threshold.rule}",
                predicted=f"{q} ≥ {1 + rise:g}× its first value while {q}/threshold < {1 - band:g}",
                measured=(f"became true at step {ps}" if ps is not None else "not observed")
                + f"; {q} {lam[0][1]:.4g} → {lam[-1][1]:.4g} (steps {steps[0]}–{steps[-1]})",
                tolerance=f"rise {rise:g}", passed=ps is not None, paper=PAPER, kind="finding"),
        Verdict(claim=f"edge of stability: {q}/threshold ≈ 1 ({threshold.rule})",
                predicted=f"{q}/threshold within 1 ± {band:g} at {window} consecutive measurements",
                measured=(f"became true at step {eos}" if eos is not None else "not observed")
                + f"; last ratio {r[-1]:.4g}, max {max(r):.4g}",
                tolerance=f"band ±{band:g}, window {window}", passed=eos is not None, paper=PAPER, kind="finding"),
    ]


def _series(history: dict[str, list[tuple[int, float]]], *names: str) -> list[tuple[int, tuple[float, ...]]]:
    """Rows (step, values…) at the steps where every named series was measured."""
    maps = [dict(history.get(n, [])) for n in names]
    steps = sorted(set(maps[0]).intersection(*maps[1:])) if maps else []
    return [(t, tuple(m[t] for m in maps)) for t in steps]


def first_true(rows: list[tuple[int, tuple[float, ...]]], test) -> int | None:
    return next((t for t, v in rows if test(*v)), None)


EOSS_PAPER = "Andreyev & Beneventano 2024 (arXiv 2412.20553)"
TAIL_PAPER = "Simsekli, Sagun & Gurbuzbalaban 2019 (arXiv 1901.06053)"
COHERENCE_PAPER = "Chatterjee & Zielinski 2020 (arXiv 2008.01217)"
REGIME_PAPER = "Chizat, Oyallon & Bach 2019 (arXiv 1812.07956); Fort et al. 2020 (arXiv 2010.15110)"


def eoss_verdict(history: dict[str, list[tuple[int, float]]], band: float, window: int) -> list[Verdict]:
    """Edge of stochastic stability: the mean of the last ``window`` batch-sharpness samples over
    2/η (series ``batch_sharpness_ratio``, SGD without momentum only) within 1 ± band."""
    ratio = history.get("batch_sharpness_ratio", [])
    if len(ratio) < 1:
        return []
    became, means = None, []
    for i in range(len(ratio)):
        if i + 1 >= window:
            m = sum(v for _, v in ratio[i + 1 - window:i + 1]) / window
            means.append(m)
            if became is None and abs(m - 1) <= band:
                became = ratio[i][0]
    last = f"; last {window}-sample mean ratio {means[-1]:.4g}" if means else f"; fewer than {window} samples"
    return [Verdict(claim="edge of stochastic stability: batch sharpness E_B[g_BᵀH_Bg_B/‖g_B‖²] ≈ 2/η (SGD)",
                    predicted=f"mean of {window} consecutive samples / (2/η) within 1 ± {band:g}",
                    measured=(f"became true at step {became}" if became is not None else "not observed") + last,
                    tolerance=f"band ±{band:g}, window {window}", passed=became is not None, paper=EOSS_PAPER,
                    kind="finding")]


def tail_verdict(history: dict[str, list[tuple[int, float]]]) -> list[Verdict]:
    """Heavy-tailed gradient noise: α̂'s interval lies below 2 and below the Gaussian control's interval."""
    rows = _series(history, "tail_index", "tail_index_low", "tail_index_high", "tail_index_control",
                   "tail_index_control_low", "tail_index_control_high")
    if not rows:
        return []
    t0 = first_true(rows, lambda a, lo, hi, c, clo, chi: hi < 2 and hi < clo)
    a, lo, hi, c, clo, chi = rows[-1][1]
    return [Verdict(claim="heavy-tailed gradient noise: tail index α̂ < 2 and below a Gaussian control",
                    predicted="α̂'s 95% interval below 2 and below the Gaussian control's interval",
                    measured=(f"became true at step {t0}" if t0 is not None else "not observed")
                    + f"; last α̂ {a:.3g} [{lo:.3g}, {hi:.3g}], control {c:.3g} [{clo:.3g}, {chi:.3g}]",
                    tolerance="95% intervals (delta method)", passed=t0 is not None, paper=TAIL_PAPER, kind="finding")]


def coherence_verdict(history: dict[str, list[tuple[int, float]]], factor: float) -> list[Verdict]:
    """Coherence α above its random-label level: α ≥ ``factor`` × α with the batch's targets permuted."""
    rows = _series(history, "coherence", "coherence_random")
    if not rows:
        return []
    t0 = first_true(rows, lambda a, r: a >= factor * r)
    a, r = rows[-1][1]
    return [Verdict(claim="gradient coherence above its random-label level",
                    predicted=f"α ≥ {factor:g} × α of the same batch with its targets randomly permuted (same weights)",
                    measured=(f"became true at step {t0}" if t0 is not None else "not observed")
                    + f"; last α {a:.3g}, random-label α {r:.3g}",
                    tolerance=f"factor {factor:g}", passed=t0 is not None, paper=COHERENCE_PAPER, kind="finding")]


def regime_verdicts(history: dict[str, list[tuple[int, float]]], lazy_level: float, rich_level: float) -> list[Verdict]:
    """Lazy: relative weight change and kernel distance both below ``lazy_level`` at the last
    measurement; rich: kernel distance from the first probe-batch kernel ≥ ``rich_level``."""
    rows = _series(history, "relative_weight_change", "kernel_distance")
    if not rows:
        return []
    rw, kd = rows[-1][1]
    t_rich = first_true(rows, lambda w, k: k >= rich_level)
    lazy = rw < lazy_level and kd < lazy_level
    return [
        Verdict(claim="lazy regime: weights and tangent kernel barely move",
                predicted=f"relative weight change < {lazy_level:g} and kernel distance < {lazy_level:g}",
                measured=f"at step {rows[-1][0]}: relative weight change {rw:.3g}, kernel distance {kd:.3g}",
                tolerance=f"level {lazy_level:g}", passed=lazy, paper=REGIME_PAPER, kind="finding"),
        Verdict(claim="rich regime: the tangent kernel moves (feature learning)",
                predicted=f"kernel distance from the first probe-batch kernel ≥ {rich_level:g}",
                measured=(f"became true at step {t_rich}" if t_rich is not None else "not observed")
                + f"; last kernel distance {kd:.3g}",
                tolerance=f"level {rich_level:g}", passed=t_rich is not None, paper=REGIME_PAPER, kind="finding"),
    ]
