"""Data-importance scores read from early training: EL2N and GraNd (Paul, Ganguli & Dziugaite 2021,
"Deep learning on a data diet: finding important examples early in training", arXiv 2107.07075).

Both are per-example, so ``mode="eval"`` is the default and train-mode BatchNorm is refused.
Scores come back in dataset order when the data carries indices (an ``indices`` argument, or a
DataLoader over a map-style dataset — shuffled or not, the same tensor), otherwise in the order
read; ``with_indices=True`` returns :class:`ExampleScores` with the indices and the mode, dtype,
device and number of examples measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from genlab.probes._functional import Data, LossFn
from genlab.probes._setup import ProbeInfo, forward_with_copies, logits, probe_call, seeded
from genlab.probes.per_example import per_example_stats


@dataclass
class ExampleScores:
    """One score per example, the dataset index of each (None when unknown), and what was measured."""

    scores: torch.Tensor
    indices: torch.Tensor | None
    info: ProbeInfo


def _ordered(scores: torch.Tensor, indices: torch.Tensor | None, info: ProbeInfo, with_indices: bool):
    if indices is not None:
        order = torch.argsort(indices, stable=True)
        scores, indices = scores[order], indices[order]
    return ExampleScores(scores, indices, info) if with_indices else scores


def el2n_scores(
    model: nn.Module,
    data: Data,
    *,
    mode: str = "eval",
    seed: int = 0,
    output_fn: Callable | None = None,
    batch_size_fn: Callable | None = None,
    indices: Any = None,
    with_indices: bool = False,
) -> torch.Tensor | ExampleScores:
    """EL2N score of each example: ‖softmax(f(x)) − onehot(y)‖₂ (Paul et al. 2021, Def. 2.2, one
    network; average over networks with :func:`average_over_seeds`). ``f`` returns logits (N, C)
    (or ``output_fn`` picks them). Needs no loss, hence no ``loss_fn`` argument."""
    with probe_call(model, None, data, mode=mode, seed=seed, output_fn=output_fn, batch_size_fn=batch_size_fn,
                    indices=indices, per_example="el2n_scores", need_loss=False) as s:
        out = []
        with torch.no_grad():
            for b, (x, y) in enumerate(s.data.batches):
                with seeded(seed, b):
                    p = torch.softmax(logits(forward_with_copies(s.model, x), output_fn, "el2n_scores"), dim=-1)
                onehot = torch.nn.functional.one_hot(y, p.shape[-1]).to(p.dtype)
                out.append(torch.linalg.vector_norm(p - onehot, dim=-1))
        info = s.info()
    return _ordered(torch.cat(out), s.data.indices, info, with_indices)


def grand_scores(
    model: nn.Module, loss_fn: LossFn, data: Data, *, with_indices: bool = False, **engine: Any
) -> torch.Tensor | ExampleScores:
    """GraNd score of each example: ‖∇_θ ℓ(f(x), y)‖₂ over all trainable parameters (Paul et al.
    2021, Def. 2.1, one network), from the per-example engine (keywords of
    :func:`~genlab.probes.per_example.per_example_stats`: mode, seed, output_fn, indices, …)."""
    st = per_example_stats(model, loss_fn, data, **engine)
    assert st.info is not None
    return _ordered(st.sq_norms.sqrt(), st.indices, st.info, with_indices)


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
