"""The largest stable step size: bisection on divergence over η (for a given optimizer, batch, seed).

``diverges(eta) -> bool`` runs training at step η and says whether it diverged (a non-finite or
exploding loss). Assuming runs diverge above some η* and not below it, the bisection on log η
returns the bracket [largest stable η seen, smallest diverging η seen] with ratio ≤ ``rtol``.
Used by the async-delay and lr-batch-scaling experiments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class StableStep:
    """``stable`` ≤ η* < ``unstable`` (``math.inf`` if none diverged up to ``hi``; ``0`` if all did)."""

    stable: float
    unstable: float
    evaluations: list[tuple[float, bool]] = field(default_factory=list)  # (η, diverged)

    @property
    def estimate(self) -> float:
        """Geometric midpoint of the bracket (the bracket's end if it is open)."""
        if math.isinf(self.unstable) or self.stable == 0:
            return self.stable if math.isinf(self.unstable) else self.unstable
        return math.sqrt(self.stable * self.unstable)


def largest_stable_step(diverges: Callable[[float], bool], lo: float, hi: float, rtol: float = 0.05, max_evals: int = 30) -> StableStep:
    """Bisection (geometric) on η in [lo, hi] for the boundary between converging and diverging runs."""
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"need 0 < lo < hi < inf, got lo={lo!r}, hi={hi!r}")
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol!r}")
    evals: list[tuple[float, bool]] = []

    def test(eta: float) -> bool:
        d = bool(diverges(eta))
        evals.append((eta, d))
        return d

    if test(lo):
        return StableStep(0.0, lo, evals)
    if not test(hi):
        return StableStep(hi, math.inf, evals)
    a, b = lo, hi
    while b / a > 1 + rtol and len(evals) < max_evals:
        mid = math.sqrt(a * b)
        if test(mid):
            b = mid
        else:
            a = mid
    return StableStep(a, b, evals)
