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


def linear_decay(lr: float, total_steps: int, final: float = 0.0) -> Schedule:
    """η_t = lr·(1 − t/T) (+ ``final``·t/T): the schedule Defazio, Cutkosky, Mehta & Mishchenko 2023
    ("Optimal linear decay learning rate schedules and further refinements", arXiv 2310.07831, §2)
    show worst-case optimal for the last iterate of SGD."""
    total = max(int(total_steps), 1)
    return lambda step: lr + (final - lr) * min(step, total) / total


def refined_weights(grad_norms: Sequence[float], smooth: float = 0.0) -> list[float]:
    """The refined schedule of Defazio et al. 2023 (arXiv 2310.07831, Theorem 8 / Algorithm 1, SGD
    case) from the gradient norms ‖g_t‖ of a first run of T steps:

        w_t = ‖g_t‖⁻² · Σ_{p=t+1}^{T} ‖g_p‖⁻²,   normalized so that max_t w_t = 1.

    Constant norms give linear decay. ``smooth`` > 0 first replaces the norms by a running median
    over a window of that fraction of T (the paper smooths noisy norms the same way)."""
    g = [float(v) for v in grad_norms]
    if not g or any(not (v > 0 and math.isfinite(v)) for v in g):
        raise ValueError("grad_norms must be a non-empty sequence of finite numbers > 0")
    if smooth > 0:
        half = max(int(smooth * len(g)) // 2, 0)
        g = [sorted(g[max(0, t - half) : t + half + 1])[len(g[max(0, t - half) : t + half + 1]) // 2] for t in range(len(g))]
    inv = [1.0 / (v * v) for v in g]
    tail, w = 0.0, [0.0] * len(g)
    for t in range(len(g) - 1, -1, -1):
        w[t] = inv[t] * tail
        tail += inv[t]
    top = max(w)
    return [v / top for v in w] if top > 0 else w


def refined(lr: float, grad_norms: Sequence[float], smooth: float = 0.0) -> Schedule:
    """η_t = lr·w_t with :func:`refined_weights` (step t ≥ T keeps the last value, 0)."""
    w = refined_weights(grad_norms, smooth)
    return lambda step: lr * w[min(int(step), len(w) - 1)]
