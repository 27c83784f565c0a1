"""Shared plumbing of the probes: a model seen as a pure function of a flat parameter vector.

Probes follow ``torch.func``: parameters are taken out of the module, the loss is a pure
function of them (``functional_call``), and the module itself is never modified.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch.func import functional_call

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]
Data = Batch | Iterable[Batch]


def batches(data: Data) -> list[Batch]:
    """``(inputs, targets)`` or an iterable of such pairs, as a list of pairs."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return [data]
    out = list(data)
    if not out:
        raise ValueError("data is empty")
    return out


def iter_batches(data: Data) -> Iterator[Batch]:
    """Like :func:`batches` but lazy for iterables (memory stays bounded)."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        yield data
    else:
        yield from data


class FlatModel:
    """The trainable parameters of a module as one flat vector, and the loss as a pure function of it."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.buffers = {n: b.detach() for n, b in model.named_buffers()}
        self.frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
        self.dtype = named[0][1].dtype if named else torch.get_default_dtype()

    @property
    def size(self) -> int:
        return sum(self.numels)

    def flat(self) -> torch.Tensor:
        """Current parameters as one detached vector (a copy)."""
        return torch.cat([p.detach().reshape(-1) for n, p in self.model.named_parameters() if n in self.names])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(flat, self.numels)
        return {n: t.reshape(s) for n, t, s in zip(self.names, parts, self.shapes)}

    def forward(self, flat: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        params = {**self.frozen, **self.unflatten(flat)}
        # buffers are copied per call: train-mode BatchNorm updates its running statistics in
        # place, which must touch neither the module nor a tensor captured by a torch.func transform
        buffers = {n: b.clone() for n, b in self.buffers.items()}
        return functional_call(self.model, (params, buffers), (inputs,))

    def loss(self, flat: torch.Tensor, loss_fn: LossFn, batch: Batch) -> torch.Tensor:
        x, y = batch
        return loss_fn(self.forward(flat, x), y)


def chunk_weights(chunks: Sequence[Batch]) -> list[float]:
    """Weights that turn per-chunk mean losses into the mean over all examples."""
    sizes = [int(x.shape[0]) for x, _ in chunks]
    total = float(sum(sizes))
    return [s / total for s in sizes]
