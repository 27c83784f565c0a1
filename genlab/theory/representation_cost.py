"""The representation cost of a univariate function by a two-layer ReLU network.

Savarese, Evron, Soudry & Srebro 2019, "How do infinite width bounded norm networks look in
function space?" (COLT; arXiv 1902.05040), Sec. 3 (univariate characterization): for f(x) = Σ_k v_k[w_k x + b_k]_+ + c
with the biases b_k and c unregularized and the weight-norm cost C(θ) = ½Σ_k (w_k² + v_k²),
the least cost over networks of any width that represent f is
    R(f) = max(∫|f''(x)| dx, |f'(−∞) + f'(+∞)|).
So every finite network has ½Σ(w²+v²) ≥ R(f_θ) (C ≥ Σ|w_k v_k| by AM–GM, rescaling invariance).
"""

from __future__ import annotations

import numpy as np

from genlab.theory.splines import PiecewiseLinear


def relu_representation_cost(f: PiecewiseLinear) -> float:
    """R(f) = max(∫|f''|, |f'(−∞) + f'(+∞)|) for a continuous piecewise-linear f
    (Savarese et al. 2019, Sec. 3; cost convention ½Σ(w² + v²), biases free).

    Hand cases: R(|x|) = 2, R(relu) = 1, R(ax + c) = 2|a|."""
    _, jumps = f.knots()
    tv = float(np.abs(jumps).sum())
    return max(tv, abs(float(f.left_slope) + float(f.right_slope)))


def piecewise_linear_from_relu_units(
    w: np.ndarray, b: np.ndarray, v: np.ndarray, c: float = 0.0
) -> PiecewiseLinear:
    """The function f(x) = Σ_k v_k relu(w_k x + b_k) + c as a :class:`PiecewiseLinear`.

    Knots at −b_k/w_k (units with w_k = 0, or with −b_k/w_k overflowing, are constants); slope at −∞ is Σ_{w_k<0} v_k w_k and
    at +∞ is Σ_{w_k>0} v_k w_k."""
    w, b, v = (np.asarray(a, dtype=float).reshape(-1) for a in (w, b, v))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        live = (w != 0) & np.isfinite(-b / w)  # w underflowing against b: a constant unit
    const = float(c) + float(np.sum(v[~live] * np.maximum(b[~live], 0.0)))
    wl, bl, vl = w[live], b[live], v[live]
    left = float(np.sum((vl * wl)[wl < 0]))
    right = float(np.sum((vl * wl)[wl > 0]))

    def value(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        return np.maximum(x * wl + bl, 0.0) @ vl + const

    if wl.size == 0:
        xs = np.array([-1.0, 1.0])
        return PiecewiseLinear(xs, value(xs), 0.0, 0.0)
    xs = np.unique(-bl / wl)
    if xs.size == 1:
        xs = np.array([xs[0] - 1.0, xs[0], xs[0] + 1.0])
    return PiecewiseLinear(xs, value(xs), left, right)


def weight_norm_cost(w: np.ndarray, v: np.ndarray) -> float:
    """C(θ) = ½Σ_k (w_k² + v_k²), the cost of Savarese et al. 2019 (biases excluded)."""
    return 0.5 * float(np.sum(np.square(w)) + np.sum(np.square(v)))
