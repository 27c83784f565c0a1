"""Per-example gradient statistics from the user's own forward/backward pass, through hooks.

Inside ``with BackwardCapture(model) as cap:`` the user runs ``loss_fn(model(x), y).backward()``
as always; forward hooks keep each Linear/Conv layer's input a and a tensor hook its
output-gradient g, which are the ingredients of the per-example statistics of
:mod:`genlab.probes.per_example` (Goodfellow 2015, arXiv 1510.01799; Dangel, Kunstner & Hennig
2020, arXiv 1912.10985). ``cap.stats(loss_fn, batch)`` then returns the same
:class:`~genlab.probes.per_example.PerExampleStats` as :func:`~genlab.probes.per_example.per_example_stats`
without a second pass for those layers. The mean gradient is the change of ``.grad`` over the
block (exactly ``.grad`` when it was None or zero before).

The hooks return None: the forward outputs and ``.grad`` are exactly what the user's backward
produces. Assumptions, each checked where it can be: the backward is of ``loss_fn``'s mean over
``batch`` times ``loss_scale`` (a GradScaler's scale; an unscaled mean otherwise); a layer whose
Σ_i g_i a_iᵀ/B does not equal its ``.grad`` change (a regularizer in the loss, a weight tied
elsewhere, a layer called twice) is measured by the per-example fallback instead, as are
parameters outside Linear/Conv layers (vmap of per-example gradients of those parameters only:
a partial second pass). When that fallback would not be per-example (train-mode BatchNorm couples
the examples) or would draw other dropout masks than the user's forward, ``stats`` returns None
and the caller measures by the standalone probe (``reason`` says why).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genlab.probes._setup import batchnorm_in_train, forward_with_copies, is_random, take
from genlab.probes.per_example import (
    CHUNK_ELEMENTS,
    PerExampleStats,
    _as_positions,
    _consistent,
    _fallback_stats,
    _fast_kind,
    _layer_stats,
    _loop_stats,
    _needs_loop,
    _owners,
)


class BackwardCapture:
    """Hooks on the Linear/Conv layers of ``model`` for the duration of each ``with`` block.

    One object serves many steps (the layer analysis is done once; :meth:`refresh` redoes it
    after the model's parameters changed). ``check_every``: the consistency of each layer's
    Σ_i g_i a_iᵀ/B with its ``.grad`` change is checked at the first two calls of
    :meth:`stats` and at every ``check_every``-th after (a loss whose form changes mid-training
    is caught at the next check); 1 checks every call."""

    def __init__(self, model: nn.Module, loss_scale: float = 1.0, check_every: int = 1):
        self.model, self.loss_scale, self.check_every = model, float(loss_scale), int(check_every)
        self.reason = ""
        self.calls = 0
        self._handles: list[Any] = []
        self.captured: dict[str, dict[str, list[torch.Tensor]]] = {}
        self._grads_before: dict[str, torch.Tensor | None] = {}
        self._inconsistent: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Find the Linear/Conv layers whose parameters are their own (not tied elsewhere)."""
        owner, shared = _owners(self.model)
        self.owner, self.fast = owner, {}
        for mname, mod in self.model.named_modules():
            kind = _fast_kind(mod)
            if kind not in ("linear", "conv"):
                continue
            pnames = [n for n, (m, _, _) in owner.items() if m == mname]
            if not pnames or any(n in shared for n in pnames):
                continue
            if "weight" in {owner[n][2] for n in pnames}:
                self.fast[mname] = (mod, kind)
        self.params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self._signature = [id(p) for _, p in self.params]

    def __enter__(self) -> "BackwardCapture":
        if [id(p) for p in self.model.parameters() if p.requires_grad] != self._signature:
            self.refresh()
        self.captured = {m: {"a": [], "g": []} for m in self.fast}
        self._grads_before = {n: (None if p.grad is None else p.grad.detach().clone()) for n, p in self.params}
        for mname, (mod, _) in self.fast.items():
            self._handles.append(mod.register_forward_hook(self._hook(mname)))
        return self

    def _hook(self, mname: str):
        def hook(mod: nn.Module, inputs: tuple, output: Any) -> None:
            if not (isinstance(output, torch.Tensor) and output.requires_grad):
                return
            self.captured[mname]["a"].append(inputs[0].detach())
            output.register_hook(lambda g: self.captured[mname]["g"].append(g.detach()) and None)

        return hook

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def mean_grad(self) -> dict[str, torch.Tensor]:
        """The change of ``.grad`` over the block (divided by ``loss_scale``), per trainable parameter."""
        out = {}
        for n, p in self.params:
            before, now = self._grads_before[n], p.grad
            g = torch.zeros_like(p) if now is None else now.detach() if before is None else now.detach() - before
            out[n] = g / self.loss_scale if self.loss_scale != 1.0 else g
        return out

    def stats(self, loss_fn: Any, batch: Any, *, second_moment: bool = False,
              chunk_elements: int = CHUNK_ELEMENTS) -> PerExampleStats | None:
        """Per-example statistics of the block's backward on ``batch`` = (inputs, targets), or None
        (``reason`` set) when they cannot come from it."""
        x, y = batch
        B = int(y.shape[0])
        names = [n for n, _ in self.params]
        mean_grad = self.mean_grad()
        if not any(c["g"] for c in self.captured.values()) and all(float(g.abs().max()) == 0 for g in mean_grad.values()):
            self.reason = "no backward inside the block"
            return None
        self.calls += 1
        check = self.calls <= 2 or self.check_every <= 1 or self.calls % self.check_every == 0
        bn = batchnorm_in_train(self.model)
        if bn:  # even without affine parameters, batch statistics couple the examples' output-gradients
            self.reason = f"BatchNorm '{bn[0]}' in train mode couples the examples of a batch"
            return None
        gen = torch.Generator().manual_seed(0) if check else None
        param_sq: dict[str, torch.Tensor] = {}
        second: dict[str, torch.Tensor] = {}
        done: set[str] = set()
        for mname, (mod, kind) in self.fast.items():
            c = self.captured[mname]
            if len(c["a"]) != 1 or len(c["g"]) != 1:
                continue
            a_raw, g_raw = c["a"][0], c["g"][0]
            if a_raw.shape[0] != B:
                continue
            wname = f"{mname}.weight" if mname else "weight"
            bname = f"{mname}.bias" if mname else "bias"
            has_bias = bname in self.owner and self.owner[bname][0] == mname
            if kind == "linear" and a_raw.dim() == 2 and not check and not second_moment and mname not in self._inconsistent:
                # one position per example: ‖g_i a_iᵀ‖² = ‖a_i‖²‖g_i‖², bias ‖g_i‖² (fewest operations)
                gg = torch.einsum("bo,bo->b", g_raw, g_raw) * (B / self.loss_scale) ** 2
                param_sq[wname] = torch.einsum("bi,bi->b", a_raw, a_raw) * gg
                done.add(wname)
                if has_bias:
                    param_sq[bname] = gg
                    done.add(bname)
                continue
            A, G = _as_positions(mod, kind, a_raw, g_raw * (B / self.loss_scale))
            if check:
                ok = _consistent(A, G, mean_grad[wname].reshape(G.shape[-1], A.shape[-1]),
                                 mean_grad[bname] if has_bias else None, B, gen)
                (self._inconsistent.discard if ok else self._inconsistent.add)(mname)
            if mname in self._inconsistent:
                continue
            st = _layer_stats(A, G, has_bias, want_gram=False, want_second=second_moment, method="auto",
                              budget=int(chunk_elements))
            param_sq[wname] = st["weight_sq"]
            done.add(wname)
            if second_moment:
                second[wname] = st["weight_second"].reshape(mod.weight.shape)
            if has_bias:
                param_sq[bname] = st["bias_sq"]
                done.add(bname)
                if second_moment:
                    second[bname] = st["bias_second"]
        rest = [n for n in names if n not in done]
        if rest:
            m = self.model
            if is_random(m, lambda: forward_with_copies(m, take(x, slice(0, min(2, B))))):
                self.reason = "dropout: per-example gradients outside Linear/Conv layers would draw other masks"
                return None
            loop = [n for n in rest if _needs_loop(self.owner[n][1])]
            vm = [n for n in rest if n not in loop]
            fb: dict[str, dict[str, torch.Tensor]] = {}
            if vm:
                try:
                    fb.update(_fallback_stats(m, loss_fn, x, y, vm, output_fn=None, want_gram=False,
                                              want_second=second_moment, budget=int(chunk_elements)))
                except (RuntimeError, NotImplementedError):
                    loop += vm
            if loop:
                fb.update(_loop_stats(m, loss_fn, x, y, loop, output_fn=None, want_gram=False, want_second=second_moment,
                                      seed=0, offset=0, random=False)[0])
            for n, e in fb.items():
                param_sq[n] = e["sq"]
                if second_moment:
                    second[n] = e["second"]
        param_sq = {n: param_sq[n] for n in names}
        return PerExampleStats(
            n=B, loss=float("nan"), sq_norms=torch.stack(list(param_sq.values())).sum(0), param_sq_norms=param_sq,
            mean_grad=mean_grad, second_moment={n: second[n] / B for n in names} if second_moment else None,
            fallback=rest)
