"""Shared plumbing of the probes: a model seen as a pure function of a flat parameter vector.

Probes follow ``torch.func``: parameters are taken out of the module, the loss is a pure
function of them (``functional_call``), and the module itself is never modified.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch.func import functional_call

from genlab.probes._setup import Data as LoadedData, as_args, first_tensor, load_data, logits

LossFn = Callable[[Any, torch.Tensor], torch.Tensor]
Batch = tuple[Any, torch.Tensor]
Data = Batch | Iterable[Batch]


def batches(data: Data) -> list[Batch]:
    """Any accepted data layout as a list of ``(inputs, targets)`` pairs (see :func:`load_data`)."""
    return list(data.batches) if isinstance(data, LoadedData) else load_data(data).batches


def iter_batches(data: Data) -> Iterator[Batch]:
    yield from batches(data)


class FlatModel:
    """The trainable parameters of a module as one flat vector, and the loss as a pure function of it.

    ``output_fn`` maps the module's output to the tensor the probes use (logits); buffers are
    copied for every evaluation, so train-mode BatchNorm never updates the module's own."""

    def __init__(self, model: torch.nn.Module, output_fn: Callable | None = None):
        self.model = model
        self.output_fn = output_fn
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

    def raw(self, flat: torch.Tensor, inputs: Any) -> Any:
        params = {**self.frozen, **self.unflatten(flat)}
        buffers = {n: b.clone() for n, b in self.buffers.items()}
        return functional_call(self.model, (params, buffers), as_args(inputs))

    def forward(self, flat: torch.Tensor, inputs: Any) -> torch.Tensor:
        """The model's output (``output_fn`` applied) at parameters ``flat``."""
        out = self.raw(flat, inputs)
        return logits(out, self.output_fn) if self.output_fn is not None else out

    def loss(self, flat: torch.Tensor, loss_fn: LossFn, batch: Batch) -> torch.Tensor:
        x, y = batch
        return loss_fn(self.forward(flat, x), y)


def chunk_weights(chunks: Sequence[Batch]) -> list[float]:
    """Weights that turn per-chunk mean losses into the mean over all examples."""
    sizes = [int(first_tensor(x).shape[0]) for x, _ in chunks]
    total = float(sum(sizes))
    return [s / total for s in sizes]
