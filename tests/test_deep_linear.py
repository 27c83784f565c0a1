"""saxe_mode_strength / saxe_learning_time against an ODE solve of τ du/dt = 2u(s − u) (scipy
solve_ivp, an independent numerical method) and hand values."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from genlab.theory.deep_linear import saxe_learning_time, saxe_mode_strength


def test_initial_and_limit():
    assert saxe_mode_strength(0.0, 2.0, 1e-3, 10.0) == pytest.approx(1e-3)
    assert saxe_mode_strength(1e6, 2.0, 1e-3, 10.0) == pytest.approx(2.0)


@pytest.mark.parametrize("s,u0,tau", [(3.0, 1e-3, 50.0), (0.5, 1e-2, 20.0), (1.0, 0.9, 1.0)])
def test_matches_ode(s, u0, tau):
    t = np.linspace(0, 12 * tau / s, 200)
    sol = solve_ivp(lambda _, u: 2 * u * (s - u) / tau, (0, t[-1]), [u0], t_eval=t, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(saxe_mode_strength(t, s, u0, tau), sol.y[0], rtol=1e-6, atol=1e-9)


def test_learning_time_inverts_trajectory():
    s, u0, tau = 2.0, 1e-3, 30.0
    t_half = saxe_learning_time(s, u0, s / 2, tau)
    # hand: (τ/2s) ln[(s/2)(s − u0) / (u0 · s/2)] = (30/4) ln(1999)
    assert t_half == pytest.approx(7.5 * np.log(1999.0))
    assert saxe_mode_strength(t_half, s, u0, tau) == pytest.approx(s / 2, rel=1e-12)
    with pytest.raises(ValueError):
        saxe_learning_time(s, u0, s, tau)
