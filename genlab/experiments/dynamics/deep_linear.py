"""deep-linear: the sigmoidal, mode-by-mode learning of a two-layer linear network.

Claim (Saxe, McClelland & Ganguli 2013, "Exact solutions to the nonlinear dynamics of learning in
deep linear neural networks", arXiv 1312.6120, Sec. 2): with whitened inputs and a small,
balanced, decoupled initialization, each input–output mode of singular value s has strength
u(t) = s·e^{2st/τ}/(e^{2st/τ} − 1 + s/u₀), τ = 1/η, and is learned (u₀ → u_f) in time
(τ/2s)·ln[u_f(s − u₀)/(u₀(s − u_f))] — stronger modes first, each in a sudden transition.

Setup: N inputs with XᵀX/N = I exactly, targets y = Ax, A = U·diag(s)·Vᵀ; network W₂W₁x without
biases; L = (1/2N)Σ‖y − W₂W₁x‖² (so ∇L is the population gradient of Saxe et al.); full-batch
GD with the Trainer. Mode strengths measured as u_α = u_αᵀW₂W₁v_α. A second run from a small
random (not decoupled) initialization checks that the modes are still learned in order of s.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator
from scipy.stats import spearmanr

from genlab.config import PositiveFloats
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.theory.deep_linear import saxe_learning_time, saxe_mode_strength
from genlab.train import Measurement, Trainer
from genlab.train.losses import half_squared_loss

PAPER = "Saxe, McClelland & Ganguli 2013, arXiv 1312.6120 (ICLR 2014), Sec. 2"


class DeepLinearConfig(ExperimentConfig):
    """Config of :class:`DeepLinear`."""

    singular_values: PositiveFloats = Field(default_factory=lambda: [3.0, 2.0, 1.0, 0.5], min_length=1)
    d_in: int = Field(8, ge=1)
    d_hidden: int = Field(8, ge=1)
    d_out: int = Field(6, ge=1)
    n: int = Field(64, ge=1, description="number of (whitened) training inputs, ≥ d_in")
    u0: float = Field(1e-3, gt=0, description="initial strength of every mode (decoupled run)")
    random_init_scale: float = Field(0.03, gt=0, description="entry std of the random-init run")
    lr: float = Field(0.005, gt=0, description="GD step η (τ = 1/η)")
    horizon: float = Field(1.5, gt=0, description="steps = horizon × predicted time for the weakest mode to reach 0.99 s")
    tolerance: float = Field(0.05, gt=0, description="allowed max |u − u_theory|/s and relative learning-time error")

    @model_validator(mode="after")
    def _fits(self) -> "DeepLinearConfig":
        r = len(self.singular_values)
        for name in ("d_in", "d_hidden", "d_out"):
            if getattr(self, name) < r:
                raise ValueError(f"{name} must be >= len(singular_values) = {r}, got {getattr(self, name)}")
        if self.n < self.d_in:
            raise ValueError(f"n must be >= d_in = {self.d_in} (whitened inputs), got {self.n}")
        return self


class DeepLinear(Experiment):
    name = "deep-linear"
    title = "Deep linear networks learn mode by mode along Saxe's sigmoids"
    paper = PAPER
    notes = {
        "every mode strength follows": ("Saxe et al. Eq. 6: each mode follows a sigmoid from u₀ to its singular value s",
                                        "a step size too large for forward Euler to track the flow", "lower lr"),
        "time to learn each mode": ("the closed-form time for a mode to reach s/2", "discretization error at large lr", "lower lr"),
        "learned in order of singular value": ("that stronger modes are learned first even from a random init",
                                               "an init scale so large that modes are not learned one by one", "lower random_init_scale"),
    }
    captions = {"modes.png": "Mode strengths per GD step with Saxe et al.'s sigmoids dashed, for the decoupled and the random init: all three claims."}
    Config = DeepLinearConfig

    def run(self, config: DeepLinearConfig, recorder: Any) -> Result:
        s = np.asarray(config.singular_values, dtype=float)
        r = s.size
        if r > min(config.d_in, config.d_out, config.d_hidden) or config.n < config.d_in:
            raise ValueError("need len(singular_values) ≤ d_in, d_out, d_hidden and n ≥ d_in")
        rng = np.random.default_rng(config.seed)
        U = np.linalg.qr(rng.standard_normal((config.d_out, config.d_out)))[0][:, :r]
        V = np.linalg.qr(rng.standard_normal((config.d_in, config.d_in)))[0][:, :r]
        R = np.linalg.qr(rng.standard_normal((config.d_hidden, config.d_hidden)))[0][:, :r]
        A = U @ np.diag(s) @ V.T
        Q = np.linalg.qr(rng.standard_normal((config.n, config.d_in)))[0]
        X = Q * np.sqrt(config.n)  # XᵀX/N = I
        Y = X @ A.T
        x, y = torch.tensor(X), torch.tensor(Y)
        tau = 1.0 / config.lr
        t_end = saxe_learning_time(float(s.min()), config.u0, 0.99 * float(s.min()), tau)
        steps = int(np.ceil(config.horizon * t_end))
        Ut, Vt = torch.tensor(U), torch.tensor(V)

        def make(init: str) -> torch.nn.Sequential:
            net = torch.nn.Sequential(
                torch.nn.Linear(config.d_in, config.d_hidden, bias=False),
                torch.nn.Linear(config.d_hidden, config.d_out, bias=False),
            ).double()
            with torch.no_grad():
                if init == "decoupled":  # W₁ = √u₀ Σ r_α v_αᵀ, W₂ = √u₀ Σ u_α r_αᵀ: balanced, u_α(0) = u₀
                    a0 = np.sqrt(config.u0)
                    net[0].weight.copy_(torch.tensor(a0 * R @ V.T))
                    net[1].weight.copy_(torch.tensor(a0 * U @ R.T))
                else:
                    g = np.random.default_rng(config.seed + 1)
                    net[0].weight.copy_(torch.tensor(config.random_init_scale * g.standard_normal((config.d_hidden, config.d_in))))
                    net[1].weight.copy_(torch.tensor(config.random_init_scale * g.standard_normal((config.d_out, config.d_hidden))))
            return net

        out: dict[str, Any] = {"s": s.tolist(), "tau": tau, "steps": steps}
        with recorder.progress(self.name, 2 * steps) as bar:
            for init in ("decoupled", "random"):
                net = make(init)
                traj: dict[int, list[float]] = {}

                def modes(m: torch.nn.Module, step: int) -> dict[str, float]:
                    with torch.no_grad():
                        u = torch.diagonal(Ut.T @ m[1].weight @ m[0].weight @ Vt).numpy().copy()
                    traj[step] = u.tolist()
                    return {f"{init}/u_{i}": float(v) for i, v in enumerate(u)} if step % 20 == 0 else {}

                res = Trainer(
                    net, half_squared_loss, (x, y), lr=config.lr, max_steps=steps, seed=config.seed,
                    measurements=[Measurement(1, modes, at_end=False)], recorder=recorder,
                    prefix=f"{init}/", log_every=20, progress=bar,
                ).fit()
                out[init] = {"u": [traj[k] for k in sorted(traj)], "status": res.status, "final_loss": res.loss}
        u_dec = np.asarray(out["decoupled"]["u"], dtype=float).reshape(-1, s.size)
        recorder.log_many({f"decoupled/steps_to_half_{i}": self._crossing(u_dec[:, i], 0.5 * a) for i, a in enumerate(s)}, steps)
        t = np.arange(steps + 1, dtype=float)
        out["theory"] = [saxe_mode_strength(t, si, config.u0, tau).tolist() for si in s]
        return out

    @staticmethod
    def _crossing(u: np.ndarray, level: float) -> float:
        """First (linearly interpolated) step where u reaches ``level``; inf if never."""
        idx = np.flatnonzero(u >= level)
        if idx.size == 0:
            return float("inf")
        i = int(idx[0])
        if i == 0:
            return 0.0
        return i - 1 + (level - u[i - 1]) / (u[i] - u[i - 1])

    def checks(self, config: DeepLinearConfig, result: Result) -> list[Verdict]:
        s = np.asarray(result["s"])
        tau = result["tau"]
        u = np.asarray(result["decoupled"]["u"], dtype=float).reshape(-1, s.size)  # (steps+1, r); fewer if diverged
        th = np.asarray(result["theory"]).T[: len(u)]
        dev = (np.max(np.abs(u - th), axis=0) if len(u) else np.full(s.size, np.nan)) / s
        note = f" (diverged after {max(len(u) - 1, 0)} steps)" if result["decoupled"]["status"] == "diverged" else ""
        tol = config.tolerance
        out = [
            Verdict(
                claim="decoupled balanced init: every mode strength follows u(t) = s e^{2st/τ}/(e^{2st/τ} − 1 + s/u₀)",
                predicted="max_t |u_α(t) − u_theory(t)| / s_α ≤ tolerance for every mode",
                measured="max deviation / s per mode: " + ", ".join(f"s={a:g}: {d:.4f}" for a, d in zip(s, dev)) + note,
                tolerance=f"{tol:g} (GD is forward Euler of the flow: error O(η·s) = {config.lr * s.max():.3g} at most)",
                passed=bool(np.all(dev <= tol)),
                paper=PAPER,
            )
        ]
        meas = np.array([self._crossing(u[:, i], 0.5 * a) for i, a in enumerate(s)])
        pred = np.array([saxe_learning_time(a, config.u0, 0.5 * a, tau) for a in s])
        rel = np.abs(meas - pred) / pred
        out.append(
            Verdict(
                claim="time to learn each mode (u₀ → s/2) is (τ/2s)·ln[u_f(s − u₀)/(u₀(s − u_f))]",
                predicted="steps: " + ", ".join(f"{p:.1f}" for p in pred),
                measured="steps: " + ", ".join(f"{m:.1f}" for m in meas) + "; relative errors " + ", ".join(f"{e:.3f}" for e in rel),
                tolerance=f"{tol:g} relative",
                passed=bool(np.all(rel <= tol)),
                paper=PAPER,
            )
        )
        ur = np.asarray(result["random"]["u"], dtype=float).reshape(-1, s.size)
        t_rand = np.array([self._crossing(ur[:, i], 0.5 * a) for i, a in enumerate(s)])
        finite = np.isfinite(t_rand)
        rho = float(spearmanr(s, t_rand).statistic) if len(s) > 1 and finite.all() else float("nan")
        out.append(
            Verdict(
                claim="small random (not decoupled) init: modes are still learned in order of singular value",
                predicted="time to reach s/2 decreases with s (Spearman ρ = −1)",
                measured="steps to s/2: " + ", ".join(f"s={a:g}: {t:.0f}" for a, t in zip(s, t_rand)) + f"; ρ = {rho:.2f}",
                tolerance="exact ordering",
                passed=bool(np.isfinite(rho) and rho <= -1 + 1e-9),
                paper=PAPER,
            )
        )
        return out

    _HALF = re.compile(r"decoupled/steps_to_half_(\d+)")

    def theory_curve(self, metric: str, key: str, values: list[float], config: dict[str, Any]) -> list[float] | None:
        """Steps for mode i to reach s_i/2 (the decoupled run's ``decoupled/steps_to_half_i``):
        (τ/2s)·ln[u_f(s − u₀)/(u₀(s − u_f))] with τ = 1/lr (Saxe et al. 2013, Sec. 2), against ``lr``,
        ``u0`` or ``singular_values`` held as in ``config``."""
        m = self._HALF.fullmatch(metric)
        if m is None or key not in ("lr", "u0"):
            return None
        i = int(m.group(1))
        svals = config.get("singular_values") or []
        if i >= len(svals):
            return None
        s = float(svals[i])
        out = []
        for v in values:
            c = {**config, key: float(v)}
            try:
                out.append(saxe_learning_time(s, float(c["u0"]), 0.5 * s, 1.0 / float(c["lr"])))
            except ValueError:  # outside the formula's domain (u₀ ≥ s/2, lr ≤ 0)
                out.append(float("nan"))
        return out

    def figures(self, config: DeepLinearConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = np.asarray(result["s"])
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
        for ax, init in zip(axes, ("decoupled", "random")):
            u = np.asarray(result[init]["u"], dtype=float).reshape(-1, s.size)
            for i, a in enumerate(s):
                line, = ax.plot(u[:, i], lw=1.8, label=f"s={a:g}")
                ax.plot(result["theory"][i], ls="--", color="k", lw=0.8)
            ax.set_title(f"{init} init (dashed: Saxe et al., u₀={config.u0:g})", fontsize=9)
            ax.set_xlabel("GD step")
        axes[0].set_ylabel("mode strength u_α = u_αᵀW₂W₁v_α")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        return {"modes.png": fig}


EXPERIMENT = DeepLinear()
