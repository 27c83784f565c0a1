"""Layer activations on the Trainer's schedule: every ``every`` steps, take the activations of the
named layers on a fixed probe set (:func:`genlab.probes.activations.layer_activations`) and hand
them to ``summarize(step, activations) -> {name: value}``; what it returns is recorded."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from genlab.probes.activations import layer_activations
from genlab.train.monitor import Measurement

Summarize = Callable[[int, dict[str, torch.Tensor]], dict[str, float]]


def activation_measurement(
    every: int,
    inputs: torch.Tensor,
    layers: Sequence[str],
    summarize: Summarize,
    *,
    mode: str = "eval",
    at_end: bool = True,
) -> Measurement:
    """A :class:`Measurement` that records ``summarize(step, layer_activations(model, inputs, layers))``."""

    def fn(model: torch.nn.Module, step: int) -> dict[str, float]:
        return summarize(step, layer_activations(model, inputs, layers, mode=mode))

    return Measurement(every, fn, at_end=at_end)


__all__ = ["activation_measurement"]
