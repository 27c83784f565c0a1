"""Norm- and margin-based generalization measures of a trained classifier.

The families compared by Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020 ("Fantastic
generalization measures and where to find them", arXiv 1912.02178, Appendix C; Eq. numbers below
are theirs): parameter count, output margin, products and sums of Frobenius and spectral norms of
the layers' weight matrices (with and without division by the margin), distance from
initialization, parameter norm and path norm. Each is returned as the quantity Jiang et al.
correlate with the generalization gap (products as logarithms, so a zoo's values stay finite).

Weight matrices: every ``nn.Linear`` weight, and every convolution's weight reshaped to
(out_channels, in_channels·kernel) as Jiang et al. do; biases enter only the parameter norm,
the path norm and the parameter count. A network of d such layers has Π over i = 1..d.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from genlab.errors import InputError

JIANG = "Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020, arXiv 1912.02178"


def weight_matrices(model: nn.Module) -> dict[str, torch.Tensor]:
    """The layer weight matrices by module name (Linear as is, Conv reshaped to out × rest)."""
    out: dict[str, torch.Tensor] = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            out[name] = m.weight.detach().reshape(m.weight.shape[0], -1).double()
    if not out:
        raise InputError("model: has no Linear or Conv layer; norm measures need weight matrices")
    return out


def spectral_norm(w: torch.Tensor) -> float:
    """Largest singular value ‖W‖₂ (dense SVD: the layers measured here are small)."""
    return float(torch.linalg.matrix_norm(w, ord=2))


@torch.no_grad()
def margins(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Output margins f(x)_y − max_{j≠y} f(x)_j of every example (model in eval mode, restored)."""
    was = [m.training for m in model.modules()]
    model.eval()
    try:
        f = model(x).double()
    finally:
        for m, t in zip(model.modules(), was):
            m.training = t
    if f.ndim != 2 or f.shape[1] < 2:
        raise InputError(f"model: output must be (N, classes ≥ 2) logits, got shape {tuple(f.shape)}")
    true = f.gather(1, y.view(-1, 1)).squeeze(1)
    other = f.scatter(1, y.view(-1, 1), float("-inf")).max(1).values
    return true - other


def margin_quantile(model: nn.Module, x: torch.Tensor, y: torch.Tensor, q: float = 0.1) -> float:
    """γ: the q-quantile of the training margins (Jiang et al. use the 10th percentile, Sec. C.1)."""
    if not 0 < q < 1:
        raise InputError(f"q: got {q!r}; must be in (0, 1)")
    return float(torch.quantile(margins(model, x, y), q))


@torch.no_grad()
def path_norm(model: nn.Sequential, input_shape: tuple[int, ...]) -> float:
    """Path norm Σ_paths Π w² (Neyshabur, Tomioka & Srebro 2015, "Norm-based capacity control in
    neural networks", arXiv 1503.00036; Jiang et al. Eq. 44): every parameter squared, an all-ones
    input forwarded, the outputs summed. Exact for ReLU networks of Linear/Conv layers (all
    pre-activations are then ≥ 0 and the ReLUs pass everything); biases count as paths that start
    at the bias, as in Jiang et al.'s code. Refuses other activations."""
    import copy

    allowed = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ReLU, nn.Flatten, nn.Dropout, nn.Identity)
    for name, m in model.named_modules():
        if m is not model and not isinstance(m, (nn.Sequential, *allowed)):
            raise InputError(f"model: path_norm needs a ReLU network of Linear/Conv layers; module {name!r} is {type(m).__name__}")
    sq = copy.deepcopy(model).double().eval()
    for p in sq.parameters():
        p.pow_(2)
    return float(sq(torch.ones(1, *input_shape, dtype=torch.float64)).sum())


def norm_measures(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    init_state: Mapping[str, torch.Tensor] | None = None,
    margin_q: float = 0.1,
) -> dict[str, float]:
    """Jiang et al.'s norm and margin measures (Appendix C, Eqs. 20–45 as numbered there).

    Keys (d layers, W_i weight matrices, W_i⁰ at initialization, γ the 10th-percentile margin):

    - ``params``: number of parameters ω (Eq. 20); ``log_params`` its log.
    - ``inverse_margin``: 1/γ² (Eq. 22).
    - ``log_prod_fro``: log Π‖W_i‖_F² (Eq. 33); ``log_sum_fro``: log(d·(Π‖W_i‖_F²)^{1/d}) (Eq. 35).
    - ``log_prod_spec``: log Π‖W_i‖₂² (Eq. 25); ``log_sum_spec``: log(d·(Π‖W_i‖₂²)^{1/d}) (Eq. 27).
    - ``log_fro_over_margin``/``log_spec_over_margin``: the products divided by γ² (Eqs. 34, 26).
    - ``log_spec_orig``: log(Π‖W_i‖₂² · Σ‖W_i‖_F²/‖W_i‖₂² / γ²), the spectral bound of Bartlett,
      Foster & Telgarsky 2017 / Neyshabur et al. 2018 (Jiang et al. Eq. 23, constants dropped).
    - ``param_norm``: Σ over all parameters of w² (Eq. 42).
    - ``log_path_norm``: log of :func:`path_norm` (Eq. 44; ReLU Sequential models only).
    - ``dist_fro``: Σ‖W_i − W_i⁰‖_F² (Eq. 36) and ``dist_spec``: Σ‖W_i − W_i⁰‖₂² (Eq. 38), when
      ``init_state`` (the state dict at initialization) is given.

    Over-margin measures are nan when γ ≤ 0 (the margin is then undefined as a scale)."""
    ws = weight_matrices(model)
    d = len(ws)
    fro2 = {k: float(w.pow(2).sum()) for k, w in ws.items()}
    spec2 = {k: spectral_norm(w) ** 2 for k, w in ws.items()}
    gamma = margin_quantile(model, x, y, margin_q)
    lg2 = math.log(gamma**2) if gamma > 0 else float("nan")
    log_pf = sum(math.log(v) for v in fro2.values())
    log_ps = sum(math.log(v) for v in spec2.values())
    n_params = sum(p.numel() for p in model.parameters())
    out = {
        "params": float(n_params),
        "log_params": math.log(n_params),
        "inverse_margin": 1.0 / gamma**2 if gamma > 0 else float("nan"),
        "log_prod_fro": log_pf,
        "log_sum_fro": math.log(d) + log_pf / d,
        "log_prod_spec": log_ps,
        "log_sum_spec": math.log(d) + log_ps / d,
        "log_fro_over_margin": log_pf - lg2,
        "log_spec_over_margin": log_ps - lg2,
        "log_spec_orig": log_ps + math.log(sum(fro2[k] / spec2[k] for k in ws)) - lg2,
        "param_norm": float(sum(p.detach().double().pow(2).sum() for p in model.parameters())),
    }
    if isinstance(model, nn.Sequential):
        try:
            out["log_path_norm"] = math.log(path_norm(model, tuple(x.shape[1:])))
        except InputError:
            pass
    if init_state is not None:
        named = dict(model.named_modules())
        dist_f = dist_s = 0.0
        for k, w in ws.items():
            key = f"{k}.weight" if k else "weight"
            if key not in init_state:
                raise InputError(f"init_state: has no entry {key!r}")
            w0 = init_state[key].detach().reshape(named[k].weight.shape[0], -1).double()
            dist_f += float((w - w0).pow(2).sum())
            dist_s += spectral_norm(w - w0) ** 2
        out["dist_fro"] = dist_f
        out["dist_spec"] = dist_s
    return out
