"""A training-data-only measure for test-free monitoring: pathway distance between training examples.

Li, Fan & Zhou 2025 ("Where to find grokking in LLM pretraining? Monitor memorization-to-
generalization without test", arXiv 2506.21551, Sec. 4) follow each training sample's pathway (the
experts a mixture-of-experts model routes it to, layer by layer) and find the mean pairwise
pathway edit distance D_path falls as the model turns from memorizing to generalizing — computed
on training data only, no test set. genlab's networks have no experts; the adaptation here (an
assumption of genlab, not the paper's claim) takes a ReLU network's pathway to be the on/off
pattern of its hidden units, layer by layer, and D_path to be the mean normalized Hamming distance
(the edit distance of equal-length sequences with substitutions only) between the pathways of two
training examples of the same class, averaged over classes.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.errors import InputError


@torch.no_grad()
def activation_patterns(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """(N, H) boolean on/off pattern of every ReLU's output, all hidden layers concatenated."""
    if not isinstance(model, nn.Sequential):
        raise InputError(f"model: pathway distance needs an nn.Sequential with ReLU layers, got {type(model).__name__}")
    pats, h = [], x
    was = [m.training for m in model.modules()]
    model.eval()
    try:
        for m in model:
            h = m(h)
            if isinstance(m, nn.ReLU):
                pats.append((h > 0).reshape(h.shape[0], -1))
    finally:
        for m, t in zip(model.modules(), was):
            m.training = t
    if not pats:
        raise InputError("model: has no nn.ReLU layer; pathway distance needs ReLU units")
    return torch.cat(pats, 1)


def pathway_distance(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, max_per_class: int = 200) -> float:
    """Mean normalized Hamming distance between the activation patterns of pairs of distinct
    training examples of the same class (the first ``max_per_class`` of each), averaged over classes."""
    pats = activation_patterns(model, x).double()
    dists = []
    for c in torch.unique(y):
        p = pats[y == c][:max_per_class]
        k = p.shape[0]
        if k < 2:
            continue
        # Hamming(a, b) = a·(1−b) + (1−a)·b summed over units
        ham = p @ (1 - p).T + (1 - p) @ p.T
        dists.append(float(ham.sum() / (k * (k - 1)) / p.shape[1]))
    if not dists:
        raise InputError("y: no class has two examples; pathway distance needs pairs")
    return sum(dists) / len(dists)
