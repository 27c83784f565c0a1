"""Step-size schedules: functions ``step -> learning rate`` for the Trainer."""

from __future__ import annotations

import math
from typing import Callable, Sequence

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    """A fixed step size (the setting of minima-stability and edge-of-stability theory)."""
    return lambda step: lr


def step_decay(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """Multiply the step size by ``gamma`` at each milestone step."""
    ms = sorted(int(m) for m in milestones)
    return lambda step: lr * gamma ** sum(step >= m for m in ms)


def cosine(lr: float, total_steps: int, final: float = 0.0) -> Schedule:
    """Cosine decay from ``lr`` to ``final`` over ``total_steps`` (Loshchilov & Hutter 2017, eq. 5)."""
    total = max(int(total_steps), 1)
    return lambda step: final + 0.5 * (lr - final) * (1 + math.cos(math.pi * min(step, total) / total))


def warmup(schedule: Schedule, warmup_steps: int) -> Schedule:
    """Linear warm-up over the first ``warmup_steps`` steps, then ``schedule``."""
    w = max(int(warmup_steps), 1)
    return lambda step: schedule(step) * min(1.0, (step + 1) / w)
