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


def sharpness_measurement(
    every: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    name: str = "sharpness",
    tol: float = 1e-4,
    max_iter: int | None = None,
    seed: int = 0,
    at_end: bool = True,
) -> Measurement:
    """The top Hessian eigenvalue every ``every`` steps by Lanczos, each run warm-started from the
    previous top Ritz vector (the eigenvector moves little between measurements, so a few products
    suffice). Records ``name`` and ``name + "_hvps"``."""
    from genlab.probes.curvature import hessian_eigenvalues

    state: dict[str, Any] = {"v0": None}

    def fn(model: torch.nn.Module, step: int) -> dict[str, float]:
        r = hessian_eigenvalues(model, loss_fn, data, k=1, tol=tol, max_iter=max_iter, seed=seed, v0=state["v0"])
        state["v0"] = r.ritz_vector
        return {name: r.top, name + "_hvps": float(r.hvps)}

    return Measurement(every, fn, at_end=at_end)
