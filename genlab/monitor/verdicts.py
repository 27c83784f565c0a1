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
