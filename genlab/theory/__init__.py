"""Closed forms and predicted bounds (numpy and scipy only — never torch)."""

from genlab.theory.deep_linear import saxe_learning_time, saxe_mode_strength
from genlab.theory.diagonal_nets import min_l1_interpolator, min_l2_interpolator, q_alpha, q_function, qalpha_interpolator
from genlab.theory.double_descent import min_norm_risk, min_norm_risk_finite, mp_stieltjes, optimal_ridge, ridge_risk
from genlab.theory.forgetting import cyclic_forgetting_bound, forgetting_curve, null_space_projector, two_task_forgetting
from genlab.theory.gfs import scalar_gf_limit, scalar_gfs_sharpness
from genlab.theory.kernels import kernel_regression, kernel_regression_predict, nngp_relu, ntk_relu, relu_kernels
from genlab.theory.max_margin import HardMarginSVM, direction_error, hard_margin_svm, max_margin_direction
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

from genlab.theory.information import binary_entropy, bsc_mi, gaussian_mi

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
    "binary_entropy",
    "bsc_mi",
    "gaussian_mi",
]
