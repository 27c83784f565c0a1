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

Any other parameterized module (LayerNorm, GroupNorm, Embedding, grouped convolutions,
MultiheadAttention, custom layers, a module called twice, parameters shared or tied by identity)
is handled by a chunked ``torch.func.vmap`` of per-example gradients restricted to that module's
parameters; where vmap cannot go (``nn.GRU``/``nn.LSTM``/``nn.RNN`` kernels, any operation without
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

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils._pytree import tree_map

from genlab.errors import InputError
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
    """``linear`` / ``conv`` for modules whose per-example statistics follow from (input, output-grad)."""
    if type(module) is nn.Linear:
        return "linear"
    if type(module) in (nn.Conv1d, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros":
            return None
        if isinstance(module.padding, str) and module.padding != "valid":
            return None
        return "conv"
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
        if want_gram:
            out["bias_gram"] = gb @ gb.T
        if want_second:
            out["bias_second"] = gb.pow(2).sum(0)

    if T == 1:
        a, g = A[:, 0], G[:, 0]
        out["weight_sq"] = a.pow(2).sum(1) * g.pow(2).sum(1)
        if want_gram:
            out["weight_gram"] = (a @ a.T) * (g @ g.T)
        if want_second:
            out["weight_second"] = g.pow(2).T @ a.pow(2)
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
        for s in _chunks(B, din * dout, budget):
            W = torch.einsum("bto,bti->boi", G[s], A[s])  # per-example weight gradients of this chunk
            sq[s] = W.pow(2).sum((1, 2))
            if second is not None:
                second += W.pow(2).sum(0)
            if flat is not None:
                flat.append(W.reshape(W.shape[0], -1))
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
    v = torch.randn(A.shape[-1], generator=gen, dtype=A.dtype)
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
    fast: dict[str, tuple[nn.Module, str]] = {}
    for mname, mod in model.named_modules():
        kind = _fast_kind(mod)
        if kind is None or mname in force_fallback:
            continue
        pnames = [n for n, (m, _, _) in owner.items() if m == mname]
        if any(n in shared or n != (f"{mname}.{owner[n][2]}" if mname else owner[n][2]) for n in pnames):
            continue
        roles = {owner[n][2] for n in pnames}
        if "weight" in roles and roles <= {"weight", "bias"}:
            fast[mname] = (mod, kind)

    captured: dict[str, dict[str, list[torch.Tensor]]] = {m: {"a": [], "g": []} for m in fast}

    def make_hook(mname: str):
        def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            captured[mname]["a"].append(inputs[0].detach())
            if output.requires_grad:
                output.register_hook(lambda g: captured[mname]["g"].append(g.detach()))

        return hook

    handles = [mod.register_forward_hook(make_hook(m)) for m, (mod, _) in fast.items()]
    try:
        with torch.enable_grad():
            loss = loss_fn(_out(forward_with_copies(model, x), output_fn), y)
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    mean_grad = {n: (torch.zeros_like(p) if g is None else g.detach()) for (n, p), g in zip(named, grads)}

    # modules called more than once go to the fallback; so do modules whose parameters are also
    # used outside their own forward (tied weights): found by checking Σ_i g_i from (A, G)
    # against the autograd gradient along a random direction
    reused = {m for m, c in captured.items() if len(c["a"]) != 1 or len(c["g"]) > 1}
    positions: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = {}
    probe = torch.Generator().manual_seed(0)
    for mname, (mod, kind) in fast.items():
        if mname in reused:
            continue
        weight_name = f"{mname}.weight" if mname else "weight"
        if not captured[mname]["g"]:  # the loss does not reach this layer's output
            positions[mname] = None
            if float(mean_grad[weight_name].abs().max()) > 0:
                reused.add(mname)
            continue
        # undo the 1/B of the mean loss: per-example output-gradients of the batch-of-one losses
        A, G = _as_positions(mod, kind, captured[mname]["a"][0], captured[mname]["g"][0] * B)
        bias_name = f"{mname}.bias" if mname else "bias"
        bias_grad = mean_grad.get(bias_name) if bias_name in owner else None
        if not _consistent(A, G, mean_grad[weight_name].reshape(G.shape[-1], A.shape[-1]), bias_grad, B, probe):
            reused.add(mname)
            continue
        positions[mname] = (A, G)
    fast_params = {n for n, (m, _, _) in owner.items() if m in fast and m not in reused}
    fallback_names = [n for n in names if n not in fast_params]

    param_sq: dict[str, torch.Tensor] = {}
    second: dict[str, torch.Tensor] = {}
    gram = torch.zeros(B, B, dtype=loss.dtype) if want_gram else None
    for mname, (mod, kind) in fast.items():
        if mname in reused:
            continue
        weight_name = f"{mname}.weight" if mname else "weight"
        bias_name = f"{mname}.bias" if mname else "bias"
        has_bias = bias_name in fast_params
        if positions[mname] is None:
            for n in (weight_name, bias_name):
                if n in fast_params:
                    param_sq[n] = torch.zeros(B, dtype=loss.dtype)
                    if want_second:
                        second[n] = torch.zeros_like(mean_grad[n])
            continue
        A, G = positions[mname]
        st = _layer_stats(A, G, has_bias, want_gram=want_gram, want_second=want_second, method=method, budget=budget)
        param_sq[weight_name] = st["weight_sq"]
        if want_second:
            second[weight_name] = st["weight_second"].reshape(mod.weight.shape)
        if want_gram:
            gram += st["weight_gram"]
        if has_bias:
            param_sq[bias_name] = st["bias_sq"]
            if want_second:
                second[bias_name] = st["bias_second"]
            if want_gram:
                gram += st["bias_gram"]
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
            for n, g in mg.items():
                grad_sum[n] = grad_sum[n] + g * B if n in grad_sum else g * B
            if second_sum is not None and sec is not None:
                for n, s_ in sec.items():
                    second_sum[n] = second_sum[n] + s_ if n in second_sum else s_
            gram_out = gm
        info = setup.info()
    param_sq = {n: torch.cat(v) for n, v in sq_parts.items()}
    sq_norms = torch.stack(list(param_sq.values())).sum(0)
    return PerExampleStats(
        n=n_total,
        loss=loss_sum / n_total,
        sq_norms=sq_norms,
        param_sq_norms=param_sq,
        mean_grad={n: g / n_total for n, g in grad_sum.items()},
        second_moment=None if second_sum is None else {n: s / n_total for n, s in second_sum.items()},
        gram=gram_out,
        fallback=fallback,
        indices=data_.indices,
        info=info,
    )


def layer_of(param_name: str) -> str:
    """The module a parameter belongs to (``net.0.weight`` → ``net.0``)."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else ""
