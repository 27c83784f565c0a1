"""A time budget for the Monitor: measured overhead against the loop's own time, and the stretched
intervals that keep it within the budget.

The loop's time is what passes between the Monitor's calls (the user's forward, backward,
optimizer step, data loading), one step's capped at 3× the running step time τ (a pause —
evaluation, checkpointing — buys no Monitor time); the Monitor's time is what passes inside them. Each quantity's
cost c_q (seconds per measurement) and the loop's time per step τ are exponential moving
averages of what was measured. The allowed Monitor time per step is budget·τ plus a repayment of
the running surplus or debt over ``horizon`` steps, (budget·T_loop − T_monitor)/horizon, so the
cumulative overhead converges to the budget even when the estimates are off. It is split among
the quantities by water-filling: cheapest rate first, each gets an equal share of what is left,
a quantity whose base interval k_q needs less (c_q/k_q ≤ share) keeps k_q and frees the rest;
the others get interval c_q/share steps. A quantity not yet measured is planned with an assumed
cost (a multiple of τ: :data:`genlab.monitor.monitor.PRIOR_COST`), so that an expensive first
measurement waits until the budget affords it instead of running at step 1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


def water_fill(rates: dict[str, tuple[float, int]], allowed: float) -> dict[str, float]:
    """Interval (steps) per quantity from ``rates[q] = (cost per measurement, base interval)`` so
    that Σ cost/interval ≤ ``allowed`` (seconds per step); intervals never below the base one."""
    out: dict[str, float] = {}
    left = max(allowed, 0.0)
    order = sorted(rates, key=lambda q: rates[q][0] / rates[q][1])
    for i, q in enumerate(order):
        cost, base = rates[q]
        share = left / (len(order) - i)
        if cost / base <= share:
            out[q] = float(base)
            left -= cost / base
        else:
            out[q] = cost / share if share > 0 else math.inf
            left -= share
    return out


@dataclass
class Budget:
    """Bookkeeping of the overhead fraction ``fraction`` (in (0, 1])."""

    fraction: float
    horizon: int = 50
    smoothing: float = 0.2
    pause_factor: float = 3.0
    monitor_time: float = 0.0
    loop_time: float = 0.0
    steps: int = 0
    tau: float | None = None
    costs: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    _out: float | None = None
    _pending: float = 0.0
    _in: float | None = None

    # -- clock ------------------------------------------------------------------------------------
    def enter(self) -> None:
        """The Monitor starts working: the time since it last returned was the loop's."""
        now = time.perf_counter()
        if self._out is not None:
            self._pending += now - self._out
        self._in = now

    def leave(self) -> None:
        now = time.perf_counter()
        if self._in is not None:
            self.monitor_time += now - self._in
        self._out = now

    def pause(self) -> None:
        """From now until the Monitor's next call is neither loop nor Monitor time."""
        self.enter()  # the loop time so far counts
        self._in = self._out = None

    def resume(self) -> None:
        self._out = time.perf_counter()

    def step_done(self) -> None:
        """One training step ended: its loop time, capped at ``pause_factor``·τ (a pause — an
        evaluation pass, a checkpoint, another process — buys no Monitor time), joins the total."""
        s, self._pending = self._pending, 0.0
        self.steps += 1
        if self.tau is None and s <= 0:  # the first call: no loop time seen yet
            return
        if self.tau is not None:
            s = min(s, self.pause_factor * self.tau)
        self.loop_time += s
        self.tau = s if self.tau is None else (1 - self.smoothing) * self.tau + self.smoothing * s

    def cost(self, q: str, seconds: float) -> None:
        old = self.costs.get(q)
        self.costs[q] = seconds if old is None else (1 - self.smoothing) * old + self.smoothing * seconds

    @property
    def overhead(self) -> float:
        """Measured Monitor time over loop time so far (nan before any loop time)."""
        return self.monitor_time / self.loop_time if self.loop_time > 0 else float("nan")

    # -- decisions --------------------------------------------------------------------------------
    def plan(self, base: dict[str, int], prior: dict[str, float] | None = None) -> dict[str, float]:
        """Current interval per unit; a unit not yet measured is planned with ``prior[unit]``·τ
        as its cost (default 1·τ). Before the first step's loop time is known: no measurement."""
        if self.tau is None:
            self.intervals = {q: math.inf for q in base}
            return self.intervals
        allowed = self.fraction * self.tau + (self.fraction * self.loop_time - self.monitor_time) / self.horizon
        prior = prior or {}
        rates = {q: (self.costs.get(q, prior.get(q, 1.0) * self.tau), k) for q, k in base.items()}
        self.intervals = water_fill(rates, allowed)
        return self.intervals
