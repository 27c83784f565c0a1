"""``diagnose``: genlab's probes once on a trained model, into one store run with a report section.

Measured on (at most ``max_examples`` of) the training data, in eval mode unless said:
the top-``k`` Hessian eigenvalues and the SLQ spectral density; the Hessian trace with its
standard error (Hutchinson); the sharpness λ_max(H_BB) of each layer's diagonal block; gradient
coherence (Chatterjee & Zielinski 2020, arXiv 2008.01217) and SNR (Liu et al. 2020, arXiv
2001.07384); the tail index α̂ of minibatch gradient noise (Simsekli, Sagun & Gurbuzbalaban 2019,
arXiv 1901.06053; train mode, as SGD sees it) with its 95% interval, against Gaussian noise of the
same per-coordinate (robust) scale; coherence against its level with the
targets randomly permuted; for classifiers the output margins f_y − max_{j≠y} f_j (train and test); EL2N scores
(Paul, Ganguli & Dziugaite 2021, arXiv 2107.07075) with the indices of the hardest examples; the
distance from ``init_state`` when given; the test loss when ``test_data`` is given.

Everything is computed before the store is touched: bad input or an error leaves nothing written.
The model is never modified (parameters, buffers, modes, flags, ``.grad``) and the global RNG
streams are not consumed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from genlab.errors import InputError
from genlab.probes._setup import load_data, take
from genlab.probes.curvature import hessian_eigenvalues
from genlab.probes.data_importance import el2n_scores
from genlab.probes.distance import distance_from_init
from genlab.monitor.noise import tail_scalars as _tail_scalars
from genlab.monitor.verdicts import coherence_verdict, tail_verdict
from genlab.probes.gradient_stats import gradient_coherence, gradient_snr, minibatch_gradient_noise
from genlab.probes.spectrum import hessian_spectrum
from genlab.probes.trace import hessian_trace
from genlab.store import Store, Verdict

COHERENCE_FACTOR = 2.0  # coherence is "above its random-label level" at α ≥ 2 × α with permuted targets


@dataclass
class Diagnosis:
    """What :func:`diagnose` measured: ``scalars`` (also the run's metrics), the arrays behind the
    figures, the findings, and the store run (None without a store)."""

    scalars: dict[str, float]
    top_eigenvalues: np.ndarray
    density: tuple[np.ndarray, np.ndarray]  # grid, density
    per_layer_sharpness: dict[str, float]
    el2n: np.ndarray
    el2n_indices: np.ndarray
    hardest: list[int]  # dataset indices (positions when the data carries none), hardest first
    margins: dict[str, np.ndarray] = field(default_factory=dict)  # "train"/"test" → per-example margins
    verdicts: list[Verdict] = field(default_factory=list)
    run_id: int | None = None


def _data(data: Any, arg: str, limit: int | None) -> tuple[Any, Any, torch.Tensor]:
    """(inputs, targets, dataset indices) of the first ``limit`` examples of ``data``."""
    try:
        d = load_data(data)
    except InputError as e:
        raise InputError(str(e).replace("data:", f"{arg}:", 1)) from None
    x, y = d.whole()
    idx = d.indices if d.indices is not None else torch.arange(d.n)
    if limit is not None and d.n > limit:
        x, y, idx = take(x, slice(0, limit)), y[:limit], idx[:limit]
    return x, y, idx


def _check_batch(model: torch.nn.Module, loss_fn: Any, x: Any, y: Any, arg: str) -> None:
    """One forward pass on two examples: a data/model mismatch is one line naming ``arg``."""
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            was = {m: m.training for m in model.modules()}
            model.eval()
            try:
                loss = loss_fn(model(take(x, slice(0, 2))), y[:2])
            finally:
                for m, t in was.items():
                    m.training = t
    except Exception as e:  # the user's model raised on the user's data
        raise InputError(f"{arg}: the model cannot take this data ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise InputError(f"loss_fn: returned {type(loss).__name__} of shape {tuple(getattr(loss, 'shape', ()))}; must be a scalar (the mean loss)")


def output_margins(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """f_y(x) − max_{j≠y} f_j(x) per example (negative = misclassified)."""
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y.view(-1, 1), -math.inf)
    return (true - other.max(1).values).double().numpy()


def _is_classifier(out: Any, y: torch.Tensor) -> bool:
    return (isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] > 1 and y.ndim == 1
            and not y.is_floating_point() and not y.is_complex())


@torch.no_grad()
def _forward(model: torch.nn.Module, x: Any) -> Any:
    was = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            return model(x)
    finally:
        for m, t in was.items():
            m.training = t


def tail_scalars(noise: torch.Tensor, seed: int) -> dict[str, float]:
    """α̂ of the noise rows with its 95% interval and its Gaussian control
    (:func:`genlab.monitor.noise.tail_scalars`), the control drawn from ``seed + 1``."""
    return _tail_scalars(noise, torch.Generator().manual_seed(seed + 1))


def _validate(model: Any, loss_fn: Any, k: int, max_examples: int | None, hardest: int, name: str) -> None:
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model: got {type(model).__name__}; must be a torch.nn.Module")
    if not callable(loss_fn):
        raise InputError(f"loss_fn: got {type(loss_fn).__name__}; must be callable(output, target)")
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError("model: has no trainable parameters (requires_grad=True); nothing to diagnose")
    for arg, v, lo in (("k", k, 1), ("hardest", hardest, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError(f"{arg}: got {v!r}; must be an integer >= {lo}")
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 8):
        raise InputError(f"max_examples: got {max_examples!r}; must be an integer >= 8 or None (all)")
    if not str(name):
        raise InputError("name: got an empty name; give a non-empty string")


def diagnose(
    model: torch.nn.Module,
    loss_fn: Any,
    train_data: Any,
    test_data: Any = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    *,
    store: Store | str | os.PathLike[str] | None = None,
    name: str = "model",
    k: int = 5,
    max_examples: int | None = 512,
    hardest: int = 10,
    trace_matvecs: int = 30,
    spectrum_probes: int = 3,
    lanczos_steps: int = 40,
    seed: int = 0,
) -> Diagnosis:
    """Diagnose a trained ``model`` on ``train_data`` (first ``max_examples`` examples); see the
    module docstring for what is measured. ``store`` (a home path or a :class:`Store`) receives
    one run ``diagnose:NAME`` with the scalars as metrics at step 0, the findings and three
    figures (spectrum, margins, EL2N); :func:`genlab.report.write_report` shows it."""
    _validate(model, loss_fn, k, max_examples, hardest, name)
    x, y, idx = _data(train_data, "train_data", max_examples)
    _check_batch(model, loss_fn, x, y, "train_data")
    test = None
    if test_data is not None:
        tx, ty, _ = _data(test_data, "test_data", max_examples)
        _check_batch(model, loss_fn, tx, ty, "test_data")
        test = (tx, ty)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if init_state is not None:
        missing = [n for n in trainable if n not in init_state]
        if missing:
            raise InputError(f"init_state: has no entry {missing[0]!r}; give the model's state_dict at initialization")
        bad = [n for n in trainable if tuple(init_state[n].shape) != tuple(trainable[n].shape)]
        if bad:
            raise InputError(f"init_state: {bad[0]!r} has shape {tuple(init_state[bad[0]].shape)}, the model's "
                             f"{tuple(trainable[bad[0]].shape)}")
    n = int(y.shape[0])
    data = (x, y)
    s: dict[str, float] = {"examples": float(n)}
    with torch.random.fork_rng(devices=[]):
        eig = hessian_eigenvalues(model, loss_fn, data, k=min(k, sum(p.numel() for p in trainable.values())), seed=seed)
        top = np.asarray(eig.eigenvalues, dtype=float)
        s.update({f"eig{i}": float(v) for i, v in enumerate(top)})
        s["sharpness"] = float(top[0])
        steps = min(lanczos_steps, sum(p.numel() for p in trainable.values()))
        spec = hessian_spectrum(model, loss_fn, data, num_probes=spectrum_probes, lanczos_steps=steps, seed=seed)
        tr = hessian_trace(model, loss_fn, data, method="hutchinson", num_matvecs=trace_matvecs, seed=seed)
        s.update({"trace": float(tr.estimate), "trace_se": float(tr.stderr)})
        blocks = hessian_eigenvalues(model, loss_fn, data, per_layer=True, seed=seed)
        per_layer = {b: float(r.top) for b, r in blocks.items()}
        s.update({f"sharpness/{b}": v for b, v in per_layer.items()})
        coh = gradient_coherence(model, loss_fn, data)
        s.update({"coherence": coh.alpha, "m_coherence": coh.m_coherence})
        s["snr"] = gradient_snr(model, loss_fn, data).overall.pooled_snr
        s.update(tail_scalars(minibatch_gradient_noise(model, loss_fn, data, max(1, n // 16), seed), seed))
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))
        s["coherence_random"] = gradient_coherence(model, loss_fn, (x, y[perm])).alpha
        out = _forward(model, x)
        s["train_loss"] = float(loss_fn(out, y))
        margins: dict[str, np.ndarray] = {}
        el2n = np.full(n, np.nan)
        if _is_classifier(out, y):
            margins["train"] = output_margins(out, y)
            el2n = el2n_scores(model, data).double().numpy()  # type: ignore[union-attr]
            if test is not None:
                tout = _forward(model, test[0])
                margins["test"] = output_margins(tout, test[1])
        if test is not None:
            s["test_loss"] = float(loss_fn(_forward(model, test[0]), test[1]))
            s["generalization_gap"] = s["test_loss"] - s["train_loss"]
        for part, m in margins.items():
            s.update({f"margin_{part}.min": float(m.min()), f"margin_{part}.median": float(np.median(m)),
                      f"margin_{part}.q10": float(np.quantile(m, 0.1)), f"margin_{part}.error": float((m <= 0).mean())})
        order = np.argsort(-el2n, kind="stable") if np.isfinite(el2n).any() else np.array([], dtype=int)
        hard = [int(idx[i]) for i in order[:hardest]]
        if np.isfinite(el2n).any():
            s.update({"el2n.mean": float(el2n.mean()), "el2n.max": float(el2n.max())})
        if init_state is not None:
            d = distance_from_init(model, init_state)
            norm0 = math.sqrt(sum(float(init_state[n_].double().pow(2).sum()) for n_ in trainable))
            s.update({"distance": d.total, "relative_distance": d.total / norm0 if norm0 > 0 else math.inf})
            s.update({f"distance/{b}": v for b, v in d.layers.items()})
    result = Diagnosis(s, top, (spec.grid, spec.density), per_layer, el2n, idx.numpy(), hard, margins)
    result.verdicts = findings(result)
    if store is not None:
        result.run_id = save_run(result, model, store, name, k=k, max_examples=max_examples, seed=seed,
                              has_test=test is not None, has_init=init_state is not None)
    return result


def findings(d: Diagnosis) -> list[Verdict]:
    """The numbers put in words: findings (no paper predicts this model's values)."""
    s = d.scalars
    once = {k: [(0, v)] for k, v in s.items()}  # the Monitor's rules on a history of one measurement
    out = [replace(v, measured=v.measured.replace("became true at step 0", "true").replace("not observed", "not true")
                   .replace("; last ", "; "))
           for v in tail_verdict(once) + coherence_verdict(once, COHERENCE_FACTOR)]
    if d.per_layer_sharpness:
        b, v = max(d.per_layer_sharpness.items(), key=lambda kv: kv[1])
        out.append(Verdict(
            claim="sharpest layer", predicted=f"whole-model λ_max = {s['sharpness']:.4g} (≥ every layer's, by interlacing)",
            measured=f"layer {b}: λ_max(H_BB) = {v:.4g}", tolerance="—", passed=v <= s["sharpness"] * (1 + 1e-3),
            paper="Yao et al. 2020, PyHessian (arXiv 1912.07145)", kind="finding"))
    if d.hardest:
        out.append(Verdict(
            claim="hardest training examples by EL2N", predicted="EL2N = ‖softmax(f(x)) − onehot(y)‖ in [0, √2]",
            measured="indices " + ", ".join(map(str, d.hardest)) + f" (EL2N max {s['el2n.max']:.3g}, mean {s['el2n.mean']:.3g})",
            tolerance="—", passed=True, paper="Paul, Ganguli & Dziugaite 2021 (arXiv 2107.07075)", kind="finding"))
    if "train" in d.margins:
        out.append(Verdict(
            claim="training margins", predicted="margin f_y − max_{j≠y} f_j > 0 for a correctly classified example",
            measured=f"min {s['margin_train.min']:.3g}, 10% quantile {s['margin_train.q10']:.3g}, median "
                     f"{s['margin_train.median']:.3g}; {100 * s['margin_train.error']:.1f}% ≤ 0",
            tolerance="—", passed=s["margin_train.error"] == 0, paper="", kind="finding"))
    return out


def save_run(d: Diagnosis, model: torch.nn.Module, store: Any, name: str, **cfg: Any) -> int:
    """Store ``d`` as one finished run ``diagnose:NAME`` (metrics at step 0, findings, figures, arrays)."""
    import hashlib
    import json

    from genlab.diagnosis.figures import save_figures

    own = not isinstance(store, Store)
    st = Store(store) if own else store
    config = {"model": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
              **cfg}
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    try:
        rid = st.create_run(f"diagnose:{name}", config, h, seed=int(cfg.get("seed", 0)))
        st.log_metrics(rid, [(0, k, v) for k, v in d.scalars.items()])
        st.add_checks(rid, d.verdicts)
        folder = st.run_dir(rid)
        for fname, path in save_figures(d, folder).items():
            st.add_artifact(rid, "figure", fname, path)
        arrays = folder / "diagnosis.json"
        arrays.write_text(json.dumps({"hardest": d.hardest, "el2n": [None if not math.isfinite(v) else v for v in d.el2n.tolist()],
                                      "indices": d.el2n_indices.tolist(), "top_eigenvalues": d.top_eigenvalues.tolist(),
                                      "margins": {k: v.tolist() for k, v in d.margins.items()}}))
        st.add_artifact(rid, "data", "diagnosis.json", arrays)
        st.finish_run(rid, "finished")
    finally:
        if own:
            st.close()
    return rid


__all__ = ["Diagnosis", "diagnose", "findings", "output_margins"]
