"""Every generalization measure of genlab on one trained classifier, as one dict.

The suite Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020 (arXiv 1912.02178) compare, computed by
:mod:`genlab.probes.measures` (norms, margins, path norm, distance from init),
:mod:`genlab.probes.measures_flatness` (PAC-Bayes and sharpness flatness), plus genlab's other
probes wrapped as measures — λ_max and tr of the loss Hessian (Keskar et al. 2017, arXiv
1609.04836), gradient coherence (Chatterjee & Zielinski 2020, arXiv 2008.01217), gradient SNR
(Liu et al. 2020, arXiv 2001.07384), noise tail index (Simsekli et al. 2019, arXiv 1901.06053) —
WeightWatcher's layer α (:mod:`genlab.probes.measures_alpha`) and the training-data-only pathway
distance (:mod:`genlab.probes.measures_pathways`). Every value uses the training data only.

``EXPECTED_SIGN[name]`` is the direction its source predicts for the rank correlation with the
generalization gap: +1 when a larger value should mean a larger gap (complexity measures), −1 when
a larger value should mean a smaller gap (coherence, SNR).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from genlab.probes.distance import distance_from_init
from genlab.probes.measures import norm_measures
from genlab.probes.measures_alpha import mean_layer_alpha
from genlab.probes.measures_flatness import pac_bayes_bound, pac_bayes_sigma, sharpness_alpha
from genlab.probes.measures_pathways import pathway_distance

EXPECTED_SIGN: dict[str, int] = {
    "log_params": 1, "inverse_margin": 1, "log_prod_fro": 1, "log_sum_fro": 1, "log_prod_spec": 1,
    "log_sum_spec": 1, "log_fro_over_margin": 1, "log_spec_over_margin": 1, "log_spec_orig": 1,
    "param_norm": 1, "log_path_norm": 1, "dist_fro": 1, "dist_spec": 1,
    "pacbayes_flatness": 1, "pacbayes_mag_flatness": 1, "log_pacbayes_bound": 1,
    "sharpness_flatness": 1, "sharpness_mag_flatness": 1,
    "lambda_max": 1, "hessian_trace": 1, "coherence": -1, "gradient_snr": -1,
    # Simsekli et al.: heavier-tailed noise (smaller α) goes with better generalization
    "noise_tail_index": 1,
    # Martin & Mahoney: smaller layer α (within 2..6) goes with better test accuracy
    "layer_alpha": 1,
    # Li, Fan & Zhou: pathway distance falls as generalization rises
    "pathway_distance": 1,
}

#: Measure families for the headline comparison of Jiang et al. (Sec. 7: flatness beats norm products)
FAMILIES: dict[str, tuple[str, ...]] = {
    "norm product": ("log_prod_fro", "log_prod_spec", "log_spec_orig", "log_fro_over_margin", "log_spec_over_margin"),
    "flatness": ("pacbayes_flatness", "pacbayes_mag_flatness", "sharpness_flatness", "sharpness_mag_flatness"),
}

ALL: tuple[str, ...] = tuple(EXPECTED_SIGN)


def _ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


def all_measures(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    init_state: Mapping[str, torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _ce,
    only: Sequence[str] | None = None,
    seed: int = 0,
    draws: int = 8,
    ascent_steps: int = 10,
    curvature_matvecs: int = 30,
) -> dict[str, float]:
    """The measures named in ``only`` (default :data:`ALL`) of ``model`` on the training set
    (x, y); a measure that cannot be computed on this model is nan."""
    from genlab.probes.curvature import hessian_eigenvalues
    from genlab.probes.gradient_stats import gradient_coherence, gradient_noise_tail_index, gradient_snr
    from genlab.probes.trace import hessian_trace

    want = set(ALL if only is None else only)
    out: dict[str, float] = {}
    norms = norm_measures(model, x, y, init_state)
    out.update({k: v for k, v in norms.items() if k in want})
    if want & {"pacbayes_flatness", "log_pacbayes_bound"}:
        pb = pac_bayes_sigma(model, x, y, draws=draws, seed=seed)
        out["pacbayes_flatness"] = pb.flatness
        if init_state is not None:
            dist_all = distance_from_init(model, init_state).total ** 2
            out["log_pacbayes_bound"] = math.log(pac_bayes_bound(dist_all, pb.scale, len(y)))
    if "pacbayes_mag_flatness" in want:
        out["pacbayes_mag_flatness"] = pac_bayes_sigma(model, x, y, draws=draws, magnitude_aware=True, seed=seed).flatness
    if "sharpness_flatness" in want:
        out["sharpness_flatness"] = sharpness_alpha(model, loss_fn, x, y, steps=ascent_steps, seed=seed).flatness
    if "sharpness_mag_flatness" in want:
        out["sharpness_mag_flatness"] = sharpness_alpha(model, loss_fn, x, y, steps=ascent_steps, magnitude_aware=True, seed=seed).flatness
    data = (x, y)
    if "lambda_max" in want:
        out["lambda_max"] = hessian_eigenvalues(model, loss_fn, data, tol=1e-3, max_iter=curvature_matvecs, seed=seed).top
    if "hessian_trace" in want:
        out["hessian_trace"] = hessian_trace(model, loss_fn, data, num_matvecs=curvature_matvecs, seed=seed).estimate
    if "coherence" in want:
        out["coherence"] = gradient_coherence(model, loss_fn, data).alpha
    if "gradient_snr" in want:
        out["gradient_snr"] = gradient_snr(model, loss_fn, data).overall.pooled_snr
    if "noise_tail_index" in want:
        out["noise_tail_index"] = gradient_noise_tail_index(model, loss_fn, data, batch_size=max(len(y) // 16, 1), seed=seed, mode="eval")
    if "layer_alpha" in want:
        out["layer_alpha"] = mean_layer_alpha(model)
    if "pathway_distance" in want and isinstance(model, nn.Sequential):
        out["pathway_distance"] = pathway_distance(model, x, y)
    return {k: float(out.get(k, float("nan"))) for k in (ALL if only is None else only)}
