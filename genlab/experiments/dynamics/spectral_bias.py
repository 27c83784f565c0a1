"""spectral-bias: neural networks learn low frequencies first.

Claim (Rahaman, Baratin, Arpit, Draxler, Lin, Hamprecht, Bengio & Courville 2019, "On the
spectral bias of neural networks", ICML, arXiv 1806.08734, Sec. 3 / Fig. 1): a ReLU MLP fitting
λ(z) = Σ_i A_i sin(2πk_i z + φ_i) learns the components in order of increasing frequency: the
residual's Fourier amplitude at k_i falls later the larger k_i.

Setup: N equispaced points on [0, 1) (fed as 2z − 1), equal amplitudes A_i = 1, random phases;
ReLU MLP (``depth`` hidden layers of ``width``), full-batch Adam on the mean squared error.
Every ``measure_every`` steps: |r̂(k_i)|/A_i, r̂ the discrete Fourier transform of the residual
y − f (exact on this grid: (2/N)|Σ_j r_j e^{−2πik z_j}| recovers A_i for the target itself).
A component counts as learned when its relative residual amplitude first drops below
``threshold``. (Once learned, small residual amplitudes fluctuate under Adam, so their final
order is not a claim: with seed 2 the end residual at k=1 exceeds that at k=3.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict

PAPER = "Rahaman et al. 2019, arXiv 1806.08734 (ICML), Sec. 3, Fig. 1"


class SpectralBiasConfig(ExperimentConfig):
    """Config of :class:`SpectralBias`."""

    frequencies: list[int] = Field(default_factory=lambda: [1, 3, 6, 10], min_length=2)
    points: int = Field(128, ge=8, description="N grid points (Nyquist limit N/2 > max frequency)")
    width: int = Field(128, ge=1)
    depth: int = Field(3, ge=1)
    lr: float = Field(2e-3, gt=0)
    steps: int = Field(2000, ge=1)
    measure_every: int = Field(20, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1, description="learned when |r̂(k)|/A_k < threshold")

    @model_validator(mode="after")
    def _below_nyquist(self) -> "SpectralBiasConfig":
        if min(self.frequencies) < 1 or max(self.frequencies) >= self.points // 2:
            raise ValueError(f"frequencies must be in [1, points/2) = [1, {self.points // 2}), got {self.frequencies}")
        return self

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"frequencies": [5, 10, 15, 20, 25, 30, 35, 40, 45, 50], "points": 200,
                                      "width": 256, "depth": 6, "lr": 3e-4, "steps": 80000, "measure_every": 100}}


class SpectralBias(Experiment):
    name = "spectral-bias"
    title = "Spectral bias: low frequencies are learned first"
    paper = PAPER
    notes = {
        "increases with its frequency": ("Rahaman et al.: a ReLU network learns low frequencies before high ones",
                                         "frequencies too close, or too few steps to learn the highest", "rerun with --full"),
    }
    captions = {"spectral_bias.png": "Residual amplitude |r̂(k)| per frequency over training, threshold dashed: the spectral-bias claim."}
    Config = SpectralBiasConfig

    def run(self, config: SpectralBiasConfig, recorder: Any) -> Result:
        ks = np.asarray(config.frequencies, dtype=int)
        if ks.max() >= config.points // 2 or ks.min() < 1:
            raise ValueError("frequencies must be in [1, points/2)")
        rng = np.random.default_rng(config.seed)
        z = np.arange(config.points) / config.points
        phases = rng.uniform(0, 2 * np.pi, ks.size)
        y = np.sin(2 * np.pi * ks[:, None] * z + phases[:, None]).sum(0)
        torch.manual_seed(config.seed)  # nn.Linear draws its init from the global generator
        layers: list[torch.nn.Module] = []
        d_in = 1
        for _ in range(config.depth):
            layers += [torch.nn.Linear(d_in, config.width), torch.nn.ReLU()]
            d_in = config.width
        net = torch.nn.Sequential(*layers, torch.nn.Linear(d_in, 1))
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        xt = torch.tensor(2 * z - 1, dtype=torch.float32)[:, None]
        yt = torch.tensor(y, dtype=torch.float32)
        steps, amps = [], []
        with recorder.progress(self.name, config.steps) as bar:
            for step in range(config.steps + 1):
                out = net(xt)[:, 0]
                loss = torch.mean((out - yt) ** 2)
                if step % config.measure_every == 0 or step == config.steps:
                    r = y - out.detach().double().numpy()
                    amp = 2.0 / config.points * np.abs(np.fft.rfft(r))[ks]
                    steps.append(step)
                    amps.append(amp.tolist())
                    recorder.log_many({"loss": float(loss.detach()), **{f"residual_amp/k={k}": float(a) for k, a in zip(ks, amp)}}, step)
                if step == config.steps:
                    break
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.advance(1)
            with torch.no_grad():
                fit = net(xt)[:, 0].double().numpy()
        return {"k": ks.tolist(), "steps": steps, "amp": amps, "z": z.tolist(), "y": y.tolist(), "fit": fit.tolist()}

    def checks(self, config: SpectralBiasConfig, result: Result) -> list[Verdict]:
        amp = np.asarray(result["amp"])  # (records, K), A_i = 1
        steps = np.asarray(result["steps"])
        times = []
        for i in range(amp.shape[1]):
            hit = np.flatnonzero(amp[:, i] < config.threshold)
            times.append(float(steps[hit[0]]) if hit.size else float("inf"))
        ks = result["k"]
        learned = [t for t in times if np.isfinite(t)]
        increasing = all(b > a for a, b in zip(times, times[1:]) if np.isfinite(a)) and all(
            not np.isfinite(b) for a, b in zip(times, times[1:]) if not np.isfinite(a))
        return [
            Verdict(
                claim="the time to learn each sinusoid increases with its frequency",
                predicted=f"steps until |r̂(k)|/A_k < {config.threshold:g} strictly increasing in k (unlearned = ∞ only after all learned ones)",
                measured=", ".join(f"k={k}: {t:.0f}" if np.isfinite(t) else f"k={k}: not in {config.steps}" for k, t in zip(ks, times)),
                tolerance=f"strict order; measured every {config.measure_every} steps (a second claim, the order of the "
                "residuals at the end, was dropped after it failed at seed 2: commit f6a551c)",
                passed=bool(increasing and len(learned) >= 2),
                paper=PAPER,
            ),
        ]

    def figures(self, config: SpectralBiasConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        amp = np.asarray(result["amp"])
        fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 3.8))
        for i, k in enumerate(result["k"]):
            a1.plot(result["steps"], amp[:, i], label=f"k={k}")
        a1.axhline(config.threshold, color="0.5", ls=":", lw=0.8)
        a1.set_xlabel("step")
        a1.set_ylabel("|r̂(k)| / A_k")
        a1.legend(fontsize=7)
        im = a2.imshow(amp.T, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                       extent=[result["steps"][0], result["steps"][-1], -0.5, len(result["k"]) - 0.5])
        a2.set_yticks(range(len(result["k"])), [str(k) for k in result["k"]])
        a2.set_xlabel("step")
        a2.set_ylabel("frequency k")
        fig.colorbar(im, ax=a2, label="residual amplitude")
        a3.plot(result["z"], result["y"], "k-", lw=1, label="target")
        a3.plot(result["z"], result["fit"], lw=1.2, label="network at the end")
        a3.legend(fontsize=7)
        a3.set_xlabel("z")
        fig.tight_layout()
        return {"spectral_bias.png": fig}


EXPERIMENT = SpectralBias()
