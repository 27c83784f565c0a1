"""Per-example gradients of normalization affines, embeddings and attention projections from the
inputs and output-gradients of one forward/backward pass (the fast paths of
:mod:`genlab.probes.per_example` beyond Linear/Conv).

- Elementwise affine y = γ ⊙ x̂ + β after a normalization whose x̂ of example i depends on example
  i only (BatchNorm in eval mode with running statistics, LayerNorm, GroupNorm, InstanceNorm,
  RMSNorm): example i's gradients are ∂γ = Σ_positions g_i ⊙ x̂_i and ∂β = Σ_positions g_i, with
  x̂ recomputed from the captured input by the same normalization without affine. These are small
  (B × |γ|) and are formed outright.
- Embedding y_t = W[k_t]: example i's gradient is Σ_t e_{k_t} g_tᵀ; its rows are coalesced per
  (example, token) with one sort, so norms and Σ_i g_i² cost O(B·T·d) whatever the vocabulary.
- ``nn.MultiheadAttention``: its projections are ``F.linear`` calls on ``in_proj_weight`` (or
  row blocks of it: q, k, v) and ``out_proj.weight`` inside ``F.multi_head_attention_forward``;
  a tap on ``F.linear`` active during the module's forward records each call's input and the
  gradient of its output, and each call is a Linear layer applied at L positions (its rows of
  the packed weight). ``bias_k``/``bias_v`` are left to the fallback.

Every path is checked against the autograd gradient of the mean loss by the caller (Σ_i g_i / B
must equal it), so a parameter also used elsewhere goes to the fallback.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_CHANNEL_NORMS = _BATCH_NORMS + _INSTANCE_NORMS + (nn.GroupNorm,)
_LAST_DIM_NORMS = (nn.LayerNorm, nn.RMSNorm)

MHA_ROLES = {"in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight"}


def is_affine_norm(module: nn.Module) -> bool:
    """A normalization with an elementwise affine whose x̂ of an example depends on it alone."""
    t = type(module)
    if t in _BATCH_NORMS:
        return module.affine and not module.training and module.track_running_stats and module.running_mean is not None
    if t in _INSTANCE_NORMS or t is nn.GroupNorm:
        return bool(module.affine)
    if t in _LAST_DIM_NORMS:
        return bool(module.elementwise_affine)
    return False


def _normalized(module: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """x̂: the module's normalization of ``a`` without its affine."""
    t = type(module)
    if t in _BATCH_NORMS:
        return F.batch_norm(a, module.running_mean, module.running_var, None, None, False, 0.0, module.eps)
    if t in _INSTANCE_NORMS:
        use_input = module.training or not module.track_running_stats
        rm = None if use_input else module.running_mean
        rv = None if use_input else module.running_var
        return F.instance_norm(a, rm, rv, None, None, use_input, 0.0, module.eps)
    if t is nn.GroupNorm:
        return F.group_norm(a, module.num_groups, None, None, module.eps)
    if t is nn.LayerNorm:
        return F.layer_norm(a, module.normalized_shape, None, None, module.eps)
    return F.rms_norm(a, module.normalized_shape, None, module.eps)


def affine_rows(module: nn.Module, a: torch.Tensor, g: torch.Tensor, B: int) -> dict[str, tuple[torch.Tensor, float]] | None:
    """Per-example gradients of ``weight`` and ``bias`` (those present) as (B, numel) rows, from the
    module's input ``a`` and per-example output-gradient ``g``, each with a bound on the sum of the
    magnitudes of the terms summed (Cauchy–Schwarz: Σ|g x̂| ≤ ‖g‖‖x̂‖, Σ|g| ≤ √n‖g‖) for the
    caller's rounding tolerance; None when ``a`` does not have the examples on its first axis (an
    unbatched or time-major call)."""
    if a.shape[0] != B or g.shape != a.shape:
        return None
    if type(module) in _CHANNEL_NORMS:
        if a.dim() < 2 or (type(module) in _INSTANCE_NORMS and a.dim() != module._get_no_batch_dim() + 1):
            return None
        dims = tuple(range(2, a.dim()))
    else:
        k = len(module.normalized_shape)
        if a.dim() < k + 1:
            return None
        dims = tuple(range(1, a.dim() - k))
    out: dict[str, tuple[torch.Tensor, float]] = {}
    g_norm = float(g.norm())
    if module.weight is not None:
        with torch.no_grad():
            xhat = _normalized(module, a)
        gw = g * xhat
        out["weight"] = ((gw.sum(dims) if dims else gw).reshape(B, -1), g_norm * float(xhat.norm()))
    if getattr(module, "bias", None) is not None:
        out["bias"] = ((g.sum(dims) if dims else g).reshape(B, -1), g_norm * g.numel() ** 0.5)
    return out


def is_embedding(module: nn.Module) -> bool:
    """``nn.Embedding`` without ``max_norm`` (which rewrites the weight) or frequency scaling."""
    return type(module) is nn.Embedding and module.max_norm is None and not module.scale_grad_by_freq


def embedding_stats(
    module: nn.Module, idx: torch.Tensor, g: torch.Tensor, B: int, *, want_gram: bool, want_second: bool
) -> dict[str, torch.Tensor] | None:
    """Per-example squared norms, Σ_i g_i ⊙ g_i, the Gram block and Σ_i g_i of the embedding
    weight, from the token indices ``idx`` (B, ...) and per-example output-gradients ``g``."""
    if idx.dim() < 1 or idx.shape[0] != B or g.shape[:-1] != idx.shape:
        return None
    V, d = module.weight.shape
    tok = idx.reshape(B, -1)
    T = tok.shape[1]
    ex = torch.arange(B, device=idx.device).repeat_interleave(T)
    tok = tok.reshape(-1)
    rows = g.reshape(B * T, d)
    if module.padding_idx is not None:  # the padding row gets no gradient
        keep = tok != module.padding_idx
        ex, tok, rows = ex[keep], tok[keep], rows[keep]
    key = ex * V + tok
    uniq, inv = torch.unique(key, return_inverse=True)
    U = torch.zeros(uniq.numel(), d, dtype=g.dtype, device=g.device).index_add_(0, inv, rows)
    ex_u, tok_u = uniq // V, uniq % V
    sq_rows = U.pow(2).sum(1)
    out = {
        "sq": torch.zeros(B, dtype=g.dtype, device=g.device).index_add_(0, ex_u, sq_rows),
        "sum": torch.zeros(V, d, dtype=g.dtype, device=g.device).index_add_(0, tok_u, U),
    }
    if want_second:
        out["second"] = torch.zeros(V, d, dtype=g.dtype, device=g.device).index_add_(0, tok_u, U.pow(2))
    if want_gram:  # ⟨G_i, G_j⟩ = Σ over coalesced rows (i, k), (j, k) of the same token k
        same = (tok_u[:, None] == tok_u[None, :]).to(g.dtype)
        E = F.one_hot(ex_u, B).to(g.dtype)
        out["gram"] = E.T @ ((U @ U.T) * same) @ E
    return out


# ---------------------------------------------------------------------------------------------
# MultiheadAttention: the F.linear calls on its projection weights


class LinearTap:
    """Records each ``F.linear`` whose weight is one of ``weights`` or a block of its rows: the input,
    the rows, the bias (name and rows) and, through a tensor hook, the gradient of the output.
    A target used any other way (a view that is not a row block) is recorded as ``bad``.

    Active inside ``with tap:`` in the calling thread: while any tap is active (in any thread),
    ``torch.nn.functional.linear`` — the name ``F.multi_head_attention_forward`` calls — is a
    wrapper that hands each call to the calling thread's active taps; the original is put back
    when the last tap exits. (A ``TorchFunctionMode`` cannot see these calls:
    ``multi_head_attention_forward`` is itself dispatched to the mode, which runs it with the mode
    switched off.)"""

    def __init__(self, weights: dict[int, tuple[str, torch.Tensor]], biases: dict[int, tuple[str, torch.Tensor]]):
        self.weights, self.biases = weights, biases
        self.calls: list[dict[str, Any]] = []
        self.bad = False

    def __enter__(self) -> "LinearTap":
        global _installed
        with _lock:
            if _installed == 0:
                F.linear = _tapped_linear
            _installed += 1
        _taps().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        global _installed
        if self in _taps():
            _taps().remove(self)
        with _lock:
            _installed -= 1
            if _installed == 0:
                F.linear = _ORIGINAL_LINEAR

    @staticmethod
    def _find(t: torch.Tensor | None, targets: dict[int, tuple[str, torch.Tensor]]) -> tuple[str | None, slice | None]:
        if t is None:
            return None, None
        if id(t) in targets:
            return targets[id(t)][0], slice(0, t.shape[0])
        base = t._base
        if base is None or id(base) not in targets:
            return None, None
        if t.stride() != base.stride() or t.shape[1:] != base.shape[1:]:
            return "?", None
        off = (t.storage_offset() - base.storage_offset()) // base.stride(0)
        return targets[id(base)][0], slice(off, off + t.shape[0])

    def _record(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, out: torch.Tensor) -> None:
        wname, wrows = self._find(w, self.weights)
        bname, brows = self._find(b, self.biases)
        if wname == "?" or bname == "?" or (wname is None and bname is not None):
            self.bad = True
        elif wname is not None:
            rec: dict[str, Any] = {"w": wname, "rows": wrows, "b": bname, "brows": brows, "a": x.detach(), "g": None}
            if out.requires_grad:
                out.register_hook(lambda gr, rec=rec: rec.__setitem__("g", gr.detach()))
            self.calls.append(rec)


_ORIGINAL_LINEAR = F.linear
_lock = threading.Lock()
_installed = 0  # taps active in all threads
_local = threading.local()


def _taps() -> list[LinearTap]:
    if not hasattr(_local, "taps"):
        _local.taps = []
    return _local.taps


def _tapped_linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    out = _ORIGINAL_LINEAR(input, weight, bias)
    for tap in _taps():
        tap._record(input, weight, bias, out)
    return out


def mha_batch(args: tuple, kwargs: dict, module: nn.MultiheadAttention) -> int | None:
    """The batch size of a MultiheadAttention call (None for unbatched inputs)."""
    q = args[0] if args else kwargs.get("query")
    if not isinstance(q, torch.Tensor) or q.dim() != 3:
        return None
    return int(q.shape[0] if module.batch_first else q.shape[1])


class TapForward:
    """Runs ``module``'s forward under a :class:`LinearTap` (entered by a forward pre-hook, left by
    a forward hook) and notes the batch size of each call; :meth:`restore` removes the hooks and
    leaves the tap if a forward raised in between."""

    def __init__(self, module: nn.Module, tap: LinearTap):
        self.module, self.tap, self.batches = module, tap, []
        self._depth = 0

        def enter(mod: nn.Module, args: tuple, kwargs: dict) -> None:
            self.batches.append(mha_batch(args, kwargs, mod))
            tap.__enter__()
            self._depth += 1

        def leave(mod: nn.Module, args: tuple, output: Any) -> None:
            if self._depth:
                self._depth -= 1
                tap.__exit__()

        self._handles = [module.register_forward_pre_hook(enter, with_kwargs=True), module.register_forward_hook(leave)]

    def restore(self) -> None:
        for h in self._handles:
            h.remove()
        while self._depth:
            self._depth -= 1
            self.tap.__exit__()


def positions(t: torch.Tensor, B: int) -> torch.Tensor:
    """An input or output-gradient of a projection inside attention, (L, B, d) or (L·B, d) with
    rows ordered (position, example), as (B, L, d)."""
    return t.reshape(-1, B, t.shape[-1]).transpose(0, 1)
