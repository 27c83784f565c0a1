"""Curvature of a parameter block: the diagonal block H_BB of the Hessian (or GGN) for a subset B
of the trainable parameters, and the split of a model into its layers.

H_BB is the matrix of the loss as a function of the block's parameters alone, the others held
fixed; its top eigenvalue is the block's sharpness and its trace the block's share of tr(H)
(Σ_B tr(H_BB) = tr(H)). By Cauchy's interlacing theorem λ_max(H_BB) ≤ λ_max(H). Per-layer
Hessian eigenvalues and traces are what PyHessian users ask for (Yao, Gholami, Keutzer &
Mahoney 2020, "PyHessian: neural networks through the lens of the Hessian", arXiv 1912.07145,
§3 computes them layer by layer the same way: products with the full Hessian, restricted).

A product with H_BB embeds v_B into a zero vector of full length, multiplies by H and keeps the
block's entries: one full Hessian-vector product per block product.

``params`` (of the curvature probes) selects one block: a parameter or module name (a module
name selects all trainable parameters under it), an ``nn.Module`` or ``nn.Parameter`` of the
model, or a list of these (their union). ``per_layer=True`` splits the selection (default: all
trainable parameters) by the module that owns each parameter; the block of the parameters owned
by the root module is called ``"(root)"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import nn

from genlab.errors import InputError, did_you_mean

ParamSpec = Union[str, nn.Module, nn.Parameter, Sequence[Union[str, nn.Module, nn.Parameter]]]
ROOT = "(root)"


def _one(model: nn.Module, spec: Any, trainable: list[str], arg: str) -> list[str]:
    named = dict(model.named_parameters())
    if isinstance(spec, nn.Parameter):
        hits = [n for n, p in named.items() if p is spec]
        if not hits:
            raise InputError(f"{arg}: a parameter that is not one of the model's")
        names = hits
    elif isinstance(spec, nn.Module):
        prefix = next((n for n, m in model.named_modules() if m is spec), None)
        if prefix is None:
            raise InputError(f"{arg}: module {type(spec).__name__} is not a submodule of the model")
        names = [n for n in named if prefix == "" or n.startswith(prefix + ".")]
    elif isinstance(spec, str):
        if spec in named:
            names = [spec]
        else:
            names = [n for n in named if spec == "" or n.startswith(spec + ".")]
            if not names:
                choices = list(named) + [n for n, _ in model.named_modules() if n]
                raise InputError(f"{arg}: no parameter or module named {spec!r};{did_you_mean(spec, choices)} "
                                 f"parameters: {', '.join(named)}")
    else:
        raise InputError(f"{arg}: got {type(spec).__name__}; allowed: a parameter or module name, an nn.Module, "
                         "an nn.Parameter, or a list of these")
    kept = [n for n in names if n in trainable]
    if not kept:
        raise InputError(f"{arg}: {spec if isinstance(spec, str) else type(spec).__name__!s} selects no trainable "
                         "parameter (requires_grad=False)")
    return kept


def select_parameters(model: nn.Module, params: ParamSpec | None, arg: str = "params") -> list[str]:
    """The trainable parameter names ``params`` selects, in ``model.named_parameters()`` order."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if params is None:
        return trainable
    specs = [params] if isinstance(params, (str, nn.Module, nn.Parameter)) else list(params)
    if not specs:
        raise InputError(f"{arg}: got an empty list; give parameter/module names or modules")
    chosen: set[str] = set()
    for s in specs:
        chosen.update(_one(model, s, trainable, arg))
    return [n for n in trainable if n in chosen]


def layer_blocks(model: nn.Module, params: ParamSpec | None = None) -> dict[str, list[str]]:
    """The selected trainable parameters grouped by the module that owns them (name → parameter names)."""
    out: dict[str, list[str]] = {}
    for n in select_parameters(model, params):
        owner = n.rpartition(".")[0] or ROOT
        out.setdefault(owner, []).append(n)
    return out


def flat_indices(names: list[str], numels: list[int], chosen: list[str]) -> torch.Tensor:
    """Positions of the ``chosen`` parameters' entries in the flat vector of ``names``/``numels``."""
    keep = set(chosen)
    parts, start = [], 0
    for n, k in zip(names, numels):
        if n in keep:
            parts.append(torch.arange(start, start + k))
        start += k
    return torch.cat(parts)


class BlockOperator:
    """The diagonal block H_BB of a curvature operator (``op.fm`` names its flat layout): products
    and counters as :class:`~genlab.probes._operators.CurvatureOperator`'s."""

    def __init__(self, op: Any, names: list[str]):
        self.op = op
        self.names = list(names)
        self.index = flat_indices(op.fm.names, op.fm.numels, self.names).to(op.device)
        self.size, self.dtype, self.device = int(self.index.numel()), op.dtype, op.device

    @property
    def matvecs(self) -> int:
        return self.op.matvecs

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(self.op.size, dtype=self.dtype, device=self.device)
        full[self.index] = v.to(dtype=self.dtype, device=self.device)
        return self.op.matvec(full)[self.index]

    __matmul__ = matvec

    def matmat(self, vs: torch.Tensor, block: int = 1) -> torch.Tensor:
        full = torch.zeros(self.op.size, vs.shape[1], dtype=self.dtype, device=self.device)
        full[self.index] = vs.to(dtype=self.dtype, device=self.device)
        return self.op.matmat(full, block=block)[self.index]


@dataclass
class PerBlock:
    """One probe result per parameter block (``per_layer=True``): ``results[block]``, the block's
    parameter names and sizes, and ``scalars()`` as ``"<scalar>/<block>"``."""

    results: dict[str, Any]
    parameters: dict[str, list[str]]
    sizes: dict[str, int]
    info: Any = field(default=None, repr=False)

    def __getitem__(self, block: str) -> Any:
        return self.results[block]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def items(self):
        return self.results.items()

    def scalars(self) -> dict[str, float]:
        return {f"{k}/{b}": v for b, r in self.results.items() for k, v in r.scalars().items()}


def on_blocks(op: Any, model: nn.Module, params: ParamSpec | None, per_layer: bool,
              fn: Callable[[Any], Any]) -> Any:
    """``fn`` on the operator restricted as ``params``/``per_layer`` ask: ``fn(op)`` unchanged when
    neither is given, ``fn(H_BB)`` for one selection, a :class:`PerBlock` of ``fn`` per layer."""
    if not isinstance(per_layer, bool):
        raise InputError(f"per_layer: got {per_layer!r}; must be True or False")
    if params is None and not per_layer:
        return fn(op)
    if not per_layer:
        return fn(BlockOperator(op, select_parameters(model, params)))
    blocks = layer_blocks(model, params)
    results, sizes = {}, {}
    for b, names in blocks.items():
        bop = BlockOperator(op, names)
        results[b], sizes[b] = fn(bop), bop.size
    return PerBlock(results, blocks, sizes)

