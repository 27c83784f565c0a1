"""Measurements on a schedule: the Trainer calls each one every ``every`` steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

MeasureFn = Callable[[torch.nn.Module, int], dict[str, float]]


@dataclass
class Measurement:
    """Call ``fn(model, step)`` every ``every`` steps (and at the last step); record what it returns.

    ``fn`` returns a mapping ``name -> value``; names are recorded with the trainer's prefix.
    Any probe (``model, loss_fn, data -> numbers``) becomes a measurement by a closure.
    """

    every: int
    fn: MeasureFn
    at_end: bool = True

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"Measurement.every must be >= 1, got {self.every}")

    def due(self, step: int) -> bool:
        return step % self.every == 0
