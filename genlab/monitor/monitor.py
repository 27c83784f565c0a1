"""``Monitor``: genlab's probes on a user's own training loop, with optimizer-aware thresholds,
live verdicts and the SQLite store.

Call ``monitor.step(batch, loss=loss)`` after ``optimizer.step()``. Each due quantity is measured
by the standalone probe on ``batch`` (a second forward/backward: reusing the user's own backward
through hooks is a later step). The Monitor restores ``.grad``, train/eval modes and the global RNG
streams after measuring, and never writes parameters, buffers or optimizer state.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from genlab.errors import InputError, did_you_mean
from genlab.monitor.schedule import Schedule
from genlab.monitor.thresholds import Threshold, optimizer_threshold
from genlab.monitor.verdicts import live_verdicts
from genlab.probes.blocks import ParamSpec, layer_blocks, select_parameters
from genlab.probes.curvature import hessian_eigenvalues
from genlab.probes.distance import distance_from_init
from genlab.probes.gradient_stats import gradient_coherence, gradient_snr
from genlab.probes.per_example import per_example_stats
from genlab.probes.preconditioned import adam_preconditioner, preconditioned_sharpness
from genlab.probes.trace import hessian_trace
from genlab.store import Store, Verdict

ECONOMY = ("loss", "grad_norm", "distance", "per_example", "coherence", "snr")
CURVATURE = ("loss", "sharpness", "trace")
PROBE_SETS: dict[str, tuple[str, ...]] = {"economy": ECONOMY, "curvature": CURVATURE}
QUANTITIES = ("loss", "grad_norm", "distance", "per_example", "coherence", "snr", "sharpness", "trace")
CustomProbe = Callable[[torch.nn.Module, Any, Any], Any]


def _resolve_probes(probes: str | Sequence[str | CustomProbe]) -> tuple[list[str], dict[str, CustomProbe]]:
    items = [probes] if isinstance(probes, str) else list(probes)
    if not items:
        raise InputError("probes: got an empty list; allowed: 'economy', 'curvature', quantity names or functions")
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
            allowed = list(PROBE_SETS) + list(QUANTITIES)
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


class Monitor:
    """Measure ``probes`` on the user's batches while the user's loop trains ``model``.

    Args:
        model, loss_fn: the model and ``loss_fn(output, target)`` (a mean over the batch).
        optimizer: read at each measurement for the stability threshold (None: no threshold).
        probes: ``"economy"``, ``"curvature"``, or a list of set names, quantity names
            (:data:`QUANTITIES`) and functions ``f(model, loss_fn, batch)`` returning a float, a
            dict of floats or an object with ``scalars()``.
        every: an interval for all quantities, or a dict quantity → interval (missing ones: 1).
        log_spaced: also measure at log-spaced steps.
        store: None (no store), a home path, or a :class:`genlab.store.Store`.
        name: the run's name (experiment ``monitor:NAME``).
        band, window: edge of stability when threshold ratio r = λ/threshold lies in [1 − band,
            1 + band] at ``window`` consecutive measurements; rise: progressive sharpening when λ
            has grown by this fraction over its first value while r < 1 − band.
        sharpness_tol, trace_matvecs: the Lanczos tolerance and the Hutchinson sample count.
        params, per_layer: parameter blocks whose curvature is measured beside the whole model's
            when "sharpness"/"trace" are due: ``params`` a list whose entries are each one block
            (a parameter or module name, a module, a parameter, or a list of these) or a dict
            label → such entry; ``per_layer=True`` adds one block per module owning parameters.
            Series ``sharpness/<block>`` (λ_max of the Hessian's diagonal block H_BB, warm-started
            per block; the Hessian's also for Adam), ``trace/<block>`` and ``trace_se/<block>``
            (:mod:`genlab.probes.blocks`).
        tensorboard: a log directory: every recorded scalar is also written there as a TensorBoard
            event (needs ``pip install 'genlab[tensorboard]'``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: Any,
        optimizer: torch.optim.Optimizer | None = None,
        probes: str | Sequence[str | CustomProbe] = "economy",
        every: int | Mapping[str, int] = 1,
        *,
        log_spaced: bool = False,
        store: Store | str | os.PathLike[str] | None = None,
        name: str = "run",
        band: float = 0.1,
        window: int = 3,
        rise: float = 0.2,
        sharpness_tol: float = 1e-6,
        trace_matvecs: int = 30,
        params: Sequence[ParamSpec] | Mapping[str, ParamSpec] | None = None,
        per_layer: bool = False,
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
        if not (0 < band < 1):
            raise InputError(f"band: got {band!r}; must be in (0, 1)")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError(f"window: got {window!r}; must be an integer >= 1")
        if not str(name):
            raise InputError("name: got an empty name; give a non-empty string")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.quantities, self.custom = _resolve_probes(probes)
        all_names = self.quantities + list(self.custom)
        if isinstance(every, Mapping):
            bad = [k for k in every if k not in all_names]
            if bad:
                raise InputError(f"every: unknown quantity {bad[0]!r}; monitored: {', '.join(all_names)}")
            self.schedules = {q: Schedule(every.get(q, 1), log_spaced) for q in all_names}
        else:
            self.schedules = {q: Schedule(every, log_spaced) for q in all_names}  # type: ignore[arg-type]
        self.name, self.band, self.window, self.rise = str(name), band, window, rise
        self.sharpness_tol, self.trace_matvecs = sharpness_tol, trace_matvecs
        self.t = 0
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.threshold: Threshold = optimizer_threshold(optimizer)
        self._ritz: torch.Tensor | None = None
        self.blocks = _blocks(model, params, per_layer)
        self._block_ritz: dict[str, torch.Tensor] = {}
        self._init = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}
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
            "threshold_rule": self.threshold.rule,
        }

    def _open_store(self, store: Any) -> tuple[Store | None, bool, int | None]:
        if store is None:
            return None, False, None
        own = not isinstance(store, Store)
        st = Store(store) if own else store
        cfg = self.config()
        h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return st, own, st.create_run(f"monitor:{self.name}", cfg, h, seed=0)

    # -- measuring --------------------------------------------------------------------------------
    def step(self, batch: Any, loss: torch.Tensor | float | None = None) -> dict[str, float]:
        """Advance one training step; measure the quantities due on ``batch``; return what was measured."""
        self.t += 1
        due = [q for q, s in self.schedules.items() if s.due(self.t)]
        if not due:
            return {}
        if loss is not None:
            lv = loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
            if lv.numel() != 1:
                raise InputError(f"loss: got a tensor of shape {tuple(lv.shape)}; must be a scalar")
        out = self._measure(due, batch, loss)
        for k, v in out.items():
            self.history.setdefault(k, []).append((self.t, v))
        if self._store is not None and self.run_id is not None:
            self._store.log_metrics(self.run_id, [(self.t, k, v) for k, v in out.items()])
        if self._tb is not None:
            self._tb.write(self.t, out)
        return out

    def _measure(self, due: list[str], batch: Any, loss: Any) -> dict[str, float]:
        model = self.model
        grads = {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()}
        modes = {n: m.training for n, m in model.named_modules()}
        try:
            with torch.random.fork_rng(devices=[]):
                return self._probe(due, batch, loss)
        finally:
            for n, p in model.named_parameters():
                p.grad = grads[n]
            for n, m in model.named_modules():
                m.training = modes[n]

    def _probe(self, due: list[str], batch: Any, loss: Any) -> dict[str, float]:
        m, lf, out = self.model, self.loss_fn, {}
        if "loss" in due:
            if loss is None:
                x, y = batch
                with torch.no_grad():
                    loss = lf(m(x), y)
            out["loss"] = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if "grad_norm" in due or "per_example" in due:
            st = per_example_stats(m, lf, batch)
            if "grad_norm" in due:
                out["grad_norm"] = float(st.mean_grad_flat().norm())
            if "per_example" in due:
                norms = st.sq_norms.sqrt()
                out.update({"per_example.norm_mean": float(norms.mean()), "per_example.norm_std": float(norms.std(unbiased=False)),
                            "per_example.norm_max": float(norms.max())})
        if "distance" in due:
            out["distance"] = distance_from_init(m, self._init).total
        if "coherence" in due:
            c = gradient_coherence(m, lf, batch)
            out.update({"coherence": c.alpha, "m_coherence": c.m_coherence})
        if "snr" in due:
            out["snr"] = gradient_snr(m, lf, batch).overall.pooled_snr
        if "sharpness" in due:
            out.update(self._sharpness(batch))
        if "trace" in due:
            r = hessian_trace(m, lf, batch, method="hutchinson", num_matvecs=self.trace_matvecs, seed=self.t)
            out.update({"trace": r.estimate, "trace_se": r.stderr})
        for b, names in self.blocks.items():
            if "sharpness" in due:
                e = hessian_eigenvalues(m, lf, batch, tol=self.sharpness_tol, v0=self._block_ritz.get(b), params=names)
                self._block_ritz[b] = e.ritz_vector  # type: ignore[assignment]
                out[f"sharpness/{b}"] = e.top
            if "trace" in due:
                r = hessian_trace(m, lf, batch, method="hutchinson", num_matvecs=self.trace_matvecs, seed=self.t, params=names)
                out.update({f"trace/{b}": r.estimate, f"trace_se/{b}": r.stderr})
        for name, fn in self.custom.items():
            if name in due:
                out.update(_scalars(fn(m, lf, batch), name))
        return out

    def _sharpness(self, batch: Any) -> dict[str, float]:
        self.threshold = optimizer_threshold(self.optimizer)
        th = self.threshold
        v0 = self._ritz
        if th.quantity == "preconditioned_sharpness":
            r = preconditioned_sharpness(self.model, self.loss_fn, batch, adam_preconditioner(self.optimizer, self.model),  # type: ignore[arg-type]
                                         tol=self.sharpness_tol, v0=v0)
        else:
            r = hessian_eigenvalues(self.model, self.loss_fn, batch, tol=self.sharpness_tol, v0=v0)
        self._ritz = r.ritz_vector
        out = {th.quantity: r.top}
        if th.value is not None:
            out["threshold"] = th.value
            out["threshold_ratio"] = r.top / th.value
        return out

    # -- verdicts and end -------------------------------------------------------------------------
    def verdicts(self) -> list[Verdict]:
        """Progressive sharpening and edge of stability from the history (none without a threshold)."""
        return live_verdicts(self.history, self.threshold, band=self.band, window=self.window, rise=self.rise)

    def close(self, status: str = "finished") -> list[Verdict]:
        """Store the verdicts and finish the run; returns the verdicts."""
        vs = self.verdicts()
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
