"""Closed forms and predicted bounds (numpy and scipy only — never torch)."""

from genlab.theory.deep_linear import saxe_learning_time, saxe_mode_strength
from genlab.theory.diagonal_nets import min_l1_interpolator, min_l2_interpolator, q_alpha, q_function, qalpha_interpolator
from genlab.theory.double_descent import min_norm_risk, min_norm_risk_finite, mp_stieltjes, optimal_ridge, ridge_risk
from genlab.theory.forgetting import cyclic_forgetting_bound, forgetting_curve, null_space_projector, two_task_forgetting
from genlab.theory.gfs import scalar_gf_limit, scalar_gfs_sharpness
from genlab.theory.kernels import kernel_regression, kernel_regression_predict, nngp_relu, ntk_relu, relu_kernels
from genlab.theory.max_margin import HardMarginSVM, direction_error, hard_margin_svm, max_margin_direction
from genlab.theory.max_margin import least_distance
from genlab.theory.lexicographic import LexicographicMargin, lexicographic_max_margin
from genlab.theory.sequential_max_margin import offline_max_margin, project_onto_task, sequential_max_margin
from genlab.theory.quantization import aciq_optimal_clip, clipping_error, clipping_mse, rounding_error, uniform_quantize
from genlab.theory.representation_cost import (
    piecewise_linear_from_relu_units,
    relu_representation_cost,
    weight_norm_cost,
)
from genlab.theory.splines import PiecewiseLinear, linear_spline_interpolant
from genlab.theory.stability import (
    interpolating_tv_bound,
    linear_stability_threshold,
    stability_weight,
    stable_tv_bound,
)
from genlab.theory.denoiser import empirical_mmse, min_norm_denoiser_1d
from genlab.theory.multivariate_stability import multivariate_stability_weight, weighted_laplacian_norm
from genlab.theory.r_norm import r_norm, relu_hyperplanes
from genlab.theory.signal_propagation import correlation_map, depth_scale, optimal_initialization
from genlab.theory.thresholds import (
    adam_sharpness_threshold,
    adam_step_threshold,
    delayed_gd_sharpness_threshold,
    delayed_gd_step_threshold,
    delayed_momentum_step_threshold,
    gd_sharpness_threshold,
    gd_step_threshold,
    heavy_ball_sharpness_threshold,
    heavy_ball_step_threshold,
    nesterov_sharpness_threshold,
    nesterov_step_threshold,
)

from genlab.theory.information import binary_entropy, bsc_mi, gaussian_mi
from genlab.theory.dual_kernels import DualActivation, deep_dual_kernels, dual_activation, dual_nngp, dual_ntk
from genlab.theory.stragglers import (
    dropcompute_completed_fraction,
    dropcompute_speedup,
    dropcompute_step_time,
    expected_max,
    expected_max_normal,
    sync_step_time,
)

__all__ = [
    "kernel_regression",
    "kernel_regression_predict",
    "nngp_relu",
    "ntk_relu",
    "relu_kernels",
    "min_l1_interpolator",
    "min_l2_interpolator",
    "q_alpha",
    "q_function",
    "qalpha_interpolator",
    "scalar_gf_limit",
    "scalar_gfs_sharpness",
    "saxe_learning_time",
    "saxe_mode_strength",
    "min_norm_risk",
    "min_norm_risk_finite",
    "mp_stieltjes",
    "optimal_ridge",
    "ridge_risk",
    "cyclic_forgetting_bound",
    "forgetting_curve",
    "null_space_projector",
    "two_task_forgetting",
    "HardMarginSVM",
    "direction_error",
    "hard_margin_svm",
    "max_margin_direction",
    "aciq_optimal_clip",
    "clipping_error",
    "clipping_mse",
    "rounding_error",
    "uniform_quantize",
    "piecewise_linear_from_relu_units",
    "relu_representation_cost",
    "weight_norm_cost",
    "PiecewiseLinear",
    "linear_spline_interpolant",
    "interpolating_tv_bound",
    "linear_stability_threshold",
    "stability_weight",
    "stable_tv_bound",
    "empirical_mmse",
    "min_norm_denoiser_1d",
    "multivariate_stability_weight",
    "weighted_laplacian_norm",
    "r_norm",
    "relu_hyperplanes",
    "correlation_map",
    "depth_scale",
    "optimal_initialization",
    "least_distance",
    "LexicographicMargin",
    "lexicographic_max_margin",
    "offline_max_margin",
    "project_onto_task",
    "sequential_max_margin",
    "adam_sharpness_threshold",
    "adam_step_threshold",
    "delayed_gd_sharpness_threshold",
    "delayed_gd_step_threshold",
    "delayed_momentum_step_threshold",
    "gd_sharpness_threshold",
    "gd_step_threshold",
    "heavy_ball_sharpness_threshold",
    "heavy_ball_step_threshold",
    "nesterov_sharpness_threshold",
    "nesterov_step_threshold",
    "binary_entropy",
    "bsc_mi",
    "gaussian_mi",
    "DualActivation",
    "deep_dual_kernels",
    "dual_activation",
    "dual_nngp",
    "dual_ntk",
    "dropcompute_completed_fraction",
    "dropcompute_speedup",
    "dropcompute_step_time",
    "expected_max",
    "expected_max_normal",
    "sync_step_time",
]
