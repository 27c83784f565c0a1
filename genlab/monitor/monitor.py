"""``Monitor``: genlab's probes on a user's own training loop, with optimizer-aware thresholds,
live verdicts, a time budget and the SQLite store.

Two ways to call it, one per step (use one of them, not both):

- ``monitor.step(batch, loss=loss)`` after ``optimizer.step()``: each due quantity is measured by
  its standalone probe on ``batch`` at the updated weights (a second forward/backward).
- ``with monitor(step, batch):`` around the user's own forward and backward (before
  ``optimizer.step()``): gradient norm, per-example gradient norms, coherence and SNR come from the
  user's backward through hooks (:mod:`genlab.probes.backward_capture`: no second pass for
  Linear/Conv layers); the loss from the user's forward; the other due quantities are measured by
  their probes when the block ends, at the weights of this step's backward.

The Monitor restores ``.grad``, train/eval modes and the global RNG streams after measuring, never
writes parameters, buffers or optimizer state, and leaves the user's ``.grad`` exactly as the
user's backward made it.

Stored series (names are stable; ``_se``/``_low``/``_high`` are error bars): ``loss``,
``grad_norm``, ``per_example.norm_mean|norm_std|norm_max``, ``distance``,
``relative_weight_change``, ``coherence``, ``m_coherence``, ``snr``, ``sharpness`` or
``preconditioned_sharpness`` (Adam), ``threshold``, ``threshold_ratio``, ``trace``, ``trace_se``,
``batch_sharpness`` (+ ``batch_sharpness_threshold``, ``batch_sharpness_ratio`` for SGD),
``spectrum.moment1|moment2`` (+ ``_se``), ``spectrum.bulk_low|bulk_high|num_outliers``,
``tail_index`` (+ ``_low``, ``_high``) and ``tail_index_control`` (+ ``_low``, ``_high``),
``kernel_distance``, ``kernel_velocity``, ``el2n.mean|max``, ``coherence_random``, per block
``sharpness/<block>``, ``trace/<block>``, ``trace_se/<block>``, custom probes under their
function's name, and with a budget ``budget.overhead`` and ``budget.stretch``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from genlab.errors import InputError, did_you_mean
from genlab.monitor.budget import Budget
from genlab.monitor.noise import tail_scalars
from genlab.monitor.schedule import Schedule
from genlab.monitor.thresholds import Threshold, optimizer_threshold
from genlab.monitor.verdicts import coherence_verdict, eoss_verdict, live_verdicts, regime_verdicts, tail_verdict
from genlab.probes.backward_capture import BackwardCapture
from genlab.probes.blocks import ParamSpec, layer_blocks, select_parameters
from genlab.probes.curvature import hessian_eigenvalues
from genlab.probes.data_importance import el2n_scores
from genlab.probes.directional import directional_sharpness
from genlab.probes.gradient_stats import gradient_coherence, minibatch_gradient_noise
from genlab.probes.kernels import empirical_ntk, kernel_distance
from genlab.probes.per_example import PerExampleStats, per_example_stats
from genlab.probes.preconditioned import adam_preconditioner, preconditioned_sharpness
from genlab.probes.spectrum import hessian_spectrum
from genlab.probes.trace import hessian_trace
from genlab.probes._operators import Symmetry
from genlab.probes._setup import forward_with_copies, take
from genlab.store import Store, Verdict

ECONOMY = ("loss", "grad_norm", "distance", "per_example", "coherence", "snr")
CURVATURE = ("loss", "sharpness", "trace", "batch_sharpness")
FULL = ECONOMY + ("sharpness", "trace", "batch_sharpness", "spectrum", "tail_index", "kernel", "el2n", "coherence_random")
PROBE_SETS: dict[str, tuple[str, ...]] = {"economy": ECONOMY, "curvature": CURVATURE, "full": FULL}
QUANTITIES = FULL
#: quantities that come from one set of per-example statistics (the user's backward in hook mode)
BACKWARD = ("grad_norm", "per_example", "coherence", "snr")
#: assumed cost of a first measurement, in loop steps, for the budget's plan before it is measured
#: (Lanczos ~100 Hessian-vector products ≈ 2 steps each; Hutchinson 30; SLQ 3 × 30; a kernel of
#: 16 Jacobian rows; the tail index one more backward over the batch)
PRIOR_COST = {"backward": 1.0, "loss": 0.1, "distance": 0.2, "sharpness": 100.0, "trace": 60.0, "batch_sharpness": 3.0,
              "spectrum": 180.0, "tail_index": 3.0, "kernel": 20.0, "el2n": 0.5, "coherence_random": 2.0}
CustomProbe = Callable[[torch.nn.Module, Any, Any], Any]


def _resolve_probes(probes: str | Sequence[str | CustomProbe]) -> tuple[list[str], dict[str, CustomProbe]]:
    items = [probes] if isinstance(probes, str) or callable(probes) else list(probes)
    allowed = list(PROBE_SETS) + list(QUANTITIES)
    if not items:
        raise InputError(f"probes: got an empty list; allowed: {', '.join(allowed)} or functions")
    names: list[str] = []
    custom: dict[str, CustomProbe] = {}
    for it in items:
        if callable(it):
            custom[getattr(it, "__name__", f"custom{len(custom)}")] = it
        elif isinstance(it, str) and it in PROBE_SETS:
            names += [q for q in PROBE_SETS[it] if q not in names]
        elif isinstance(it, str) and it in QUANTITIES:
            names += [it] if it not in names else []
        else:
            raise InputError(f"probes: unknown probe {it!r};{did_you_mean(str(it), allowed)} allowed: {', '.join(allowed)} or a function")
    return names, custom


def _scalars(value: Any, name: str) -> dict[str, float]:
    if isinstance(value, Mapping):
        return {f"{name}.{k}" if k != name else k: float(v) for k, v in value.items()}
    if hasattr(value, "scalars"):
        return {f"{name}.{k}": float(v) for k, v in value.scalars().items()}
    return {name: float(value)}


def _blocks(model: torch.nn.Module, params: Any, per_layer: bool) -> dict[str, list[str]]:
    """Block label → parameter names, from ``params`` (list or dict of blocks) and ``per_layer``."""
    if not isinstance(per_layer, bool):
        raise InputError(f"per_layer: got {per_layer!r}; must be True or False")
    out: dict[str, list[str]] = dict(layer_blocks(model)) if per_layer else {}
    if params is None:
        return out
    if isinstance(params, (str, torch.nn.Module)):
        params = [params]
    items = params.items() if isinstance(params, Mapping) else [(None, p) for p in params]
    names_of = {id(v): k for k, v in [*model.named_modules(), *model.named_parameters()]}
    for label, spec in items:
        names = select_parameters(model, spec)
        if label is None:
            label = spec if isinstance(spec, str) else names_of.get(id(spec), "+".join(names))
        out[str(label) or "(root)"] = names
    return out


def _schedules(names: list[str], every: Any, log_spaced: Any) -> dict[str, Schedule]:
    for arg, val in (("every", every), ("log_spaced", log_spaced)):
        if isinstance(val, Mapping):
            bad = [k for k in val if k not in names]
            if bad:
                raise InputError(f"{arg}: unknown quantity {bad[0]!r}; monitored: {', '.join(names)}")
    if isinstance(log_spaced, Mapping):
        if any(not isinstance(v, bool) for v in log_spaced.values()):
            raise InputError("log_spaced: values must be True or False")
    elif not isinstance(log_spaced, bool):
        raise InputError(f"log_spaced: got {log_spaced!r}; must be True, False or a dict quantity → bool")
    out = {}
    for q in names:
        k = every.get(q, 1) if isinstance(every, Mapping) else every
        ls = log_spaced.get(q, False) if isinstance(log_spaced, Mapping) else log_spaced
        out[q] = Schedule(k, ls)
    return out


def _check_batch(model: torch.nn.Module, loss_fn: Any, batch: Any) -> None:
    """One forward (on copies of the buffers) and one loss on two examples: a batch the model
    cannot take is bad input, said in one line."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise InputError(f"batch: got {type(batch).__name__}; must be a pair (inputs, targets)")
    x, y = batch
    if not isinstance(y, torch.Tensor) or y.dim() == 0:
        raise InputError(f"batch: targets must be a tensor with a batch dimension, got {type(y).__name__}")
    n = int(y.shape[0])
    xs = [t for t in (x.values() if isinstance(x, Mapping) else x if isinstance(x, (tuple, list)) else [x])
          if isinstance(t, torch.Tensor)]
    if xs and int(xs[0].shape[0]) != n:
        raise InputError(f"batch: inputs have {int(xs[0].shape[0])} examples, targets {n}; they must match")
    k = min(2, n)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = forward_with_copies(model, take(x, slice(0, k)))
            loss = loss_fn(out, y[:k])
    except (RuntimeError, TypeError, ValueError, IndexError) as err:
        raise InputError(f"batch: does not match the model or loss_fn ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise InputError(f"loss_fn: returns {shape}; must return a scalar (the mean loss over the batch)")


class Monitor:
    """Measure ``probes`` on the user's batches while the user's loop trains ``model``.

    Args:
        model, loss_fn: the model and ``loss_fn(output, target)`` (a mean over the batch).
        optimizer: read at each measurement for the stability threshold (None: no threshold).
        probes: a set name — ``"economy"`` (loss, gradient norm, distance from init, per-example
            gradient norms, coherence, SNR), ``"curvature"`` (loss, λ_max warm-started from the
            last Ritz vector, trace with its standard error, batch sharpness), ``"full"`` (both,
            and the SLQ spectral density, the gradient-noise tail index with a Gaussian control,
            kernel distance and velocity and EL2N on a fixed probe batch, random-label
            coherence) —, quantity names (:data:`QUANTITIES`), functions
            ``f(model, loss_fn, batch)`` returning a float, a dict of floats or an object with
            ``scalars()``, or a list of these.
        every: an interval for all quantities, or a dict quantity → interval or None (missing: 1).
        log_spaced: also measure at log-spaced steps (1, 2, 3, 4, 6, 8, 12, ...): a bool, or a dict
            quantity → bool. ``every={"q": None}, log_spaced={"q": True}``: log-spaced only.
        budget: None, or the fraction in (0, 1] of the loop's own wall time the Monitor may add:
            intervals are stretched from ``every`` (:mod:`genlab.monitor.budget`), gradient norm,
            per-example norms, coherence and SNR sharing one interval (log-spaced-only quantities
            keep their steps); ``skipped`` counts the measurements ``every`` asked for that the
            budget left out, and ``close()`` stores the measured overhead and the skips as a finding.
        store: None (no store), a home path, or a :class:`genlab.store.Store`.
        name: the run's name (experiment ``monitor:NAME``).
        band, window, rise: edge of stability when r = λ/threshold lies in [1 − band, 1 + band]
            at ``window`` consecutive measurements (batch sharpness: the mean of ``window``
            consecutive samples); progressive sharpening when λ has grown by ``rise`` over its
            first value while r < 1 − band.
        sharpness_tol, trace_matvecs: the Lanczos tolerance and the Hutchinson sample count.
        params, per_layer: parameter blocks whose curvature is measured beside the whole model's
            when "sharpness"/"trace" are due: ``params`` a list whose entries are each one block
            (a parameter or module name, a module, a parameter, or a list of these) or a dict
            label → such entry; ``per_layer=True`` adds one block per module owning parameters.
            Series ``sharpness/<block>`` (λ_max of the Hessian's diagonal block H_BB, warm-started
            per block; the Hessian's also for Adam), ``trace/<block>`` and ``trace_se/<block>``
            (:mod:`genlab.probes.blocks`).
        probe_batch: the fixed batch of the kernel and EL2N (default: the first ``probe_size``
            examples of the first batch the Monitor sees); EL2N's indices are positions in it.
        probe_size, kernel_size: examples of the default probe batch, and of the kernel's.
        tail_splits: the tail index splits each batch into this many minibatches (noise rows).
        coherence_factor: coherence is "above its random-label level" when α ≥ factor × α of the
            same batch with its targets randomly permuted (measured at the same step).
        lazy_level, rich_level: levels of the lazy/rich findings (see
            :func:`genlab.monitor.verdicts.regime_verdicts`).
        print_every: None (silent) or k: one line through Rich every k steps, with the findings
            that became true since the last line. console: a ``rich.console.Console``.
        seed: the Monitor's own random draws (never the global streams).

    The measurement modes: curvature, per-example and kernel probes in ``"eval"`` mode (their
    default), the gradient noise in ``"train"`` mode; in hook mode the per-example quantities are
    those of the user's own forward (its mode and dropout masks).
        tensorboard: a log directory: every recorded scalar is also written there as a TensorBoard
            event (needs ``pip install 'genlab[tensorboard]'``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: Any,
        optimizer: torch.optim.Optimizer | None = None,
        probes: str | Sequence[str | CustomProbe] = "economy",
        every: int | Mapping[str, int | None] = 1,
        *,
        log_spaced: bool | Mapping[str, bool] = False,
        budget: float | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        name: str = "run",
        band: float = 0.1,
        window: int = 3,
        rise: float = 0.2,
        sharpness_tol: float = 1e-6,
        trace_matvecs: int = 30,
        params: Sequence[ParamSpec] | Mapping[str, ParamSpec] | None = None,
        per_layer: bool = False,
        probe_batch: Any = None,
        probe_size: int = 64,
        kernel_size: int = 16,
        tail_splits: int = 8,
        coherence_factor: float = 2.0,
        lazy_level: float = 0.1,
        rich_level: float = 0.1,
        print_every: int | None = None,
        console: Any = None,
        seed: int = 0,
        tensorboard: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise InputError(f"model: got {type(model).__name__}; must be a torch.nn.Module")
        if not callable(loss_fn):
            raise InputError(f"loss_fn: got {type(loss_fn).__name__}; must be callable(output, target)")
        if not any(p.requires_grad for p in model.parameters()):
            raise InputError("model: has no trainable parameters (requires_grad=True); nothing to monitor")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise InputError(f"optimizer: got {type(optimizer).__name__}; must be a torch.optim.Optimizer or None")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1):
            raise InputError(f"budget: got {budget!r}; must be None or a fraction in (0, 1] of the loop's wall time")
        if not (0 < band < 1):
            raise InputError(f"band: got {band!r}; must be in (0, 1)")
        for arg, val, low in (("window", window, 1), ("trace_matvecs", trace_matvecs, 2), ("probe_size", probe_size, 1),
                              ("kernel_size", kernel_size, 1), ("tail_splits", tail_splits, 2)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise InputError(f"{arg}: got {val!r}; must be an integer >= {low}")
        if print_every is not None and (isinstance(print_every, bool) or not isinstance(print_every, int) or print_every <= 0):
            raise InputError(f"print_every: got {print_every!r}; must be None or an integer >= 1 (steps)")
        if not str(name):
            raise InputError("name: got an empty name; give a non-empty string")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.quantities, self.custom = _resolve_probes(probes)
        self.schedules = _schedules(self.quantities + list(self.custom), every, log_spaced)
        self.name, self.band, self.window, self.rise = str(name), band, window, rise
        self.sharpness_tol, self.trace_matvecs = sharpness_tol, trace_matvecs
        self.probe_size, self.kernel_size, self.tail_splits = probe_size, kernel_size, tail_splits
        self.coherence_factor, self.lazy_level, self.rich_level = coherence_factor, lazy_level, rich_level
        self.print_every, self._console, self.seed = print_every, console, int(seed)
        self.t = 0
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.notes: list[str] = []
        self.threshold: Threshold = optimizer_threshold(optimizer)
        self.budget = Budget(float(budget)) if budget is not None else None
        self.skipped: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._ritz: torch.Tensor | None = None
        # the Hessian's symmetry check (two products) runs on curvature calls until one passes: the
        # model's second derivatives are as right at every step as at the first
        self._symmetry: Symmetry = "raise"
        self.blocks = _blocks(model, params, per_layer)
        self._block_ritz: dict[str, torch.Tensor] = {}
        self._probe_batch = probe_batch
        self._kernel0: torch.Tensor | None = None
        self._kernel_prev: tuple[int, torch.Tensor] | None = None
        self.el2n: tuple[torch.Tensor, torch.Tensor] | None = None  # (indices in the probe batch, scores)
        self.spectrum = None  # the last SpectrumResult
        self._gen = torch.Generator().manual_seed(self.seed)
        self._checked = False
        self._capture: BackwardCapture | None = None
        self._dist_pairs: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self._printed: set[str] = set()
        self._init = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
        self._init_norm = float(torch.sqrt(sum(v.double().pow(2).sum() for v in self._init.values())))
        self._tb = None  # TensorBoard: every recorded scalar also to an event file in this log dir
        if tensorboard is not None:
            from genlab.integrations.tensorboard import TensorBoardWriter

            self._tb = TensorBoardWriter(tensorboard)
        self._store, self._own_store, self.run_id = self._open_store(store)
        self.home = None if self._store is None else self._store.home

    # -- store ------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        opt = self.optimizer
        hyper = {}
        if opt is not None:
            hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opt.param_groups[0].items()
                     if k != "params" and isinstance(v, (int, float, bool, str, tuple, type(None)))}
        return {
            "model": type(self.model).__name__,
            "parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "optimizer": type(opt).__name__ if opt is not None else None,
            "hyperparameters": hyper,
            "probes": self.quantities + list(self.custom),
            "every": {q: s.every for q, s in self.schedules.items()},
            "log_spaced": [q for q, s in self.schedules.items() if s.log_spaced],
            "budget": self.budget.fraction if self.budget is not None else None,
            "blocks": list(self.blocks),
            "threshold_rule": self.threshold.rule,
        }

    def _open_store(self, store: Any) -> tuple[Store | None, bool, int | None]:
        if store is None:
            return None, False, None
        own = not isinstance(store, Store)
        st = Store(store) if own else store
        cfg = self.config()
        h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return st, own, st.create_run(f"monitor:{self.name}", cfg, h, seed=self.seed)

    # -- schedules --------------------------------------------------------------------------------
    def _unit(self, q: str) -> str:
        return "backward" if q in BACKWARD else q

    def _due(self, t: int) -> list[str]:
        """The quantities to measure at step ``t`` (and the skipped ones counted)."""
        asked = [q for q, s in self.schedules.items() if s.due(t)]
        if self.budget is None:
            return asked
        base: dict[str, int] = {}
        for q, s in self.schedules.items():
            u = self._unit(q)
            base[u] = min(base.get(u, 10**9), s.every or 10**9)
        plan = self.budget.plan(base, {u: PRIOR_COST.get(u, 1.0) for u in base})
        due_units = {u for u in base if t - self._last.get(u, 0) >= plan[u]}
        # log-spaced-only quantities keep their (ever sparser) steps; their cost is counted all the same
        due_units |= {self._unit(q) for q in asked if self.schedules[q].every is None}
        due = [q for q in self.schedules if self._unit(q) in due_units]
        self._last.update({u: t for u in due_units})
        for q in asked:
            if q not in due:
                self.skipped[q] = self.skipped.get(q, 0) + 1
        return due

    # -- the two ways in --------------------------------------------------------------------------
    def step(self, batch: Any, loss: torch.Tensor | float | None = None) -> dict[str, float]:
        """Advance one training step; measure the quantities due on ``batch``; return what was measured."""
        self._clock_in()
        try:
            self.t += 1
            due = self._due(self.t)
            if not due:
                return {}
            if loss is not None:
                lv = loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
                if lv.numel() != 1:
                    raise InputError(f"loss: got a tensor of shape {tuple(lv.shape)}; must be a scalar")
            out = self._measure(due, batch, loss, None)
            self._record(out)
            return out
        finally:
            self._clock_out(step_done=True)

    def __call__(self, step: int | None = None, batch: Any = None, *, loss_scale: float = 1.0) -> contextlib.AbstractContextManager:
        """``with monitor(step, batch):`` around the user's forward and backward on ``batch``
        (step: the user's step number ≥ 1, or None to count). ``loss_scale``: the factor the
        backward's loss was multiplied by (a GradScaler's scale), 1 for the plain mean loss."""
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 1):
            raise InputError(f"step: got {step!r}; must be None or an integer >= 1")
        if batch is None:
            raise InputError("batch: got None; pass the (inputs, targets) the block's forward/backward uses")
        if not (isinstance(loss_scale, (int, float)) and loss_scale > 0):
            raise InputError(f"loss_scale: got {loss_scale!r}; must be > 0")
        return self._hooked(step, batch, float(loss_scale))

    @contextlib.contextmanager
    def _hooked(self, step: int | None, batch: Any, loss_scale: float) -> Iterator[None]:
        self._clock_in()
        t = step if step is not None else self.t + 1
        due = self._due(t)
        if due and not self._checked:
            _check_batch(self.model, self.loss_fn, batch)
            self._checked = True
        cap = None
        if any(q in BACKWARD for q in due):
            if self._capture is None:
                self._capture = BackwardCapture(self.model, loss_scale, check_every=16)
            cap = self._capture
            cap.loss_scale = loss_scale
        out_box: list[torch.Tensor] = []
        handles = []
        if cap is not None:
            cap.__enter__()
        if "loss" in due:
            handles.append(self.model.register_forward_hook(
                lambda m, i, o: out_box.append(o.detach()) if isinstance(o, torch.Tensor) and not out_box else None))
        self._clock_out()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._clock_in()
            for h in handles:
                h.remove()
            if cap is not None:
                cap.__exit__(None, None, None)
            try:
                self.t = t
                if ok and due:
                    loss = None
                    if out_box:
                        with torch.no_grad():
                            loss = self.loss_fn(out_box[0], batch[1]).detach()
                    self._record(self._measure(due, batch, loss, cap))
            finally:
                self._clock_out(step_done=True)

    # -- time -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """``with monitor.paused():`` around work that is not training (an evaluation pass, a
        checkpoint): its time is left out of the loop time the budget is a fraction of."""
        if self.budget is not None:
            self.budget.pause()
        try:
            yield
        finally:
            if self.budget is not None:
                self.budget.resume()

    def _clock_in(self) -> None:
        if self.budget is not None:
            self.budget.enter()

    def _clock_out(self, step_done: bool = False) -> None:
        b = self.budget
        if b is None:
            return
        b.leave()
        if step_done:
            b.step_done()

    # -- measuring --------------------------------------------------------------------------------
    def _record(self, out: dict[str, float]) -> None:
        if self.budget is not None and out:
            out["budget.overhead"] = self.budget.overhead
            iv = self.budget.intervals
            out["budget.stretch"] = max((iv[u] / max(s.every or 1, 1) for q, s in self.schedules.items()
                                         for u in [self._unit(q)] if u in iv), default=1.0)
        for k, v in out.items():
            self.history.setdefault(k, []).append((self.t, v))
        if self._store is not None and self.run_id is not None and out:
            self._store.log_metrics(self.run_id, [(self.t, k, v) for k, v in out.items()])
        if self._tb is not None and out:
            self._tb.write(self.t, out)
        if self.print_every is not None and self.t % self.print_every == 0:
            self._print()

    def _measure(self, due: list[str], batch: Any, loss: Any, cap: BackwardCapture | None) -> dict[str, float]:
        if not self._checked:
            _check_batch(self.model, self.loss_fn, batch)
            self._checked = True
        if cap is not None and all(q in BACKWARD or q in ("loss", "distance") for q in due):
            return self._probe(due, batch, loss, cap)  # hooks and arithmetic only: no draws, no mode changes
        model = self.model
        # genlab's probes never write .grad (they differentiate with autograd.grad); a custom probe
        # may, so .grad is copied when one is due, and the tensors themselves restored always
        copy_grads = any(q in self.custom for q in due)
        grads = [(p, p.grad, None if p.grad is None or not copy_grads else p.grad.clone()) for p in model.parameters()]
        modes = [(m, m.training) for m in model.modules()]
        try:
            with torch.random.fork_rng(devices=[]):
                return self._probe(due, batch, loss, cap)
        finally:
            for p, g, saved in grads:
                if saved is not None:
                    g.copy_(saved)
                p.grad = g
            for m, mode in modes:
                m.training = mode

    def _timed(self, q: str, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
        t0 = time.perf_counter()
        out = fn()
        if self.budget is not None:
            self.budget.cost(self._unit(q), time.perf_counter() - t0)
        return out

    def _probe(self, due: list[str], batch: Any, loss: Any, cap: BackwardCapture | None) -> dict[str, float]:
        out: dict[str, float] = {}
        t0 = time.perf_counter()
        if any(q in BACKWARD for q in due):
            out.update(self._backward_quantities(due, batch, cap))
            if self.budget is not None:
                self.budget.cost("backward", time.perf_counter() - t0)
        measures: dict[str, Callable[[], dict[str, float]]] = {
            "loss": lambda: self._loss(batch, loss),
            "distance": self._distance,
            "sharpness": lambda: self._sharpness(batch),
            "trace": lambda: self._trace(batch),
            "batch_sharpness": lambda: self._batch_sharpness(batch),
            "spectrum": lambda: self._spectrum(batch),
            "tail_index": lambda: self._tail(batch),
            "kernel": lambda: self._kernel(batch),
            "el2n": lambda: self._el2n(batch),
            "coherence_random": lambda: self._coherence_random(batch),
        }
        for q in due:
            fn = measures.get(q)
            if fn is None and q in self.custom:
                fn = (lambda f=self.custom[q], q=q: _scalars(f(self.model, self.loss_fn, batch), q))
            if fn is not None:
                out.update(self._timed(q, fn))
        return out

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _backward_quantities(self, due: list[str], batch: Any, cap: BackwardCapture | None) -> dict[str, float]:
        st: PerExampleStats | None = None
        if cap is not None:
            st = cap.stats(self.loss_fn, batch)
            if st is None:
                self._note(f"per-example quantities by a second pass (eval mode): {cap.reason}")
        if st is None:
            with torch.random.fork_rng(devices=[]):
                st = per_example_stats(self.model, self.loss_fn, batch)
        # ‖ḡ‖² and E‖g_i‖² give the gradient norm, coherence α = ‖ḡ‖²/E‖g_i‖² (as
        # gradient_coherence) and the pooled SNR Σ_j μ_j²/Σ_j σ_j² = ‖ḡ‖²/(E‖g_i‖² − ‖ḡ‖²) (as
        # gradient_snr's pooled value: Σ_j of the second moments is E‖g_i‖²), in few operations
        mg2 = float(torch.stack(torch._foreach_norm(list(st.mean_grad.values()))).double().pow(2).sum())
        mean_sq = float(st.sq_norms.mean())
        out: dict[str, float] = {}
        if "grad_norm" in due:
            out["grad_norm"] = mg2**0.5
        if "per_example" in due:
            std, mean = torch.std_mean(st.sq_norms.sqrt(), correction=0)
            out.update({"per_example.norm_mean": float(mean), "per_example.norm_std": float(std),
                        "per_example.norm_max": float(st.sq_norms.max()) ** 0.5})
        if "coherence" in due:
            alpha = mg2 / mean_sq if mean_sq > 0 else float("nan")
            out.update({"coherence": alpha, "m_coherence": st.n * alpha})
        if "snr" in due:
            out["snr"] = mg2 / (mean_sq - mg2) if mean_sq > mg2 else float("nan")
        return out

    def _loss(self, batch: Any, loss: Any) -> dict[str, float]:
        if loss is None:
            x, y = batch
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                loss = self.loss_fn(forward_with_copies(self.model, x), y)
        return {"loss": float(loss.detach() if isinstance(loss, torch.Tensor) else loss)}

    def _distance(self) -> dict[str, float]:
        """‖θ − θ_0‖ (as :func:`distance_from_init`, in fewer operations) and its ratio to ‖θ_0‖."""
        if self._dist_pairs is None:
            named = [(n, p) for n, p in self.model.named_parameters() if n in self._init]
            self._dist_pairs = ([p for _, p in named], [self._init[n] for n, _ in named])
        now, init = self._dist_pairs
        with torch.no_grad():
            diffs = torch._foreach_sub(now, init)
        d = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(diffs)).double()))
        return {"distance": d, "relative_weight_change": d / self._init_norm if self._init_norm > 0 else float("nan")}

    def _sharpness(self, batch: Any) -> dict[str, float]:
        self.threshold = optimizer_threshold(self.optimizer)
        th = self.threshold
        m, lf = self.model, self.loss_fn
        if th.quantity == "preconditioned_sharpness":
            r = preconditioned_sharpness(m, lf, batch, adam_preconditioner(self.optimizer, m),  # type: ignore[arg-type]
                                         tol=self.sharpness_tol, v0=self._ritz, symmetry=self._symmetry)
        else:
            r = hessian_eigenvalues(m, lf, batch, tol=self.sharpness_tol, v0=self._ritz, symmetry=self._symmetry)
        self._symmetry = "off"
        self._ritz = r.ritz_vector
        out = {th.quantity: r.top}
        if th.value is not None:
            out["threshold"] = th.value
            out["threshold_ratio"] = r.top / th.value
        for b, names in self.blocks.items():
            e = hessian_eigenvalues(m, lf, batch, tol=self.sharpness_tol, v0=self._block_ritz.get(b), params=names, symmetry="off")
            self._block_ritz[b] = e.ritz_vector  # type: ignore[assignment]
            out[f"sharpness/{b}"] = e.top
        return out

    def _trace(self, batch: Any) -> dict[str, float]:
        m, lf, n = self.model, self.loss_fn, self.trace_matvecs
        r = hessian_trace(m, lf, batch, method="hutchinson", num_matvecs=n, seed=self.t, symmetry=self._symmetry)
        self._symmetry = "off"
        out = {"trace": r.estimate, "trace_se": r.stderr}
        for b, names in self.blocks.items():
            rb = hessian_trace(m, lf, batch, method="hutchinson", num_matvecs=n, seed=self.t, params=names, symmetry="off")
            out.update({f"trace/{b}": rb.estimate, f"trace_se/{b}": rb.stderr})
        return out

    def _batch_sharpness(self, batch: Any) -> dict[str, float]:
        """One sample g_BᵀH_Bg_B/‖g_B‖² on this step's batch; against 2/η for plain SGD only."""
        r = directional_sharpness(self.model, self.loss_fn, batch, symmetry=self._symmetry)
        self._symmetry = "off"
        out = {"batch_sharpness": r.value}
        opt = self.optimizer
        if type(opt) is torch.optim.SGD and not float(opt.param_groups[0].get("momentum", 0) or 0):
            thr = 2.0 / float(opt.param_groups[0]["lr"])
            out.update({"batch_sharpness_threshold": thr, "batch_sharpness_ratio": r.value / thr})
        elif opt is not None:
            self._note(f"batch sharpness: no threshold for {type(opt).__name__} with these settings "
                       "(2/η is for plain SGD, Andreyev & Beneventano 2024): measurement only")
        return out

    def _spectrum(self, batch: Any) -> dict[str, float]:
        r = hessian_spectrum(self.model, self.loss_fn, batch, num_probes=3, lanczos_steps=30, seed=self.t, symmetry=self._symmetry)
        self._symmetry = "off"
        self.spectrum = r
        out = {"spectrum.bulk_low": r.bulk[0], "spectrum.bulk_high": r.bulk[1], "spectrum.num_outliers": float(len(r.outliers))}
        for j in (1, 2):
            out[f"spectrum.moment{j}"], out[f"spectrum.moment{j}_se"] = r.moment(j), r.moment_stderr(j)
        return out

    def _tail(self, batch: Any) -> dict[str, float]:
        n = int(batch[1].shape[0])
        b = n // self.tail_splits
        if b < 1:
            self._note(f"tail index: a batch of {n} examples cannot be split into {self.tail_splits} minibatches; skipped")
            return {}
        noise = minibatch_gradient_noise(self.model, self.loss_fn, batch, b, seed=self.t)
        return tail_scalars(noise, self._gen)

    def _fixed_batch(self, batch: Any) -> Any:
        if self._probe_batch is None:
            x, y = batch
            self._probe_batch = (take(x, slice(0, min(self.probe_size, int(y.shape[0])))), y[: self.probe_size])
        return self._probe_batch

    def _kernel(self, batch: Any) -> dict[str, float]:
        x, _ = self._fixed_batch(batch)
        k = empirical_ntk(self.model, take(x, slice(0, self.kernel_size)))
        if self._kernel0 is None:
            self._kernel0 = k
        out = {"kernel_distance": kernel_distance(self._kernel0, k)}
        if self._kernel_prev is not None:
            t0, k0 = self._kernel_prev
            out["kernel_velocity"] = kernel_distance(k0, k) / max(self.t - t0, 1)
        self._kernel_prev = (self.t, k)
        return out

    def _el2n(self, batch: Any) -> dict[str, float]:
        try:
            r = el2n_scores(self.model, self._fixed_batch(batch), with_indices=True)
        except (InputError, RuntimeError, ValueError) as err:
            self._note(f"el2n: not measured ({str(err).splitlines()[0][:100]})")
            return {}
        self.el2n = (r.indices, r.scores)  # type: ignore[union-attr]
        return {"el2n.mean": float(r.scores.mean()), "el2n.max": float(r.scores.max())}  # type: ignore[union-attr]

    def _coherence_random(self, batch: Any) -> dict[str, float]:
        x, y = batch
        perm = torch.randperm(int(y.shape[0]), generator=self._gen)
        return {"coherence_random": gradient_coherence(self.model, self.loss_fn, (x, y[perm])).alpha}

    # -- verdicts, output and end -----------------------------------------------------------------
    def verdicts(self) -> list[Verdict]:
        """The findings so far: sharpening and edge of stability (with a threshold), edge of
        stochastic stability (plain SGD), heavy-tailed noise, coherence against random labels,
        lazy vs rich — each where its series were measured."""
        h = self.history
        return (live_verdicts(h, self.threshold, band=self.band, window=self.window, rise=self.rise)
                + eoss_verdict(h, self.band, self.window) + tail_verdict(h)
                + coherence_verdict(h, self.coherence_factor) + regime_verdicts(h, self.lazy_level, self.rich_level))

    def _budget_verdict(self) -> list[Verdict]:
        b = self.budget
        if b is None or b.loop_time <= 0:
            return []
        skipped = ", ".join(f"{q} {k}" for q, k in sorted(self.skipped.items())) or "nothing"
        return [Verdict(claim="the Monitor's overhead stays within its budget",
                        predicted=f"Monitor time / loop time ≤ {b.fraction:g}",
                        measured=f"{b.overhead:.3g} over {b.steps} steps; measurements skipped: {skipped}",
                        tolerance="none", passed=b.overhead <= b.fraction, kind="finding")]

    def _print(self) -> None:
        from rich.console import Console
        from rich.markup import escape

        con = self._console if self._console is not None else Console(stderr=True)
        self._console = con
        keys = ["loss", "grad_norm", self.threshold.quantity, "threshold", "trace", "batch_sharpness", "tail_index",
                "coherence", "kernel_distance"]
        parts = [f"{k} {self.history[k][-1][1]:.4g}" for k in keys if k in self.history]
        if self.budget is not None:
            parts.append(f"overhead {self.budget.overhead:.3g}")
        con.print(f"[bold]{escape(self.name)}[/] step {self.t}: " + escape(" · ".join(parts)))
        for v in self.verdicts():
            if v.passed and v.claim not in self._printed and "became true" in v.measured:
                self._printed.add(v.claim)
                con.print(f"  [green]▲[/] {escape(v.claim.split(':')[0])}: {escape(v.measured.split(';')[0])}")

    def close(self, status: str = "finished") -> list[Verdict]:
        """Store the verdicts (and the budget's account) and finish the run; returns the verdicts."""
        vs = self.verdicts() + self._budget_verdict()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._store is not None and self.run_id is not None:
            self._store.add_checks(self.run_id, vs)
            self._store.finish_run(self.run_id, status)
            if self._own_store:
                self._store.close()
            self._store = None
        return vs

    def report(self, out: str | os.PathLike[str] | None = None) -> Any:
        """Write this run's HTML page (dashboard, verdicts, config) to ``out`` (default
        HOME/monitor-NAME.html) and return its path; call after :meth:`close` for the verdicts."""
        from genlab.report.html import write_run_page

        if self.home is None or self.run_id is None:
            raise InputError("report: this Monitor has no store; give Monitor(..., store=HOME) to keep a run to report")
        return write_run_page(self.home, self.run_id, out if out is not None else self.home / f"monitor-{self.name}.html")

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close("failed" if exc_type is not None else "finished")
