"""Per-example gradient statistics without per-example gradients of the whole model.

For a layer ``z = W a + b`` the gradient of example i's loss is ``g_i a_iᵀ`` (and ``g_i`` for the
bias), with ``a_i`` the layer input and ``g_i`` the gradient of the loss w.r.t. the layer output.
Norms, inner products and elementwise squares of per-example gradients therefore follow from the
inputs and output-gradients of one forward/backward pass (Goodfellow 2015, "Efficient per-example
gradient computations", arXiv 1510.01799; Dangel, Kunstner & Hennig 2020, "BackPACK",
arXiv 1912.10985):

- ``‖g_i a_iᵀ‖² = ‖g_i‖²‖a_i‖²``, ``⟨g_i a_iᵀ, g_j a_jᵀ⟩ = (a_i·a_j)(g_i·g_j)``,
  ``Σ_i (g_i a_iᵀ)² = (g²)ᵀ(a²)`` elementwise;
- a layer applied at T positions (Linear on a sequence; convolutions after ``unfold``, with a_t the
  input patch at output position t) has per-example gradient ``Σ_t g_t a_tᵀ`` and
  ``‖Σ_t g_t a_tᵀ‖² = Σ_{t,t'} (a_t·a_t')(g_t·g_t')`` (the "Gram trick": T²·(d_in + d_out)
  operations per example); when that exceeds T·d_in·d_out, or elementwise second moments are
  wanted, the per-example weight gradients of that one layer are formed instead, in
  memory-bounded chunks (exact either way).

The same one pass serves the elementwise affines (γ, β) of BatchNorm in eval mode, LayerNorm,
GroupNorm, InstanceNorm and RMSNorm, ``nn.Embedding`` and the projections of
``nn.MultiheadAttention`` (:mod:`genlab.probes._fast_paths`). Any other parameterized module
(grouped convolutions, custom layers, a module called twice, parameters shared or tied by
identity, attention's ``bias_k``/``bias_v``) is handled by a chunked ``torch.func.vmap`` of
per-example gradients restricted to that module's parameters; where vmap cannot go (``nn.GRU``/``nn.LSTM``/``nn.RNN`` kernels, any operation without
a batching rule) by a loop over examples, one batch of one at a time.

Conventions: the per-example loss is ``loss_fn`` on a batch of one; ``loss_fn`` returns the mean
over the batch, so the output-gradients of the batch loss are ``1/B`` times the per-example ones
(undone here). Inputs/outputs/data of any layout of :mod:`genlab.probes._setup`.

Mode (argument ``mode``, default ``"eval"``): per-example gradients need examples that do not
interact, so train-mode BatchNorm (batch statistics) is refused before any forward pass. In
``"train"`` mode with dropout, example i's masks are drawn from (``seed``, i) — i its position in
the data — once per call, and every quantity (norms, mean gradient, loss) is that of those masks
(computed by the loop over examples, which draws them the same way for every parameter).
The model is never modified: hooks are removed before returning, no ``.grad`` is written,
buffers are updated only on copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils._pytree import tree_map

from genlab.errors import InputError
from genlab.probes._fast_paths import (MHA_ROLES, LinearTap, TapForward, affine_rows, embedding_stats, is_affine_norm,
                                       is_embedding, positions)
from genlab.probes._functional import Data, LossFn
from genlab.probes._setup import ProbeInfo, as_args, forward_with_copies, logits, probe_call, seeded, take

Method = Literal["auto", "gram", "materialize"]

#: default bound on the number of tensor elements a chunk of per-example quantities may hold
CHUNK_ELEMENTS = 1 << 23


@dataclass
class PerExampleStats:
    """Statistics of the per-example gradients g_1..g_N of the trainable parameters.

    Attributes:
        n: number of examples N.
        loss: mean loss over the examples.
        sq_norms: ‖g_i‖² over all parameters, shape (N,).
        param_sq_norms: ‖g_i‖² restricted to each parameter, name → (N,).
        mean_grad: (1/N) Σ_i g_i per parameter (the gradient of the mean loss).
        second_moment: (1/N) Σ_i g_i ⊙ g_i per parameter (elementwise), if requested.
        gram: the N×N matrix ⟨g_i, g_j⟩, if requested (one batch only).
        fallback: names of the parameters computed by the vmap fallback or the loop.
        indices: the dataset index of each example, when the data carries them.
        info: mode, dtype, device, number of examples and notes.
    """

    n: int
    loss: float
    sq_norms: torch.Tensor
    param_sq_norms: dict[str, torch.Tensor]
    mean_grad: dict[str, torch.Tensor]
    second_moment: dict[str, torch.Tensor] | None = None
    gram: torch.Tensor | None = None
    fallback: list[str] = field(default_factory=list)
    indices: torch.Tensor | None = None
    info: ProbeInfo | None = None

    def mean_grad_flat(self) -> torch.Tensor:
        return torch.cat([g.reshape(-1) for g in self.mean_grad.values()])


# ---------------------------------------------------------------------------------------------
# which modules take the fast path


def _fast_kind(module: nn.Module) -> str | None:
    """How a module's per-example statistics follow from (input, output-grad) of one pass:
    ``linear`` / ``conv`` (the layer at T positions), ``affine`` (a normalization's γ, β),
    ``embedding``, ``mha`` (the projections of ``nn.MultiheadAttention``); None: the fallback."""
    if type(module) is nn.Linear:
        return "linear"
    if type(module) in (nn.Conv1d, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros":
            return None
        if isinstance(module.padding, str) and module.padding != "valid":
            return None
        return "conv"
    if is_affine_norm(module):
        return "affine"
    if is_embedding(module):
        return "embedding"
    if type(module) is nn.MultiheadAttention:
        return "mha"
    return None


def _patches(module: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """Input patches of a convolution, (B, T, C_in·∏k), ordered like ``weight.reshape(C_out, -1)``."""
    pad = (0,) * len(module.kernel_size) if isinstance(module.padding, str) else module.padding
    if isinstance(module, nn.Conv1d):
        cols = F.unfold(
            a.unsqueeze(2),
            kernel_size=(1, module.kernel_size[0]),
            dilation=(1, module.dilation[0]),
            padding=(0, pad[0]),
            stride=(1, module.stride[0]),
        )
    else:
        cols = F.unfold(a, module.kernel_size, dilation=module.dilation, padding=pad, stride=module.stride)
    return cols.transpose(1, 2)


def _as_positions(module: nn.Module, kind: str, a: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, G) of shapes (B, T, d_in) and (B, T, d_out): the layer as a linear map applied at T positions."""
    b = a.shape[0]
    if kind == "linear":
        return a.reshape(b, -1, a.shape[-1]), g.reshape(b, -1, g.shape[-1])
    return _patches(module, a), g.reshape(b, g.shape[1], -1).transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# per-layer statistics from (A, G)


def _chunks(n: int, per_item: int, budget: int):
    size = max(1, budget // max(per_item, 1))
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def _layer_stats(
    A: torch.Tensor,
    G: torch.Tensor,
    has_bias: bool,
    *,
    want_gram: bool,
    want_second: bool,
    method: Method,
    budget: int,
) -> dict[str, torch.Tensor]:
    """Per-example squared norms, optional Gram and Σ_i g_i² of weight (d_out, d_in) and bias (d_out)."""
    B, T, din = A.shape
    dout = G.shape[-1]
    out: dict[str, torch.Tensor] = {}
    if has_bias:
        gb = G.sum(1)  # (B, d_out): per-example bias gradients
        out["bias_sq"] = gb.pow(2).sum(1)
        out["bias_sum"] = gb.sum(0)
        if want_gram:
            out["bias_gram"] = gb @ gb.T
        if want_second:
            out["bias_second"] = gb.pow(2).sum(0)

    if T == 1:
        a, g = A[:, 0], G[:, 0]
        a2, g2 = a.pow(2), g.pow(2)
        out["weight_sq"] = a2.sum(1) * g2.sum(1)
        if want_gram:
            out["weight_gram"] = (a @ a.T) * (g @ g.T)
        if want_second:
            out["weight_second"] = g2.T @ a2
        return out

    # cost per example: Gram trick T²·(d_in + d_out), materializing T·d_in·d_out (+ d_in·d_out for
    # the squares); the second moments need the materialized gradients anyway
    use_gram_trick = method == "gram" or (
        method == "auto" and not want_second and T * (din + dout) < din * dout
    )
    if use_gram_trick:
        sq = torch.empty(B, dtype=A.dtype, device=A.device)
        for s in _chunks(B, T * T, budget):
            sq[s] = ((A[s] @ A[s].transpose(1, 2)) * (G[s] @ G[s].transpose(1, 2))).sum((1, 2))
        out["weight_sq"] = sq
        if want_gram:
            gram = torch.empty(B, B, dtype=A.dtype, device=A.device)
            for s in _chunks(B, B * T * T, budget):
                ka = torch.einsum("itd,jsd->ijts", A[s], A)
                kg = torch.einsum("ite,jse->ijts", G[s], G)
                gram[s] = (ka * kg).sum((2, 3))
            out["weight_gram"] = gram
    need_materialized = (not use_gram_trick) or want_second
    if need_materialized:
        sq = torch.empty(B, dtype=A.dtype, device=A.device)
        second = torch.zeros(dout, din, dtype=A.dtype, device=A.device) if want_second else None
        flat = [] if (want_gram and not use_gram_trick) else None
        total = torch.zeros(dout, din, dtype=A.dtype, device=A.device)
        for s in _chunks(B, din * dout, budget):
            W = torch.einsum("bto,bti->boi", G[s], A[s])  # per-example weight gradients of this chunk
            W2 = W.pow(2)
            sq[s] = W2.sum((1, 2))
            total += W.sum(0)
            if second is not None:
                second += W2.sum(0)
            if flat is not None:
                flat.append(W.reshape(W.shape[0], -1))
        out["weight_sum"] = total  # Σ_i g_i, for the check against autograd's gradient
        if not use_gram_trick:
            out["weight_sq"] = sq
        if second is not None:
            out["weight_second"] = second
        if flat is not None:
            Wf = torch.cat(flat)
            out["weight_gram"] = Wf @ Wf.T
    return out


# ---------------------------------------------------------------------------------------------
# the vmap fallback


def _fallback_stats(
    model: nn.Module,
    loss_fn: LossFn,
    x,
    y: torch.Tensor,
    names: list[str],
    *,
    output_fn,
    want_gram: bool,
    want_second: bool,
    budget: int,
) -> dict[str, dict[str, torch.Tensor]]:
    """Per-example gradients of the parameters ``names`` by ``vmap(grad)``, in chunks of examples."""
    all_params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    fixed = {n: p for n, p in all_params.items() if n not in names}
    chosen = {n: all_params[n] for n in names}

    def one_loss(params: dict[str, torch.Tensor], xi, yi: torch.Tensor) -> torch.Tensor:
        xi = tree_map(lambda t: t.unsqueeze(0), xi)
        out = functional_call(model, ({**fixed, **params}, buffers), as_args(xi))
        return loss_fn(_out(out, output_fn), yi.unsqueeze(0))

    per_example = vmap(grad(one_loss), in_dims=(None, 0, 0))
    B = int(y.shape[0])
    size = sum(p.numel() for p in chosen.values())
    acc = _Accumulator(names, {n: p.shape for n, p in chosen.items()}, want_gram, want_second)
    # with a Gram matrix requested, all of the batch's fallback gradients are kept (small batches)
    for s in _chunks(B, size, budget if not want_gram else max(budget, B * size)):
        acc.add(per_example(chosen, take(x, s), y[s]))
    return acc.result()


def _out(out, output_fn):
    return logits(out, output_fn) if output_fn is not None else out


class _Accumulator:
    """Per-example squared norms, Σ g_i² and the Gram blocks of chunks of per-example gradients."""

    def __init__(self, names: list[str], shapes: dict, want_gram: bool, want_second: bool):
        self.names, self.shapes, self.want_gram, self.want_second = names, shapes, want_gram, want_second
        self.res: dict[str, dict] = {n: {"sq": [], "flat": [], "second": 0.0} for n in names}

    def add(self, grads: dict[str, torch.Tensor]) -> None:
        for n in self.names:
            gi = grads[n].reshape(grads[n].shape[0], -1)
            self.res[n]["sq"].append(gi.pow(2).sum(1))
            if self.want_second:
                self.res[n]["second"] = self.res[n]["second"] + gi.pow(2).sum(0).reshape(self.shapes[n])
            if self.want_gram:
                self.res[n]["flat"].append(gi)

    def result(self) -> dict[str, dict[str, torch.Tensor]]:
        out: dict[str, dict[str, torch.Tensor]] = {}
        for n in self.names:
            entry = {"sq": torch.cat(self.res[n]["sq"])}
            if self.want_second:
                entry["second"] = self.res[n]["second"]
            if self.want_gram:
                f = torch.cat(self.res[n]["flat"])
                entry["gram"] = f @ f.T
            out[n] = entry
        return out


def _loop_stats(
    model: nn.Module,
    loss_fn: LossFn,
    x,
    y: torch.Tensor,
    names: list[str],
    *,
    output_fn,
    want_gram: bool,
    want_second: bool,
    seed: int,
    offset: int,
    random: bool,
) -> tuple[dict[str, dict[str, torch.Tensor]], torch.Tensor, dict[str, torch.Tensor]]:
    """Per-example gradients of ``names`` by a loop over batches of one (RNN kernels and other
    operations vmap cannot batch; random operations: example i's draw from (seed, offset + i)).
    Also returns the per-example losses and the mean gradient of ``names``."""
    params = dict(model.named_parameters())
    chosen = [params[n] for n in names]
    acc = _Accumulator(names, {n: params[n].shape for n in names}, want_gram, want_second)
    losses = []
    total = {n: torch.zeros_like(params[n]) for n in names}
    B = int(y.shape[0])
    for i in range(B):
        with torch.enable_grad():
            if random:
                with seeded(seed, offset + i):
                    out = forward_with_copies(model, take(x, i))
            else:
                out = forward_with_copies(model, take(x, i))
            loss = loss_fn(_out(out, output_fn), y[i : i + 1])
            gs = torch.autograd.grad(loss, chosen, allow_unused=True)
        gd = {n: (torch.zeros_like(p) if g is None else g.detach()) for n, p, g in zip(names, chosen, gs)}
        for n in names:
            total[n] += gd[n]
        acc.add({n: g.unsqueeze(0) for n, g in gd.items()})
        losses.append(loss.detach())
    return acc.result(), torch.stack(losses), {n: t / B for n, t in total.items()}


def _consistent(
    A: torch.Tensor,
    G: torch.Tensor,
    mean_weight_grad: torch.Tensor,
    mean_bias_grad: torch.Tensor | None,
    B: int,
    gen: torch.Generator,
) -> bool:
    """Whether (1/B) Σ_i Σ_t g_it a_itᵀ (and (1/B) Σ_i Σ_t g_it) equal the autograd gradients of the
    weight (and bias), the weight's along a random direction v (O(B·T·(d_in + d_out))): false
    when a parameter is also used outside the module's own forward."""
    # rounding of a sum of n = B·T products is ≲ sqrt(n)·eps·‖G‖‖Av‖ (Cauchy–Schwarz bound on
    # the sum of magnitudes); 1e3·eps covers n up to 10⁶
    eps = 1e3 * torch.finfo(A.dtype).eps
    tiny = torch.finfo(A.dtype).tiny
    # drawn on the generator's device (CPU), then moved: the model's own device may be a GPU
    v = torch.randn(A.shape[-1], generator=gen, dtype=A.dtype).to(A.device)
    # (A and G of convolutions are transposed views: keep to operations that do not copy them)
    av = A @ v if A.is_contiguous() else v @ A.transpose(1, 2)  # (B, T)
    ours = (G * av.unsqueeze(-1)).sum((0, 1)) / B
    g_norm = float(G.norm())
    if float((ours - mean_weight_grad @ v).norm()) > eps * max(g_norm * float(av.norm()) / B, tiny):
        return False
    if mean_bias_grad is not None:
        err = float((G.sum((0, 1)) / B - mean_bias_grad).norm())
        if err > eps * max(g_norm * (G.shape[0] * G.shape[1]) ** 0.5 / B, tiny):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# the engine


def _owners(model: nn.Module) -> tuple[dict[str, tuple[str, nn.Module, str]], set[str]]:
    """Trainable parameter name (as ``named_parameters`` spells it) → (module name, module, local
    name), resolved by identity; and the names of parameters held by more than one module (tied)."""
    canonical = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    holders: dict[str, list[tuple[str, nn.Module, str]]] = {}
    for mname, mod in model.named_modules(remove_duplicate=False):
        for pname, p in mod.named_parameters(recurse=False, remove_duplicate=False):
            if id(p) in canonical:
                holders.setdefault(canonical[id(p)], []).append((mname, mod, pname))
    owner = {n: h[0] for n, h in holders.items()}
    shared = {n for n, h in holders.items() if len({id(m) for _, m, _ in h}) > 1 or len(h) > 1}
    return owner, shared


def _needs_loop(mod: nn.Module) -> bool:
    """Modules whose kernels vmap cannot batch (per-example gradients by a loop)."""
    return isinstance(mod, nn.RNNBase)


def _fast_modules(model: nn.Module, owner: dict, shared: set[str], force_fallback: set[str]):
    """module name → (module, kind, its parameter names) for the modules taking a fast path."""
    fast: dict[str, tuple[nn.Module, str, list[str]]] = {}
    for mname, mod in model.named_modules():
        kind = _fast_kind(mod)
        if kind is None or mname in force_fallback:
            continue
        pnames = [n for n, (m, _, _) in owner.items() if m == mname]
        if kind == "mha":  # its in-projections and the out_proj submodule's weight and bias
            sub = f"{mname}.out_proj" if mname else "out_proj"
            pnames = [n for n in pnames if owner[n][2] in MHA_ROLES] + [n for n, (m, _, _) in owner.items() if m == sub]
        if not pnames or any(n in shared or n != (f"{owner[n][0]}.{owner[n][2]}" if owner[n][0] else owner[n][2])
                             for n in pnames):
            continue
        roles = {owner[n][2] for n in pnames}
        if kind in ("linear", "conv") and not ("weight" in roles and roles <= {"weight", "bias"}):
            continue
        if kind == "affine" and not roles <= {"weight", "bias"}:
            continue
        if kind == "embedding" and roles != {"weight"}:
            continue
        fast[mname] = (mod, kind, pnames)
    return fast


def _rows_entry(rows: torch.Tensor, shape: torch.Size, want_gram: bool, want_second: bool) -> dict[str, torch.Tensor]:
    """Statistics of per-example gradients given as (B, numel) rows."""
    e = {"sq": rows.pow(2).sum(1)}
    if want_second:
        e["second"] = rows.pow(2).sum(0).reshape(shape)
    if want_gram:
        e["gram"] = rows @ rows.T
    return e


def _sums_match(total: torch.Tensor, mean_grad: torch.Tensor, B: int, scale: float) -> bool:
    """Σ_i g_i / B equals the autograd gradient up to rounding: ``scale`` bounds Σ of the summed
    magnitudes (rounding ≲ sqrt(n)·eps·scale; 1e3·eps covers n up to 10⁶ terms)."""
    eps = 1e3 * torch.finfo(total.dtype).eps
    err = float((total.reshape(-1) / B - mean_grad.reshape(-1)).norm())
    return err <= eps * max(scale / B, torch.finfo(total.dtype).tiny)


def _zero_entries(pnames: list[str], mean_grad: dict, B: int, want_gram: bool, want_second: bool):
    """A module the loss does not reach: zero per-example gradients (if autograd agrees)."""
    if any(float(mean_grad[n].abs().max()) > 0 for n in pnames if mean_grad[n].numel()):
        return None
    dtype = mean_grad[pnames[0]].dtype
    return {n: _rows_entry(torch.zeros(B, mean_grad[n].numel(), dtype=dtype), mean_grad[n].shape, want_gram, want_second)
            for n in pnames}


def _module_entries(mod: nn.Module, kind: str, pnames: list[str], owner: dict, a: torch.Tensor, g: torch.Tensor,
                    mean_grad: dict, B: int, probe: torch.Generator, *, want_gram: bool, want_second: bool,
                    method: Method, budget: int):
    """Per-parameter statistics of one module called once, from its input ``a`` and per-example
    output-gradient ``g``; None when they do not reproduce the autograd gradient."""
    role = {owner[n][2]: n for n in pnames}
    if kind == "affine":
        rows = affine_rows(mod, a, g, B)
        if rows is None:
            return None
        out = {}
        for r, n in role.items():
            if r not in rows or not _sums_match(rows[r][0].sum(0), mean_grad[n], B, rows[r][1]):
                return None
            out[n] = _rows_entry(rows[r][0], mean_grad[n].shape, want_gram, want_second)
        return out
    if kind == "embedding":
        n = role["weight"]
        st = embedding_stats(mod, a, g, B, want_gram=want_gram, want_second=want_second)
        if st is None or not _sums_match(st["sum"], mean_grad[n], B, float(g.norm()) * g.numel() ** 0.5):
            return None
        return {n: {k: v for k, v in st.items() if k != "sum"}}
    # linear / conv: the undoing of the 1/B of the mean loss is in g already
    A, G = _as_positions(mod, kind, a, g)
    wn, bn = role["weight"], role.get("bias")
    st = _layer_stats(A, G, bn is not None, want_gram=want_gram, want_second=want_second, method=method, budget=budget)
    if "weight_sum" in st:  # per-example weight gradients were formed: check their sum directly
        # ‖A‖ without a pass over the patches: each input entry is in at most ∏ kernel_size of them
        g_norm = float(G.norm())
        a_norm = float(a.norm()) * (math.prod(mod.kernel_size) ** 0.5 if kind == "conv" else 1.0)
        if not _sums_match(st["weight_sum"], mean_grad[wn], B, g_norm * a_norm) or (
                bn and not _sums_match(st["bias_sum"], mean_grad[bn], B, g_norm * G[..., 0].numel() ** 0.5)):
            return None
    elif not _consistent(A, G, mean_grad[wn].reshape(G.shape[-1], A.shape[-1]), mean_grad[bn] if bn else None, B, probe):
        return None
    out = {wn: {"sq": st["weight_sq"]}}
    if want_second:
        out[wn]["second"] = st["weight_second"].reshape(mean_grad[wn].shape)
    if want_gram:
        out[wn]["gram"] = st["weight_gram"]
    if bn:
        out[bn] = {"sq": st["bias_sq"]}
        if want_second:
            out[bn]["second"] = st["bias_second"]
        if want_gram:
            out[bn]["gram"] = st["bias_gram"]
    return out


def _mha_entries(tf: TapForward, pnames: list[str], owner: dict, mean_grad: dict, B: int, probe: torch.Generator, *,
                 want_gram: bool, want_second: bool, method: Method, budget: int):
    """Per-parameter statistics of a MultiheadAttention's projections from the ``F.linear`` calls
    its tap recorded: each call a Linear layer at L positions on a block of rows; the blocks of one
    parameter must be disjoint and, with the rows no call touched (zero gradient), reproduce the
    autograd gradient."""
    tap = tf.tap
    if tap.bad or tf.batches != [B] or not tap.calls or any(c["g"] is None for c in tap.calls):
        return None
    dtype = mean_grad[pnames[0]].dtype
    out: dict[str, dict[str, torch.Tensor]] = {}
    covered: dict[str, torch.Tensor] = {n: torch.zeros(mean_grad[n].shape[0], dtype=torch.bool) for n in pnames}
    for c in tap.calls:
        A, G = positions(c["a"], B), positions(c["g"] * B, B)
        wn, bn, rows, brows = c["w"], c["b"], c["rows"], c["brows"]
        if bn is not None and (brows != rows or covered[bn][brows].any()):
            return None
        if covered[wn][rows].any() or A.shape[-1] != mean_grad[wn].shape[1] or G.shape[-1] != rows.stop - rows.start:
            return None
        if not _consistent(A, G, mean_grad[wn][rows], mean_grad[bn][brows] if bn else None, B, probe):
            return None
        covered[wn][rows] = True
        st = _layer_stats(A, G, bn is not None, want_gram=want_gram, want_second=want_second, method=method, budget=budget)
        for n, key, r in ((wn, "weight", rows), (bn, "bias", brows)):
            if n is None:
                continue
            covered[n][r] = True
            e = out.setdefault(n, {"sq": torch.zeros(B, dtype=dtype)})
            e["sq"] = e["sq"] + st[f"{key}_sq"]
            if want_second:
                e.setdefault("second", torch.zeros_like(mean_grad[n]))[r] = st[f"{key}_second"]
            if want_gram:
                e["gram"] = e.get("gram", 0) + st[f"{key}_gram"]
    for n in pnames:  # rows no call used must have no gradient
        rest = mean_grad[n][~covered[n]]
        if rest.numel() and float(rest.abs().max()) > 0:
            return None
        if n not in out:
            out[n] = _rows_entry(torch.zeros(B, mean_grad[n].numel(), dtype=dtype), mean_grad[n].shape, want_gram, want_second)
    return out


def _batch_stats(
    model: nn.Module,
    loss_fn: LossFn,
    x,
    y: torch.Tensor,
    *,
    output_fn,
    want_gram: bool,
    want_second: bool,
    method: Method,
    budget: int,
    force_fallback: set[str],
    loop_all: bool,
    seed: int,
    offset: int,
):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    B = int(y.shape[0])
    if loop_all:  # random operations: every parameter through the loop, one draw per example
        fb, losses, mean_grad = _loop_stats(model, loss_fn, x, y, names, output_fn=output_fn, want_gram=want_gram,
                                            want_second=want_second, seed=seed, offset=offset, random=True)
        gram = sum(fb[n]["gram"] for n in names) if want_gram else None
        second = {n: fb[n]["second"] for n in names} if want_second else None
        return float(losses.mean()), {n: fb[n]["sq"] for n in names}, mean_grad, second, gram, list(names)
    owner, shared = _owners(model)
    fast = _fast_modules(model, owner, shared, force_fallback)
    params = dict(named)
    captured: dict[str, dict[str, list[torch.Tensor]]] = {m: {"a": [], "g": []} for m in fast}

    def make_hook(mname: str):
        def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            captured[mname]["a"].append(inputs[0].detach())
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(lambda g: captured[mname]["g"].append(g.detach()))

        return hook

    handles, taps = [], {}
    try:
        for m, (mod, kind, pnames) in fast.items():
            if kind == "mha":
                weights = {id(params[n]): (n, params[n]) for n in pnames if not owner[n][2].endswith("bias")}
                biases = {id(params[n]): (n, params[n]) for n in pnames if owner[n][2].endswith("bias")}
                taps[m] = TapForward(mod, LinearTap(weights, biases))
            else:
                handles.append(mod.register_forward_hook(make_hook(m)))
        with torch.enable_grad():
            loss = loss_fn(_out(forward_with_copies(model, x), output_fn), y)
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        for t in taps.values():
            t.restore()
    mean_grad = {n: (torch.zeros_like(p) if g is None else g.detach()) for (n, p), g in zip(named, grads)}

    # per fast parameter: {"sq": (B,), "second": like the parameter, "gram": (B, B)}; a module
    # whose per-example gradients do not sum to the autograd gradient (a parameter also used
    # outside the module's own forward, a module called twice) goes to the fallback
    entries: dict[str, dict[str, torch.Tensor]] = {}
    probe = torch.Generator().manual_seed(0)
    opts = dict(want_gram=want_gram, want_second=want_second, method=method, budget=budget)
    for mname, (mod, kind, pnames) in fast.items():
        if kind == "mha":
            got = _mha_entries(taps[mname], pnames, owner, mean_grad, B, probe, **opts)
        else:
            c = captured[mname]
            if len(c["a"]) != 1 or len(c["g"]) > 1:
                continue
            if not c["g"]:  # the loss does not reach this module's output
                got = _zero_entries(pnames, mean_grad, B, want_gram, want_second)
            else:
                got = _module_entries(mod, kind, pnames, owner, c["a"][0], c["g"][0] * B, mean_grad, B, probe, **opts)
        if got is not None:
            entries.update(got)
    fallback_names = [n for n in names if n not in entries]

    param_sq: dict[str, torch.Tensor] = {n: e["sq"] for n, e in entries.items()}
    second: dict[str, torch.Tensor] = {n: e["second"] for n, e in entries.items()} if want_second else {}
    gram = torch.zeros(B, B, dtype=loss.dtype) if want_gram else None
    if want_gram:
        for e in entries.values():
            gram += e["gram"]
    if fallback_names:
        loop = {n for n in fallback_names if _needs_loop(owner[n][1])}
        fb: dict[str, dict[str, torch.Tensor]] = {}
        vm = [n for n in fallback_names if n not in loop]
        if vm:
            try:
                fb.update(_fallback_stats(model, loss_fn, x, y, vm, output_fn=output_fn, want_gram=want_gram,
                                          want_second=want_second, budget=budget))
            except (RuntimeError, NotImplementedError):  # an operation without a batching rule
                loop |= set(vm)
        if loop:
            ln = [n for n in fallback_names if n in loop]
            fb.update(_loop_stats(model, loss_fn, x, y, ln, output_fn=output_fn, want_gram=want_gram,
                                  want_second=want_second, seed=seed, offset=offset, random=False)[0])
        for n, entry in fb.items():
            param_sq[n] = entry["sq"]
            if want_second:
                second[n] = entry["second"]
            if want_gram:
                gram += entry["gram"]
    param_sq = {n: param_sq[n] for n in names}
    second_out = {n: second[n] for n in names} if want_second else None
    return float(loss.detach()), param_sq, mean_grad, second_out, gram, fallback_names


def per_example_stats(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    gram: bool = False,
    second_moment: bool = False,
    method: Method = "auto",
    chunk_elements: int = CHUNK_ELEMENTS,
    force_fallback: tuple[str, ...] = (),
    mode: str = "eval",
    seed: int = 0,
    output_fn=None,
    batch_size_fn=None,
    indices=None,
) -> PerExampleStats:
    """Per-example gradient statistics over ``data`` (any layout; a DataLoader is read once).

    Args:
        gram: also return the Gram matrix ⟨g_i, g_j⟩ (memory O(N²), and O(N²·T²) for
            sequence/conv layers under the Gram trick).
        second_moment: also return (1/N) Σ_i g_i ⊙ g_i per parameter (for signal-to-noise ratios).
        method: for layers applied at T > 1 positions: ``gram`` (Gram trick), ``materialize``
            (per-example weight gradients of one layer, chunked) or ``auto`` (the one with fewer
            operations: the Gram trick when T·(d_in + d_out) < d_in·d_out and no second moments).
        chunk_elements: bound on the elements of any chunk of per-example intermediates.
        force_fallback: module names to compute with the vmap fallback (testing, or opting out).
        mode, seed: see the module docstring (train-mode BatchNorm is refused; dropout masks from seed).
        output_fn, batch_size_fn, indices: data layouts (:mod:`genlab.probes._setup`).
    """
    if method not in ("auto", "gram", "materialize"):
        raise InputError(f"method: got {method!r}; allowed: 'auto', 'gram', 'materialize'")
    with probe_call(model, loss_fn, data, mode=mode, seed=seed, output_fn=output_fn, batch_size_fn=batch_size_fn,
                    indices=indices, per_example="per-example gradients (per_example_stats, coherence, SNR, GraNd)") as setup:
        m = setup.model
        data_ = setup.data
        if gram and len(data_.batches) > 1:
            data_.batches, data_.sizes = [data_.whole()], [data_.n]
        n_total = 0
        loss_sum = 0.0
        sq_parts: dict[str, list[torch.Tensor]] = {}
        grad_sum: dict[str, torch.Tensor] = {}
        second_sum: dict[str, torch.Tensor] | None = {} if second_moment else None
        gram_out = None
        fallback: list[str] = []
        for (x, y), B in zip(data_.batches, data_.sizes):
            loss, psq, mg, sec, gm, fb = _batch_stats(
                m, loss_fn, x, y, output_fn=output_fn, want_gram=gram, want_second=second_moment, method=method,
                budget=int(chunk_elements), force_fallback=set(force_fallback), loop_all=setup.random, seed=seed,
                offset=n_total,
            )
            fallback = fb
            n_total += B
            loss_sum += loss * B
            for n, v in psq.items():
                sq_parts.setdefault(n, []).append(v)
            for n, g in mg.items():  # (one batch: its mean gradient as it is)
                grad_sum[n] = grad_sum[n] + g * B if n in grad_sum else (g if len(data_.sizes) == 1 else g * B)
            if second_sum is not None and sec is not None:
                for n, s_ in sec.items():
                    second_sum[n] = second_sum[n] + s_ if n in second_sum else s_
            gram_out = gm
        info = setup.info()
    param_sq = {n: (v[0] if len(v) == 1 else torch.cat(v)) for n, v in sq_parts.items()}
    sq_norms = torch.stack(list(param_sq.values())).sum(0)
    return PerExampleStats(
        n=n_total,
        loss=loss_sum / n_total,
        sq_norms=sq_norms,
        param_sq_norms=param_sq,
        mean_grad=grad_sum if len(data_.sizes) == 1 else {n: g / n_total for n, g in grad_sum.items()},
        second_moment=None if second_sum is None else {n: s / n_total for n, s in second_sum.items()},
        gram=gram_out,
        fallback=fallback,
        indices=data_.indices,
        info=info,
    )


def layer_of(param_name: str) -> str:
    """The module a parameter belongs to (``net.0.weight`` → ``net.0``)."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else ""
