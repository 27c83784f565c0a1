"""Any probe as a trainer :class:`~genlab.train.monitor.Measurement`.

A probe is ``probe(model, loss_fn, data, **kwargs)`` returning an object with ``scalars()``
(a mapping name → float: every curvature probe's result has one). :func:`probe_measurement`
closes over the loss, data and options so the Trainer can call it every ``every`` steps.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from genlab.train.monitor import Measurement


def probe_measurement(
    every: int,
    probe: Callable[..., Any],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    prefix: str = "",
    keys: tuple[str, ...] | None = None,
    at_end: bool = True,
    **kwargs: Any,
) -> Measurement:
    """``Measurement(every, fn)`` that records ``probe(model, loss_fn, data, **kwargs).scalars()``
    (only ``keys`` if given), each name preceded by ``prefix``.

    Example: ``probe_measurement(10, hessian_eigenvalues, loss_fn, (x, y), k=1)`` records the
    sharpness every 10 steps; ``genlab.probes.gfs.gfs_sharpness`` and the others work the same way.
    """

    def fn(model: torch.nn.Module, step: int) -> dict[str, float]:
        values = probe(model, loss_fn, data, **kwargs).scalars()
        if keys is not None:
            values = {k: values[k] for k in keys}
        return {prefix + k: float(v) for k, v in values.items()}

    return Measurement(every, fn, at_end=at_end)
