"""What every probe does before it measures: read the data, check the arguments, set the mode.

One place for all probes, so that every probe accepts the same layouts and refuses the same
mistakes with the same one-line messages (:class:`genlab.errors.InputError`, a ``ValueError``).

Data layouts
    ``data`` is an ``(inputs, targets)`` pair, an iterable of such pairs, or a ``DataLoader``
    (used whole: iterated once per probe call, its batches kept for the call — within
    :data:`MAX_DATA_BYTES` — so no product restarts its workers or sees another shuffle). Inputs
    are a tensor (``model(x)``), a tuple/list of tensors (``model(*x)``) or a mapping of tensors
    (``model(x)``, one argument); the batch size is the first axis of the first tensor, or
    ``batch_size_fn(inputs)``. The model's output may be a tensor or anything ``output_fn`` maps
    to one (a tuple's logits, a mapping's ``"logits"``); ``loss_fn`` gets ``output_fn(output)``.
    Examples carry dataset indices when the data says so: an explicit ``indices`` argument, or a
    ``DataLoader`` over a map-style dataset (the indices its sampler drew).

Modes
    ``mode="eval"`` puts every submodule in eval mode for the measurement, ``"train"`` in train
    mode, ``"as-is"`` leaves them; every submodule's flag is restored afterwards, also on error.
    In train mode random operations (dropout) are drawn from the probe's ``seed`` — the same draw
    for every evaluation of one batch within a call (:func:`seeded`) — and never from the user's
    global random stream; BatchNorm uses batch statistics, its running statistics are updated
    only on copies.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch
from torch import nn

from genlab.errors import InputError

Mode = Literal["eval", "train", "as-is"]
MODES = ("eval", "train", "as-is")

#: bound on the bytes of data a probe keeps in memory when it reads an iterable or DataLoader
MAX_DATA_BYTES = 2 * 1024**3


@dataclass
class ProbeInfo:
    """What a measurement was made on: mode, dtype, device, number of examples, and notes
    (e.g. "compiled model measured through its original module")."""

    mode: str
    dtype: str
    device: str
    n: int
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# inputs and outputs of any layout


def is_tensor_tree(x: Any) -> bool:
    """A tensor, or a tuple/list/mapping of tensors (the accepted input layouts)."""
    if isinstance(x, torch.Tensor):
        return True
    if isinstance(x, (tuple, list)) and x:
        return all(isinstance(v, torch.Tensor) for v in x)
    if isinstance(x, Mapping) and x:
        return all(isinstance(v, torch.Tensor) for v in x.values())
    return False


def first_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, Mapping):
        return next(iter(x.values()))
    return x[0]


def as_args(inputs: Any) -> tuple:
    """Positional arguments of the model's forward: ``(x,)``, ``(*x)`` for a tuple/list, ``(mapping,)``."""
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    return (inputs,)


def take(x: Any, idx: torch.Tensor | slice | int) -> Any:
    """Examples ``idx`` of inputs or targets of any accepted layout (an int keeps a batch of one)."""
    if isinstance(idx, int):
        idx = slice(idx, idx + 1)
    if isinstance(x, torch.Tensor):
        return x[idx]
    if isinstance(x, Mapping):
        return {k: v[idx] for k, v in x.items()}
    return type(x)(v[idx] for v in x)


def cat(parts: list[Any]) -> Any:
    """Concatenate inputs or targets of one layout along the example axis."""
    x0 = parts[0]
    if isinstance(x0, torch.Tensor):
        return torch.cat(parts)
    if isinstance(x0, Mapping):
        return {k: torch.cat([p[k] for p in parts]) for k in x0}
    return type(x0)(torch.cat([p[i] for p in parts]) for i in range(len(x0)))


def nbytes(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, Mapping):
        return sum(nbytes(v) for v in x.values())
    if isinstance(x, (tuple, list)):
        return sum(nbytes(v) for v in x)
    return 0


def logits(out: Any, output_fn: Callable | None, what: str = "this probe") -> torch.Tensor:
    """The model's output as one tensor (``output_fn(out)`` when given); one line if it is not."""
    if output_fn is not None:
        out = output_fn(out)
    if not isinstance(out, torch.Tensor):
        raise InputError(
            f"output_fn: the model returns {type(out).__name__}, {what} needs a tensor of outputs; "
            "pass output_fn (e.g. lambda out: out[0]) to pick the logits"
        )
    return out


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class Data:
    """The examples of one probe call: batches of ``(inputs, targets)`` in the order read, their
    sizes, and the dataset index of every example when known."""

    batches: list[tuple[Any, Any]]
    sizes: list[int]
    indices: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return sum(self.sizes)

    def weights(self) -> list[float]:
        """Batch sizes over the total: turn per-batch mean losses into the mean over all examples."""
        return [s / self.n for s in self.sizes]

    def whole(self) -> tuple[Any, Any]:
        """All examples as one batch."""
        if len(self.batches) == 1:
            return self.batches[0]
        return cat([b[0] for b in self.batches]), cat([b[1] for b in self.batches])


_LAYOUTS = "an (inputs, targets) pair, an iterable of such pairs, or a DataLoader"


def _pair(item: Any, where: str) -> tuple[Any, Any]:
    if isinstance(item, (tuple, list)) and len(item) == 2 and is_tensor_tree(item[0]):
        return item[0], item[1]
    raise InputError(f"data: {where} is {_describe(item)}; allowed: {_LAYOUTS} (inputs a tensor, tuple or mapping of tensors)")


def _describe(x: Any) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} ({', '.join(type(v).__name__ for v in list(x)[:3])})"
    return f"a {type(x).__name__}"


def _batch_size(inputs: Any, batch_size_fn: Callable | None) -> int:
    if batch_size_fn is not None:
        return int(batch_size_fn(inputs))
    t = first_tensor(inputs)
    if t.ndim == 0:
        raise InputError("data: inputs are a 0-d tensor; the first axis must index examples (or pass batch_size_fn)")
    return int(t.shape[0])


def _loader_batches(loader: torch.utils.data.DataLoader) -> tuple[list, list | None]:
    """Batches of a DataLoader read once in this process (no worker processes started), with the
    dataset indices of a map-style dataset; the user's global random stream is not consumed."""
    ds = loader.dataset
    bs = loader.batch_sampler
    if bs is not None and hasattr(ds, "__getitem__") and hasattr(ds, "__len__") and not isinstance(
        ds, torch.utils.data.IterableDataset
    ):
        with torch.random.fork_rng(devices=[]):
            index_batches = [list(b) for b in bs]
        out = [loader.collate_fn([ds[i] for i in b]) for b in index_batches]
        return out, index_batches
    with torch.random.fork_rng(devices=[]):
        return list(loader), None


def load_data(
    data: Any,
    *,
    batch_size_fn: Callable | None = None,
    indices: Any = None,
    max_bytes: int | None = None,
) -> Data:
    """``data`` in any accepted layout as a :class:`Data`; one line naming ``data`` if it is not.
    At most ``max_bytes`` (default :data:`MAX_DATA_BYTES`) of tensors are kept."""
    if max_bytes is None:
        max_bytes = MAX_DATA_BYTES
    if callable(data) and not isinstance(data, (torch.utils.data.DataLoader, nn.Module)) and not hasattr(data, "__iter__"):
        raise InputError(
            f"data: got a function ({getattr(data, '__name__', type(data).__name__)}); the arguments are "
            f"(model, loss_fn, data) — data is {_LAYOUTS}"
        )
    if isinstance(data, nn.Module):
        raise InputError(f"data: got a module ({type(data).__name__}); the arguments are (model, loss_fn, data)")
    loader_idx = None
    if isinstance(data, (tuple, list)) and len(data) == 2 and is_tensor_tree(data[0]) and isinstance(data[1], torch.Tensor):
        raw = [tuple(data)]
    elif isinstance(data, torch.utils.data.DataLoader):
        raw, loader_idx = _loader_batches(data)
    elif isinstance(data, (torch.Tensor, str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise InputError(f"data: got {_describe(data)}; allowed: {_LAYOUTS}")
    else:
        raw = []
        held = 0
        for item in data:
            raw.append(item)
            held += nbytes(item)
            if held > max_bytes:
                raise InputError(f"data: more than {max_bytes} bytes; a probe keeps its data in memory for the call — pass fewer examples")
    batches = [_pair(b, f"item {i}") for i, b in enumerate(raw)]
    sizes = [_batch_size(x, batch_size_fn) for x, _ in batches]
    batches = [b for b, s in zip(batches, sizes) if s > 0]
    sizes = [s for s in sizes if s > 0]
    if not sizes:
        raise InputError("data: no examples (empty data); pass at least one example")
    held = sum(nbytes(x) + nbytes(y) for x, y in batches)
    if held > max_bytes:
        raise InputError(f"data: {held} bytes, more than the {max_bytes} a probe keeps in memory — pass fewer examples")
    idx = None
    if indices is not None:
        idx = torch.as_tensor(indices).reshape(-1).long()
        if idx.numel() != sum(sizes):
            raise InputError(f"indices: {idx.numel()} entries for {sum(sizes)} examples; give one index per example")
    elif loader_idx is not None:
        idx = torch.tensor([i for b in loader_idx for i in b], dtype=torch.long)
        if idx.numel() != sum(sizes):
            idx = None  # a collate_fn that changes the number of examples: indices unknown
    return Data(batches, sizes, idx)


# ---------------------------------------------------------------------------------------------
# model, loss and mode


def unwrap(model: Any) -> tuple[nn.Module, list[str]]:
    """The module to measure: a ``torch.compile``d model is measured through its original module."""
    if not isinstance(model, nn.Module):
        hint = " (the arguments are (model, loss_fn, data))" if callable(model) or isinstance(model, (tuple, list)) else ""
        raise InputError(f"model: got {_describe(model)}; a torch.nn.Module is needed{hint}")
    orig = getattr(model, "_orig_mod", None)
    if isinstance(orig, nn.Module):
        return orig, ["torch.compile'd model measured through its original module (no compilation)"]
    return model, []


def check_trainable(model: nn.Module) -> None:
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError("model: has no trainable parameters (requires_grad=True); nothing to differentiate")


def check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn) or isinstance(loss_fn, (torch.Tensor, tuple, list)):
        raise InputError(f"loss_fn: got {_describe(loss_fn)}; a function (output, target) -> mean loss is needed (arguments are (model, loss_fn, data))")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"mode: got {mode!r}; allowed: 'eval', 'train', 'as-is'")


@contextlib.contextmanager
def model_mode(model: nn.Module, mode: str):
    """Set every submodule to ``mode`` for the block and restore each one's own flag afterwards."""
    check_mode(mode)
    flags = [(m, m.training) for m in model.modules()]
    try:
        if mode == "eval":
            model.eval()
        elif mode == "train":
            model.train()
        yield
    finally:
        for m, t in flags:
            m.training = t


def effective_mode(model: nn.Module, mode: str) -> str:
    """``mode``, or for ``"as-is"`` what the modules are in (``"train"``, ``"eval"`` or ``"mixed"``)."""
    if mode != "as-is":
        return mode
    flags = {m.training for m in model.modules()}
    return "mixed" if len(flags) > 1 else ("train" if flags.pop() else "eval")


def _key(seed: int, key: int) -> int:
    return (int(seed) * 1_000_003 + int(key) * 7919 + 12345) % (2**63 - 1)


@contextlib.contextmanager
def seeded(seed: int, key: int = 0):
    """Random operations in the block drawn from (seed, key) — the same draw each time — without
    touching the caller's global random stream."""
    with torch.random.fork_rng(devices=[]):
        if torch.cuda.is_initialized():
            torch.manual_seed(_key(seed, key))
        else:  # CPU only: torch.manual_seed would queue a lazy CUDA seeding (and a stack trace) per call
            torch.random.default_generator.manual_seed(_key(seed, key))
        yield


@contextlib.contextmanager
def differentiable_kernels():
    """Attention by the math kernel (the CPU flash kernel has no double backward) and the slow
    path of ``nn.TransformerEncoderLayer``/``MultiheadAttention`` (its fused fast path has no
    forward-mode AD)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def batchnorm_in_train(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]


def refuse_batch_coupling(model: nn.Module, what: str) -> None:
    """Per-example quantities are undefined when examples share BatchNorm batch statistics."""
    bn = batchnorm_in_train(model)
    if bn:
        raise InputError(
            f"mode: {what} need examples that do not interact, but BatchNorm '{bn[0]}' in train mode mixes the examples of a batch "
            "(batch statistics); use mode='eval' (running statistics)"
        )


def is_random(model: nn.Module, call: Callable[[], Any]) -> bool:
    """Whether the forward pass draws random numbers (dropout in train mode): two draws differ."""
    if not any(m.training for m in model.modules()):
        return False
    with torch.no_grad():
        with seeded(0, 1):
            a = call()
        with seeded(0, 2):
            b = call()
    return not _same(a, b)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, Mapping):
        return all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return all(_same(u, v) for u, v in zip(a, b))
    return True


def check_loss(loss: torch.Tensor) -> None:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise InputError(f"loss_fn: returned {shape}, not a scalar; it must return the mean loss over the batch (reduction='mean')")


#: examples the loss checks of :func:`probe_call` run on (a scalar, a mean over the batch)
CHECK_EXAMPLES = 16


def check_mean_reduction(batch_loss: Callable[[Any, Any], torch.Tensor], x: Any, y: Any, n: int,
                         whole: float | None = None) -> None:
    """Refuse a loss that scales with the batch (``reduction='sum'``): the loss of 2m examples is
    then the sum of its halves' losses, ~2× their mean (a mean loss equals their mean up to the
    halves' difference, e.g. BatchNorm statistics). ``whole``: the loss of the first 2m examples,
    when the caller has it."""
    if n < 2:
        return
    m = n // 2
    with torch.no_grad():
        if whole is None:
            whole = float(batch_loss(take(x, slice(0, 2 * m)), take(y, slice(0, 2 * m))))
        h1 = float(batch_loss(take(x, slice(0, m)), take(y, slice(0, m))))
        h2 = float(batch_loss(take(x, slice(m, 2 * m)), take(y, slice(m, 2 * m))))
    mean = 0.5 * (h1 + h2)
    if math.isfinite(whole) and mean > 0 and whole > 1.5 * mean:
        raise InputError(
            f"loss_fn: scales with the batch (loss of {2 * m} examples {whole:.4g} = {whole / mean:.2f}× the mean of its "
            "halves' losses): use reduction='mean' — probes measure the mean loss"
        )


@dataclass
class Setup:
    """A probe call's model (unwrapped), data, mode and notes."""

    model: nn.Module
    data: Data
    mode: str
    output_fn: Callable | None
    notes: list[str]
    random: bool = False

    def info(self, dtype: torch.dtype | None = None, device: torch.device | None = None) -> ProbeInfo:
        p = next(iter(self.model.parameters()), None)
        dtype = dtype or (p.dtype if p is not None else torch.get_default_dtype())
        device = device or (p.device if p is not None else torch.device("cpu"))
        return ProbeInfo(effective_mode(self.model, self.mode), str(dtype).replace("torch.", ""), str(device), self.data.n, list(self.notes))


def forward_with_copies(model: nn.Module, inputs: Any) -> Any:
    """``model(inputs)`` with the module's own parameters but copies of its buffers, so that
    train-mode BatchNorm updates only the copies (autograd reaches the parameters as usual)."""
    from torch.func import functional_call

    params = dict(model.named_parameters())
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    return functional_call(model, (params, buffers), as_args(inputs))


@contextlib.contextmanager
def probe_call(
    model: Any,
    loss_fn: Any,
    data: Any,
    *,
    mode: str,
    seed: int = 0,
    output_fn: Callable | None = None,
    batch_size_fn: Callable | None = None,
    indices: Any = None,
    per_example: str | None = None,
    need_loss: bool = True,
    need_targets: bool = True,
):
    """The frame of every probe call: checks (one line each, before any forward pass where they
    can), data read once, the mode set (and restored afterwards, also on error), attention on
    twice-differentiable kernels, and the loss checked on the first batch (a scalar, a mean).

    ``per_example`` names the quantity when it is per example: train-mode BatchNorm is refused."""
    m, notes = unwrap(model)
    check_mode(mode)
    if need_loss:
        check_loss_fn(loss_fn)
    if output_fn is not None and not callable(output_fn):
        raise InputError(f"output_fn: got {_describe(output_fn)}; a function output -> logits tensor is needed")
    check_trainable(m)
    d = load_data(data, batch_size_fn=batch_size_fn, indices=indices)
    with model_mode(m, mode), differentiable_kernels():
        if per_example is not None:
            refuse_batch_coupling(m, per_example)
        s = Setup(m, d, mode, output_fn, notes)
        x, y = d.batches[0]
        small = take(x, slice(0, min(2, d.sizes[0])))
        s.random = is_random(m, lambda: forward_with_copies(m, small))
        if s.random:
            s.notes.append(f"train-mode randomness (dropout) drawn from seed={seed}, fixed for the whole call")
        if need_loss:

            def batch_loss(xx: Any, yy: Any) -> torch.Tensor:
                with seeded(seed, 0):
                    out = forward_with_copies(m, xx)
                return loss_fn(logits(out, output_fn, "the loss") if output_fn is not None else out, yy)

            # on the first CHECK_EXAMPLES examples: the checks cost a fraction of a forward pass
            k = min(d.sizes[0], CHECK_EXAMPLES)
            k -= k % 2 if k > 1 else 0  # an even count: its loss is also the mean-reduction check's
            xk, yk = take(x, slice(0, k)), take(y, slice(0, k))
            with torch.no_grad():
                first = batch_loss(xk, yk)
            check_loss(first)
            if not s.random:  # (random masks would differ between the batch and its halves)
                check_mean_reduction(batch_loss, xk, yk, k, whole=float(first))
        yield s
