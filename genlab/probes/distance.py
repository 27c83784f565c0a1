"""Distance travelled by the weights from their initialization, in total and per layer
(the ‖w_t − w_0‖ of Hoffer, Hubara & Soudry 2017, "Train longer, generalize better",
arXiv 1705.08741, Sec. 4: it grows like log t during constant-learning-rate SGD)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from genlab.probes.per_example import layer_of


@dataclass(frozen=True)
class Distance:
    total: float  # ‖θ − θ_0‖₂ over all trainable parameters
    layers: dict[str, float]  # the same restricted to each module's own parameters


@torch.no_grad()
def distance_from_init(model: nn.Module, init_state: Mapping[str, torch.Tensor]) -> Distance:
    """‖θ − θ_0‖₂ with θ_0 read from ``init_state`` (a ``state_dict`` taken at initialization)."""
    sq: dict[str, float] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name not in init_state:
            raise KeyError(f"init_state has no entry {name!r}")
        d = float((p.detach() - init_state[name].to(p.dtype)).pow(2).sum())
        sq[layer_of(name)] = sq.get(layer_of(name), 0.0) + d
    return Distance(total=sum(sq.values()) ** 0.5, layers={k: v**0.5 for k, v in sq.items()})
