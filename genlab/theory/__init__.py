"""Closed forms and predicted bounds (numpy and scipy only — never torch)."""

from genlab.theory.splines import PiecewiseLinear, linear_spline_interpolant
from genlab.theory.stability import (
    interpolating_tv_bound,
    linear_stability_threshold,
    stability_weight,
    stable_tv_bound,
)

__all__ = [
    "PiecewiseLinear",
    "linear_spline_interpolant",
    "interpolating_tv_bound",
    "linear_stability_threshold",
    "stability_weight",
    "stable_tv_bound",
]
