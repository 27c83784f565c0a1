"""Data-importance scores read from early training: EL2N and GraNd (Paul, Ganguli & Dziugaite 2021,
"Deep learning on a data diet: finding important examples early in training", arXiv 2107.07075)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from genlab.probes._functional import Data, LossFn, iter_batches
from genlab.probes.per_example import per_example_stats


@torch.no_grad()
def el2n_scores(model: nn.Module, data: Data) -> torch.Tensor:
    """EL2N score of each example: ‖softmax(f(x)) − onehot(y)‖₂ (Paul et al. 2021, Def. 2.2, one
    network; average over networks with :func:`average_over_seeds`). ``f`` returns logits (N, C)."""
    out = []
    for x, y in iter_batches(data):
        p = torch.softmax(model(x), dim=-1)
        onehot = torch.nn.functional.one_hot(y, p.shape[-1]).to(p.dtype)
        out.append(torch.linalg.vector_norm(p - onehot, dim=-1))
    return torch.cat(out)


def grand_scores(model: nn.Module, loss_fn: LossFn, data: Data, **engine: object) -> torch.Tensor:
    """GraNd score of each example: ‖∇_θ ℓ(f(x), y)‖₂ over all trainable parameters (Paul et al.
    2021, Def. 2.1, one network), from the per-example engine (no per-example gradient tensors)."""
    return per_example_stats(model, loss_fn, data, **engine).sq_norms.sqrt()  # type: ignore[arg-type]


def average_over_seeds(
    train: Callable[[int], nn.Module], seeds: Sequence[int], score: Callable[[nn.Module], torch.Tensor]
) -> torch.Tensor:
    """Mean of ``score(train(seed))`` over ``seeds``: the expectation over independent
    initializations (and data orders) that defines EL2N and GraNd (Paul et al. 2021, Sec. 2)."""
    if not seeds:
        raise ValueError("seeds is empty")
    total = None
    for s in seeds:
        v = score(train(int(s))).detach()
        total = v.clone() if total is None else total + v
    return total / len(seeds)
