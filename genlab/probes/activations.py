"""Layer activations of any ``nn.Module``, by submodule name, on a fixed probe set.

Forward hooks on the named submodules record their outputs (detached, flattened to (N, features),
float64 numpy or torch) during a forward pass without gradients in the stated ``mode`` ("eval" by
default). The model is left as it was: parameters untouched, buffers (e.g. batch-norm running
statistics, which a train-mode forward would update) restored, every module's train/eval flag
restored, only the hooks added here removed, and the global random stream left as it was (a
train-mode forward with dropout draws from a forked generator).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from genlab.errors import InputError


def layer_names(model: nn.Module) -> list[str]:
    """Names of the submodules whose activations can be taken ("" is the model itself)."""
    return [name for name, _ in model.named_modules()]


def _resolve(model: nn.Module, layers: Sequence[str]) -> list[nn.Module]:
    if isinstance(layers, str) or not len(layers):
        raise InputError(f"layers: a non-empty list of submodule names, got {layers!r}")
    known = dict(model.named_modules())
    bad = [name for name in layers if name not in known]
    if bad:
        allowed = ", ".join(repr(n) for n in list(known)[:40])
        raise InputError(f"layers: unknown submodule {bad[0]!r}; allowed: {allowed}")
    return [known[name] for name in layers]


def layer_activations(
    model: nn.Module,
    inputs: torch.Tensor,
    layers: Sequence[str],
    *,
    mode: str = "eval",
    batch_size: int | None = None,
    flatten: bool = True,
) -> dict[str, torch.Tensor]:
    """Outputs of the submodules ``layers`` (names as in ``model.named_modules()``) on ``inputs``,
    each a detached tensor (N, ...) — (N, features) with ``flatten`` — in ``mode`` ("eval" or
    "train"), computed in chunks of ``batch_size`` rows (all at once by default). A module called
    several times in one forward keeps its last output. The model is not modified."""
    if mode not in ("eval", "train"):
        raise InputError(f"mode: allowed 'eval' or 'train', got {mode!r}")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size: must be >= 1, got {batch_size}")
    modules = _resolve(model, layers)
    n = inputs.shape[0]
    step = n if batch_size is None else batch_size
    flags = {m: m.training for m in model.modules()}
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    current: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in zip(layers, modules):
        def hook(_m, _inp, out, name=name):
            current[name] = (out[0] if isinstance(out, tuple) else out).detach()

        handles.append(module.register_forward_hook(hook))
    try:
        model.train(mode == "train")
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # dropout draws leave the global stream as it was
            for i in range(0, n, step):
                current.clear()
                model(inputs[i : i + step])
                for name in layers:
                    if name not in current:
                        raise InputError(f"layers: submodule {name!r} is not called in the model's forward")
                    chunks[name].append(current[name].clone())
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag
        if buffers:
            current_buffers = dict(model.named_buffers())
            with torch.no_grad():
                for k, v in buffers.items():
                    current_buffers[k].copy_(v)
    out = {name: torch.cat(parts) for name, parts in chunks.items()}
    return {k: v.reshape(v.shape[0], -1) if flatten else v for k, v in out.items()}


__all__ = ["layer_activations", "layer_names"]
