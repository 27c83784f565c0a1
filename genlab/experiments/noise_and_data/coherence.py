"""coherence: per-example gradients agree far more with real labels than with random labels.

Claim (Chatterjee & Zielinski 2022, "On the generalization mystery in deep learning",
arXiv 2203.10036; Chatterjee & Zielinski 2020, arXiv 2008.01217): the coherence
α = ‖E g_z‖² / E‖g_z‖² of per-example gradients, read as the m-coherence m·α (≈ 1 for orthogonal
gradients, m for identical ones), is much larger early in training on real labels than on random
labels — gradients of examples with real labels reinforce each other, which is why what is
learned first generalizes.

Setup: the same MLP (same initialization) trained by SGD on an MNIST-1D subset once with its real
labels and once with uniformly random labels (``corrupt_labels(fraction=1)``); the m-coherence of
a fixed set of m training examples (with the labels being trained on) is measured every
``measure_every`` steps, together with train and test accuracy.

At initialization the ratio real/random is already ≈ 2.6 (the labels alone group the gradients),
so the check (issue 14) measures the early window after step 0 against that value: the ratio must
exceed ``min_ratio`` and grow by ``min_growth`` over its value at initialization.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from genlab.data.classification import corrupt_labels
from genlab.config import PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import accuracy, cross_entropy, mnist1d_subset
from genlab.models.mlp import mlp
from genlab.probes.gradient_stats import gradient_coherence
from genlab.train import Measurement, Trainer

PAPER = "Chatterjee & Zielinski 2022 (arXiv 2203.10036); Chatterjee & Zielinski 2020 (arXiv 2008.01217)"


class CoherenceConfig(ExperimentConfig):
    n_train: int = Field(1000, ge=20, le=4000, description="MNIST-1D training examples")
    n_test: int = Field(1000, ge=10, le=1000, description="MNIST-1D test examples")
    widths: PositiveInts = Field(default_factory=lambda: [256, 256], min_length=1, description="hidden widths")
    lr: float = Field(0.01, gt=0, description="SGD step size")
    batch_size: int = Field(100, ge=1, description="SGD minibatch size")
    steps: int = Field(2000, ge=10, description="SGD steps per run")
    measure_every: int = Field(50, ge=1, description="coherence and accuracy every this many steps")
    m: int = Field(500, ge=2, description="number of training examples the coherence is measured over")
    early_fraction: float = Field(0.2, gt=0, le=1, description="'early' = the first this fraction of the steps")
    min_ratio: float = Field(2.0, ge=1, description="'clearly higher': early m-coherence ratio real/random at least this")
    min_growth: float = Field(0.2, ge=0, description="the early ratio must exceed the ratio at initialization by this fraction")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"n_train": 4000, "steps": 20000, "measure_every": 200, "m": 1000}}


class Coherence(Experiment):
    name = "coherence"
    title = "Coherent gradients: real labels vs random labels"
    paper = PAPER
    notes = {
        "m-coherence": ("Chatterjee & Zielinski: per-example gradients agree more with real labels than with random labels early in training",
                        "an early window too short, or a learning rate so large that both runs move fast", "rerun over seeds"),
    }
    captions = {"coherence.png": "m-coherence per SGD step for real and random labels (dotted: orthogonal gradients, 1), and train/test accuracy: the coherence claim."}
    Config = CoherenceConfig

    def run(self, config: CoherenceConfig, recorder: Any) -> Result:
        base = mnist1d_subset(config.n_train, config.n_test)
        variants = {"real": base, "random": corrupt_labels(base, 1.0, seed=config.seed)}
        m = min(config.m, config.n_train)
        out: dict[str, Any] = {"m": m}
        with recorder.progress(self.name, 2 * config.steps) as bar:
            for label, data in variants.items():
                model = mlp(data.x.shape[1], config.widths, data.num_classes, seed=config.seed)
                series: dict[str, list[float]] = {"step": [], "m_coherence": [], "alpha": [], "train_acc": [], "test_acc": []}

                def measure(net, step, data=data, series=series):
                    c = gradient_coherence(net, cross_entropy, (data.x[:m], data.y[:m]))
                    values = {
                        "m_coherence": c.m_coherence,
                        "alpha": c.alpha,
                        "train_acc": accuracy(net, data.x, data.y),
                        "test_acc": accuracy(net, data.x_test, data.y_test),
                    }
                    series["step"].append(step)
                    for k, v in values.items():
                        series[k].append(v)
                    return values

                result = Trainer(
                    model,
                    cross_entropy,
                    data.train,
                    lr=config.lr,
                    batch_size=config.batch_size,
                    max_steps=config.steps,
                    seed=config.seed,
                    measurements=[Measurement(config.measure_every, measure)],
                    recorder=recorder,
                    prefix=f"{label}/",
                    log_every=config.measure_every,
                    progress=bar,
                ).fit()
                out[label] = {**series, "status": result.status, "final_loss": result.loss}
        return out

    def checks(self, config: CoherenceConfig, result: Result) -> list[Verdict]:
        real, rand = result["real"], result["random"]
        if real["status"] == "diverged" or rand["status"] == "diverged":
            return [
                Verdict(
                    claim="early in training, m-coherence with real labels ≫ with random labels",
                    predicted="both runs train",
                    measured=f"real: {real['status']}, random: {rand['status']}",
                    tolerance="-",
                    passed=False,
                    paper=PAPER,
                )
            ]
        horizon = config.early_fraction * config.steps
        # the early window starts after initialization: at step 0 real labels are already more
        # coherent (examples of a class share a gradient direction through the label alone), so the
        # claim is that training widens the gap beyond that value, not the gap itself
        early = [i for i, s in enumerate(real["step"]) if 0 < s <= horizon]
        r = float(np.mean([real["m_coherence"][i] for i in early])) if early else float("nan")
        q = float(np.mean([rand["m_coherence"][i] for i in early])) if early else float("nan")
        ratio = r / q
        init = real["m_coherence"][0] / rand["m_coherence"][0]
        need = max(config.min_ratio, (1 + config.min_growth) * init)
        return [
            Verdict(
                claim="early in training, per-example gradients with real labels become clearly more coherent than "
                "with random labels — beyond their difference at initialization",
                predicted=f"mean m-coherence over 0 < step ≤ {horizon:g}: real / random ≥ {config.min_ratio:g} and ≥ "
                f"{1 + config.min_growth:g}× the ratio at initialization",
                measured=f"real {r:.3g}, random {q:.3g} (m = {result['m']}; orthogonal gradients give 1): ratio {ratio:.3g}; "
                f"at initialization {real['m_coherence'][0]:.3g} vs {rand['m_coherence'][0]:.3g} (ratio {init:.3g}) → "
                f"needed {need:.3g}",
                tolerance=f"ratio threshold {config.min_ratio:g}; growth over initialization {config.min_growth:.0%} (set with the "
                "seed-0 growth ×1.39 known); fragile: passes at 2 of seeds 0–3 — at seeds 1 and 3 the ratio at "
                "initialization is already ≈ 4 and grows by only 12–16 % (README table)",
                passed=bool(np.isfinite(ratio) and ratio >= need),
                paper=PAPER,
            )
        ]

    def figures(self, config: CoherenceConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        for label, color in (("real", "tab:blue"), ("random", "tab:red")):
            s = result[label]
            ax1.plot(s["step"], s["m_coherence"], color=color, label=f"{label} labels")
            ax2.plot(s["step"], s["train_acc"], color=color, label=f"{label}: train")
            ax2.plot(s["step"], s["test_acc"], color=color, ls="--", label=f"{label}: test")
        ax1.axhline(1.0, color="0.5", lw=0.8, ls=":", label="orthogonal gradients (1)")
        ax1.set_yscale("log")
        ax1.set_xlabel("SGD step")
        ax1.set_ylabel(f"m-coherence (m = {result['m']})")
        ax1.legend(fontsize=7)
        ax2.set_xlabel("SGD step")
        ax2.set_ylabel("accuracy")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        return {"coherence.png": fig}


EXPERIMENT = Coherence()
