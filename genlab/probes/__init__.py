"""Measurements on any ``torch.nn.Module``: ``(model, loss_fn, data) -> numbers``.

Conventions: ``loss_fn(output, target)`` returns the mean loss; ``data`` is ``(inputs, targets)``,
an iterable of such pairs or a DataLoader; ``mode`` is ``"eval"``, ``"train"`` or ``"as-is"``; the
model is never modified. One setup serves every probe: :mod:`genlab.probes._setup`.
"""

from genlab.probes.dense import dense_eigenvalues, dense_hessian, dense_top_eigenvalue
from genlab.probes.directional import DirectionalSharpness, directional_sharpness
from genlab.probes.curvature import (
    BatchSharpness,
    EigenResult,
    MinibatchSharpness,
    batch_sharpness,
    hessian_eigenvalues,
    hessian_top_eigenvalue,
    minibatch_sharpness,
)
from genlab.probes.gfs import GFSResult, gfs_sharpness
from genlab.probes.spectrum import SpectrumResult, hessian_spectrum
from genlab.probes.trace import TraceResult, hessian_trace
from genlab.probes.trace import DiagonalResult, hessian_diagonal
from genlab.probes.data_importance import ExampleScores, average_over_seeds, el2n_scores, grand_scores
from genlab.probes._setup import ProbeInfo
from genlab.probes.distance import Distance, distance_from_init
from genlab.probes.gradient_stats import (
    Coherence,
    GradientSNR,
    SNRSummary,
    gradient_coherence,
    gradient_noise_tail_index,
    gradient_snr,
    minibatch_gradient_noise,
    tail_index,
)
from genlab.probes.kernels import empirical_ntk, kernel_alignment, kernel_distance, relative_weight_change
from genlab.probes.ntk_modes import KernelModes, ModeRates, kernel_modes, mode_rates, residual_projection
from genlab.probes.per_example import PerExampleStats, per_example_stats
from genlab.probes.signal_propagation import layer_correlations
from genlab.probes.radon import network_r_norm, stability_norm
from genlab.probes.function_space import (
    Knots,
    effective_knots,
    relu1d_knots,
    slope_total_variation,
    weighted_total_variation,
)
from genlab.probes.activations import layer_activations, layer_names
from genlab.probes.mutual_information import MIResult, binned_mi, kde_mi, noisy_mi
from genlab.probes.similarity import cka, linear_cka, rbf_cka
from genlab.probes.feature_structure import FilterClustering, FourierConcentration, filter_clustering, fourier_concentration
from genlab.probes.blocks import PerBlock, layer_blocks, select_parameters
from genlab.probes.measures import margins, norm_measures, path_norm
from genlab.probes.measures_alpha import PowerLawFit, fit_power_law, layer_alphas, mean_layer_alpha
from genlab.probes.measures_flatness import FlatnessResult, box_ascent, pac_bayes_sigma, sharpness_alpha
from genlab.probes.measures_pathways import pathway_distance
from genlab.probes.measures_suite import all_measures

__all__ = [
    "KernelModes",
    "ModeRates",
    "kernel_modes",
    "mode_rates",
    "residual_projection",
    "empirical_ntk",
    "kernel_alignment",
    "kernel_distance",
    "relative_weight_change",
    "BatchSharpness",
    "EigenResult",
    "batch_sharpness",
    "minibatch_sharpness",
    "directional_sharpness",
    "DirectionalSharpness",
    "MinibatchSharpness",
    "hessian_eigenvalues",
    "hessian_top_eigenvalue",
    "GFSResult",
    "gfs_sharpness",
    "SpectrumResult",
    "hessian_spectrum",
    "TraceResult",
    "hessian_trace",
    "average_over_seeds",
    "el2n_scores",
    "grand_scores",
    "Distance",
    "distance_from_init",
    "Coherence",
    "GradientSNR",
    "SNRSummary",
    "gradient_coherence",
    "gradient_noise_tail_index",
    "gradient_snr",
    "minibatch_gradient_noise",
    "tail_index",
    "PerExampleStats",
    "per_example_stats",
    "dense_hessian",
    "dense_eigenvalues",
    "dense_top_eigenvalue",
    "ExampleScores",
    "ProbeInfo",
    "Knots",
    "relu1d_knots",
    "slope_total_variation",
    "weighted_total_variation",
    "layer_correlations",
    "network_r_norm",
    "stability_norm",
    "effective_knots",
    "layer_activations",
    "layer_names",
    "MIResult",
    "binned_mi",
    "kde_mi",
    "noisy_mi",
    "cka",
    "linear_cka",
    "rbf_cka",
    "DiagonalResult",
    "hessian_diagonal",
    "FilterClustering",
    "FourierConcentration",
    "filter_clustering",
    "fourier_concentration",
    "PerBlock",
    "layer_blocks",
    "select_parameters",
    "margins",
    "norm_measures",
    "path_norm",
    "PowerLawFit",
    "fit_power_law",
    "layer_alphas",
    "mean_layer_alpha",
    "FlatnessResult",
    "box_ascent",
    "pac_bayes_sigma",
    "sharpness_alpha",
    "pathway_distance",
    "all_measures",
]
