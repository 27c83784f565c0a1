"""Shared pieces of the MNIST-1D classification experiments (not an experiment itself)."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from genlab.data.classification import ClassificationData, mnist1d


@lru_cache(maxsize=1)
def _mnist1d() -> ClassificationData:
    return mnist1d()


def mnist1d_subset(n_train: int, n_test: int) -> ClassificationData:
    """The first ``n_train`` training and ``n_test`` test signals of MNIST-1D (generated locally)."""
    return _mnist1d().subset(n_train, n_test)


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the batch (per-example loss = the batch-of-one loss)."""
    return nn.functional.cross_entropy(output, target)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose arg-max logit is the label."""
    return float((model(x).argmax(-1) == y).double().mean())


def shuffled_batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` index batches of ``batch_size`` from reshuffled passes over ``n`` examples (an
    epoch's remainder smaller than a batch is skipped), drawn from ``generator``."""
    perm, pos = torch.randperm(n, generator=generator), 0
    for _ in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=generator), 0
        yield perm[pos : pos + batch_size]
        pos += batch_size
