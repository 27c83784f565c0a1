"""Guidance: a representation-matching auxiliary loss toward a guide network's layers.

"Training the untrainable" (Subramaniam, Mayo, Conwell, Poggio, Katz, Cheung & Barbu 2024,
arXiv 2410.20035, Sec. 3): the target network is trained on task loss + λ·Σ_pairs (1 − CKA(target
layer, guide layer)) on the same batch, with the guide frozen — trained or at its random
initialization. CKA as in :mod:`genlab.probes.similarity` (differentiable). Pass an instance as
the Trainer's ``aux_loss``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from genlab.errors import InputError
from genlab.probes.activations import layer_activations
from genlab.probes.similarity import cka


class RepresentationMatching:
    """``aux(x, y) = weight · Σ_(s, g) (1 − CKA(model.s(x), guide.g(x)))`` over ``pairs`` of
    (model layer, guide layer) names. Hooks on the model's layers keep their outputs (with their
    graph) from the model's last forward, so call it right after ``model(x)`` — as the Trainer
    does. The guide is read in eval mode without gradients and never modified. Call
    :meth:`remove` (or use ``with``) to take the hooks off the model."""

    def __init__(
        self,
        model: nn.Module,
        guide: nn.Module,
        pairs: Sequence[tuple[str, str]],
        *,
        weight: float = 1.0,
        kernel: str = "linear",
    ):
        if not pairs:
            raise InputError("pairs: at least one (model layer, guide layer) pair")
        if not weight >= 0:
            raise InputError(f"weight: must be >= 0, got {weight}")
        if kernel not in ("linear", "rbf"):
            raise InputError(f"kernel: allowed 'linear' or 'rbf', got {kernel!r}")
        known = dict(model.named_modules())
        for s, _ in pairs:
            if s not in known:
                raise InputError(f"pairs: unknown model submodule {s!r}")
        guide_known = dict(guide.named_modules())
        for _, g in pairs:
            if g not in guide_known:
                raise InputError(f"pairs: unknown guide submodule {g!r}")
        self.guide = guide
        self.pairs = list(pairs)
        self.weight = float(weight)
        self.kernel = kernel
        self._outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        for s in {s for s, _ in pairs}:
            def hook(_m, _inp, out, s=s):
                self._outputs[s] = out[0] if isinstance(out, tuple) else out

            self._handles.append(known[s].register_forward_hook(hook))
        self.last_cka: dict[str, float] = {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        guide_acts = layer_activations(self.guide, x, [g for _, g in self.pairs])
        total = x.new_zeros(())
        for s, g in self.pairs:
            out = self._outputs.get(s)
            if out is None or out.shape[0] != x.shape[0]:
                raise RuntimeError(f"RepresentationMatching: no output of {s!r} for this batch; call it right after model(x)")
            c = cka(out.reshape(out.shape[0], -1), guide_acts[g].to(out.dtype), self.kernel)
            self.last_cka[f"{s}~{g}"] = float(c.detach())
            total = total + (1.0 - c)
        return self.weight * total

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._outputs.clear()

    def __enter__(self) -> "RepresentationMatching":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


__all__ = ["RepresentationMatching"]
