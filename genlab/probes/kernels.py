"""Kernel-regime probes: the empirical neural tangent kernel and how far training moves it.

- :func:`empirical_ntk` — Θ(x, x') = J(x) J(x')ᵀ with J = ∂f/∂θ (Jacot, Gabriel & Hongler 2018,
  "Neural tangent kernel: convergence and generalization in neural networks", arXiv 1806.07572,
  Def. of Θ in §4), computed by Jacobian contractions over chunks of inputs so memory stays bounded;
  each chunk's Jacobian by ``vmap`` over its examples of ``jacrev`` of one example (cost linear in
  the chunk size).
- :func:`kernel_distance` — 1 − ⟨K0, K1⟩_F / (‖K0‖_F ‖K1‖_F) (Fort, Dziugaite, Paul, Kharaghani,
  Roy & Ganguli 2020, "Deep learning versus kernel learning", arXiv 2010.15110, §3 "kernel distance").
- :func:`kernel_alignment` — centered kernel–target alignment (Cortes, Mohri & Rostamizadeh 2012,
  "Algorithms for learning kernels based on centered alignment", JMLR 13, Def. 1–2).
- :func:`relative_weight_change` — ‖θ − θ0‖ / ‖θ0‖, the laziness measure of Chizat, Oyallon & Bach
  2019 ("On lazy training in differentiable programming", arXiv 1812.07956, §1–2).

The model is seen as a pure function of its trainable parameters (:class:`FlatModel`) and never
modified. :func:`empirical_ntk` takes ``mode`` (default ``"eval"``): the NTK is a kernel between
examples, so train-mode BatchNorm (which couples the examples of a chunk, making Θ depend on the
memory setting) is refused; train-mode dropout draws example i's masks from (``seed``, i).
"""

from __future__ import annotations

from typing import Literal, Mapping

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap
from torch.utils._pytree import tree_map

from genlab.errors import InputError
from genlab.probes._functional import FlatModel
from genlab.probes._setup import as_args, first_tensor, is_tensor_tree, logits, probe_call, seeded, take

ArrayLike = torch.Tensor | np.ndarray

__all__ = ["empirical_ntk", "kernel_distance", "kernel_alignment", "relative_weight_change"]


def _jacobian(fm: FlatModel, params: dict[str, torch.Tensor], x, m: int, random: bool = False, seed: int = 0,
              start: int = 0, per_example: bool = True) -> list[torch.Tensor]:
    """J as one (m, c, p) block per trainable parameter: derivative of each of the c outputs at
    each of the m inputs.

    Default: ``vmap`` over the examples of ``jacrev`` of one example's outputs, so each backward
    runs over one example (cost linear in m; ``jacrev`` of the whole chunk would backpropagate
    every output through all m examples: cost m²). ``per_example=False`` (the model has an
    operation without a vmap batching rule): ``jacrev`` of the whole chunk. With random
    operations, example i's draw from (seed, start + i), one example at a time. Blocks per
    parameter (not one flat (m, c, P) tensor): no copy of the whole Jacobian into one buffer."""

    def f(p: dict[str, torch.Tensor], xx=x, k: int = m) -> torch.Tensor:
        return _forward(fm, p, xx).reshape(k, -1)

    def blocks(jac: dict[str, torch.Tensor], k: int) -> list[torch.Tensor]:
        return [jac[n].reshape(k, jac[n].shape[1], -1) for n in fm.names]

    if random:
        rows = []
        for i in range(m):
            with seeded(seed, start + i):
                rows.append(blocks(jacrev(lambda p: f(p, take(x, i), 1))(params), 1))
        return [torch.cat(parts) for parts in zip(*rows)]
    if not per_example:
        return blocks(jacrev(f)(params), m)

    def one(p: dict[str, torch.Tensor], xi) -> torch.Tensor:
        return _forward(fm, p, tree_map(lambda v: v.unsqueeze(0), xi)).reshape(-1)

    return blocks(vmap(jacrev(one), in_dims=(None, 0))(params, x), m)


def _forward(fm: FlatModel, params: dict[str, torch.Tensor], x) -> torch.Tensor:
    """The model's output (``output_fn`` applied) at trainable parameters ``params``."""
    buffers = {n: b.clone() for n, b in fm.buffers.items()}
    out = functional_call(fm.model, ({**fm.frozen, **params}, buffers), as_args(x))
    return logits(out, fm.output_fn) if fm.output_fn is not None else out


def _inputs(x, name: str):
    """Inputs of any layout (a DataLoader or (inputs, targets) data: its inputs, targets ignored)."""
    if isinstance(x, torch.utils.data.DataLoader) or (isinstance(x, list) and x and isinstance(x[0], tuple)):
        from genlab.probes._setup import load_data

        return load_data(x).whole()[0]
    if not is_tensor_tree(x):
        raise InputError(f"{name}: got {type(x).__name__}; inputs are a tensor, a tuple/list or mapping of tensors, or a DataLoader")
    return x


def empirical_ntk(
    model: torch.nn.Module,
    x1,
    x2=None,
    *,
    outputs: Literal["trace", "full"] = "trace",
    max_elements: int = 2**24,
    mode: str = "eval",
    seed: int = 0,
    output_fn=None,
    batch_size_fn=None,
) -> torch.Tensor:
    """The empirical NTK Θ(x1_a, x2_b) = Σ_p ∂f(x1_a)/∂θ_p · ∂f(x2_b)/∂θ_p at the current θ.

    Jacot et al. 2018 (arXiv 1806.07572), §4: Θ = Σ_p ∂_θp F ⊗ ∂_θp F.

    Signature: ``(model, x1, x2)`` rather than the probes' ``(model, loss_fn, data)`` because
    the NTK is a kernel of the model's outputs between two sets of inputs — no loss, no targets.

    Args:
        x1, x2: inputs of any layout (tensor, tuple/list or mapping of tensors; first axis indexes
            examples, or ``batch_size_fn``), or a DataLoader / list of (inputs, targets) pairs whose
            inputs are used; ``x2=None`` means ``x2 = x1``.
        output_fn: maps the model's output (a tuple, a mapping) to the tensor of outputs.
        mode, seed: see the module docstring.
        outputs: for a model with c > 1 outputs, ``"full"`` returns the (n1, n2, c, c) kernel
            Θ_{ab,kl} = ⟨∂f_k(x1_a)/∂θ, ∂f_l(x2_b)/∂θ⟩, ``"trace"`` its trace Σ_k Θ_{ab,kk}
            (shape (n1, n2)). A scalar-output model (outputs (n,) or (n, 1)) gives (n1, n2) either way.
        max_elements: bound on the number of Jacobian entries held at once: all Jacobians when
            (n1 + n2)·c·P fit (each computed once), else a row block of r and a column block of q
            examples with (r + q)·c·P ≤ max_elements (at least one each; the columns are
            recomputed for every row block, so a larger bound is faster).

    Returns a tensor in the model's dtype.
    """
    if outputs not in ("trace", "full"):
        raise InputError(f"outputs: got {outputs!r}; allowed: 'trace', 'full'")
    if not (isinstance(max_elements, int) and max_elements >= 1):
        raise InputError(f"max_elements: got {max_elements!r}; must be an integer >= 1")
    x1 = _inputs(x1, "x1")
    symmetric = x2 is None
    x2 = x1 if x2 is None else _inputs(x2, "x2")
    size = batch_size_fn if batch_size_fn is not None else (lambda x: int(first_tensor(x).shape[0]))
    n1, n2 = int(size(x1)), int(size(x2))
    dummy = torch.zeros(n1)
    with probe_call(model, None, (x1, dummy), mode=mode, seed=seed, output_fn=output_fn, batch_size_fn=batch_size_fn,
                    per_example="empirical_ntk", need_loss=False) as s:
        return _ntk(FlatModel(s.model, output_fn), x1, x2, n1, n2, symmetric, outputs, max_elements, s.random, seed,
                    per_example=batch_size_fn is None)


def _ntk(fm, x1, x2, n1, n2, symmetric, outputs, max_elements, random, seed, per_example=True) -> torch.Tensor:
    params = {n: p.detach() for n, p in fm.model.named_parameters() if n in set(fm.names)}
    dtype = next(iter(params.values())).dtype if params else torch.get_default_dtype()
    # per-example Jacobians need every input leaf to index examples on axis 0 (no batch_size_fn)
    # and vmap batching rules for every operation; otherwise jacrev of each whole chunk
    vmappable = [per_example]

    def _jac(xs, m: int, start: int) -> list[torch.Tensor]:
        if vmappable[0] and not random:
            try:
                return _jacobian(fm, params, xs, m, random, seed, start)
            except (RuntimeError, NotImplementedError):  # an operation without a batching rule
                vmappable[0] = False
        return _jacobian(fm, params, xs, m, random, seed, start, per_example=False)

    with torch.no_grad(), seeded(seed, 0):
        c = int(_forward(fm, params, take(x1, 0)).reshape(1, -1).shape[1])
    scalar = c == 1
    per_example = c * fm.size
    # All Jacobians are kept when they fit in the budget (each computed once). Otherwise a row
    # block of r examples is held while the columns stream past in blocks of q (r + q examples'
    # Jacobians at once): the columns are recomputed once per row block, so r is made large
    # (q = a quarter of what fits, enough to keep the per-call overhead of jacrev small); for
    # Θ(x, x) only the blocks right of the diagonal are computed, the rest by symmetry.
    fit = max_elements // per_example
    cache_all = (n1 + (0 if symmetric else n2)) <= fit
    q = max(1, fit // 4)
    r = max(n1, n2) if cache_all else max(1, fit - q)
    full = torch.empty(n1, n2, c, c, dtype=dtype) if (outputs == "full" and not scalar) else None
    red = torch.empty(n1, n2, dtype=dtype) if full is None else None

    def put(rows: slice, cols: slice, ja: list[torch.Tensor], jb: list[torch.Tensor], mirror: bool) -> None:
        if full is not None:
            blk = sum(torch.einsum("akp,blp->abkl", u, v) for u, v in zip(ja, jb))
            full[rows, cols] = blk
            if mirror:  # Θ(x_b, x_a) = Θ(x_a, x_b)ᵀ over the output indices
                full[cols, rows] = blk.permute(1, 0, 3, 2)
        else:  # Σ_k Σ_p J_a,kp J_b,kp: one matrix product per parameter block
            blk = sum(u.reshape(u.shape[0], -1) @ v.reshape(v.shape[0], -1).T for u, v in zip(ja, jb))
            red[rows, cols] = blk
            if mirror:
                red[cols, rows] = blk.T

    other = 0 if symmetric else 1 << 40  # random operations: x2's draws apart from x1's
    if cache_all:
        ja = _jac(x1, n1, 0)
        put(slice(0, n1), slice(0, n2), ja, ja if symmetric else _jac(x2, n2, other), False)
        return full if full is not None else red
    for i in range(0, n1, r):
        rows = slice(i, min(i + r, n1))
        ja = _jac(take(x1, rows), rows.stop - i, i)
        if symmetric:
            put(rows, rows, ja, ja, False)
        for j in range(rows.stop if symmetric else 0, n2, q):
            cols = slice(j, min(j + q, n2))
            put(rows, cols, ja, _jac(take(x2, cols), cols.stop - j, other + j), symmetric)
    return full if full is not None else red


def _as_numpy(k: ArrayLike) -> np.ndarray:
    if isinstance(k, torch.Tensor):
        return k.detach().cpu().numpy()
    return np.asarray(k)


def kernel_distance(k0: ArrayLike, k1: ArrayLike) -> float:
    """1 − ⟨K0, K1⟩_F / (‖K0‖_F ‖K1‖_F): 0 for kernels equal up to scale, up to 2.

    Fort et al. 2020 (arXiv 2010.15110, §3, "kernel distance"). Any shapes, equal."""
    a, b = _as_numpy(k0).astype(np.float64), _as_numpy(k1).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"kernels must have the same shape, got {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("kernel_distance is undefined for a zero kernel")
    return float(1.0 - np.sum(a * b) / (na * nb))


def kernel_alignment(k: ArrayLike, y: ArrayLike) -> float:
    """Centered kernel–target alignment ⟨K_c, (yyᵀ)_c⟩_F / (‖K_c‖_F ‖(yyᵀ)_c‖_F), K_c = HKH,
    H = I − 11ᵀ/n (Cortes, Mohri & Rostamizadeh 2012, JMLR 13, Def. 1 and 2).

    ``y`` is (n,) or (n, c) (e.g. one-hot labels: the target kernel is YYᵀ). In [−1, 1]."""
    kk = _as_numpy(k).astype(np.float64)
    yy = _as_numpy(y).astype(np.float64)
    if yy.ndim == 1:
        yy = yy[:, None]
    n = kk.shape[0]
    if kk.shape != (n, n) or yy.shape[0] != n:
        raise ValueError(f"need K of shape (n, n) and y with n rows, got {kk.shape} and {yy.shape}")
    kc = kk - kk.mean(0, keepdims=True) - kk.mean(1, keepdims=True) + kk.mean()
    yc = yy - yy.mean(0, keepdims=True)
    t = yc @ yc.T
    nk, nt = np.linalg.norm(kc), np.linalg.norm(t)
    if nk == 0 or nt == 0:
        raise ValueError("kernel_alignment is undefined when the centered kernel or target is zero")
    return float(np.sum(kc * t) / (nk * nt))


def relative_weight_change(
    model: torch.nn.Module, init_state: Mapping[str, torch.Tensor] | torch.Tensor
) -> float:
    """‖θ − θ0‖₂ / ‖θ0‖₂ over the trainable parameters (Chizat, Oyallon & Bach 2019, arXiv 1812.07956:
    lazy training is when this stays small while the loss falls).

    ``init_state`` is a ``state_dict``-like mapping (parameters missing from it are an error)
    or the flat vector of :meth:`FlatModel.flat` taken at initialization."""
    fm = FlatModel(model)
    now = fm.flat()
    if isinstance(init_state, torch.Tensor):
        start = init_state.detach().reshape(-1).to(now.dtype)
        if start.numel() != now.numel():
            raise ValueError(f"init_state has {start.numel()} entries, the model {now.numel()} trainable ones")
    else:
        missing = [n for n in fm.names if n not in init_state]
        if missing:
            raise ValueError(f"init_state lacks parameters {missing}")
        start = torch.cat([init_state[n].detach().reshape(-1).to(now.dtype) for n in fm.names])
    denom = float(torch.linalg.vector_norm(start))
    if denom == 0:
        raise ValueError("relative_weight_change is undefined when θ0 = 0")
    return float(torch.linalg.vector_norm(now - start)) / denom
