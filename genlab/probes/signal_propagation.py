"""How a network at initialization propagates the correlation between inputs, layer by layer.

The mean-field quantity of Poole et al. 2016 (arXiv 1606.05340) and Schoenholz et al. 2017
(arXiv 1611.01232), measured on a finite network: for two inputs x_a, x_b and the
pre-activation vectors h^l(x_a), h^l(x_b) after each linear layer, the empirical correlation
c^l = ⟨h_a, h_b⟩ / (‖h_a‖·‖h_b‖) (the weights have mean zero, so the mean-field c is the
uncentred cosine). Compared in `quantized-signal-propagation` with the map of
:func:`genlab.theory.signal_propagation.correlation_map`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def layer_correlations(
    model: nn.Module, x: torch.Tensor, pairs: Sequence[tuple[int, int]], at: type[nn.Module] = nn.Linear
) -> np.ndarray:
    """Correlations of the outputs of every ``at`` module (pre-activations) for each input pair.

    ``x`` is a batch (n, ...); ``pairs`` index rows of it. Returns an array (layers, len(pairs)),
    layers in forward order. The model is run once in its current mode and is not modified
    (hooks are removed on return)."""
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach())) for m in model.modules() if isinstance(m, at)]
    if not handles:
        raise ValueError(f"the model has no {at.__name__} module to measure after")
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    ia = torch.tensor([p[0] for p in pairs])
    ib = torch.tensor([p[1] for p in pairs])
    out = np.empty((len(outputs), len(pairs)))
    for layer, h in enumerate(outputs):
        h = h.reshape(h.shape[0], -1).double()
        ha, hb = h[ia], h[ib]
        out[layer] = ((ha * hb).sum(1) / (ha.norm(dim=1) * hb.norm(dim=1))).numpy()
    return out
