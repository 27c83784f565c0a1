"""Measurements on any ``torch.nn.Module``: ``(model, loss_fn, data) -> numbers``.

Conventions: ``loss_fn(output, target)`` returns the mean loss; ``data`` is ``(inputs, targets)``
or an iterable of such pairs; the model is never modified.
"""

from genlab.probes.dense import dense_eigenvalues, dense_hessian, dense_top_eigenvalue
from genlab.probes.function_space import (
    Knots,
    effective_knots,
    relu1d_knots,
    slope_total_variation,
    weighted_total_variation,
)

__all__ = [
    "dense_hessian",
    "dense_eigenvalues",
    "dense_top_eigenvalue",
    "Knots",
    "relu1d_knots",
    "slope_total_variation",
    "weighted_total_variation",
    "effective_knots",
]
