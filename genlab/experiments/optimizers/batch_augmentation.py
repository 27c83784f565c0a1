"""batch-augmentation: M differently augmented copies of every example in a batch reach a target
accuracy in fewer updates, with a smaller gradient variance, and generalize at least as well.

Hoffer, Ben-Nun, Hubara, Giladi, Hoefler & Soudry 2019 ("Augment your batch: better training with
larger batches", arXiv 1901.09335, §3–4): a batch of B examples is replaced by M·B, each example
appearing M times with independent augmentations (:func:`genlab.train.large_batch.augmented_batch`),
at the baseline's learning rate and number of updates. Claims: (i) the target accuracy is reached
in fewer updates; (ii) the variance of the batch gradient falls with M (§4 relates the faster
progress to it); (iii) the final accuracy is at least the baseline's.

Setup: the train-longer experiment's MNIST-1D MLP with batch norm (40 → [width, BN, ReLU] × 2 → 10,
:func:`genlab.experiments.optimizers.train_longer._model`), SGD with momentum 0.9, lr × 0.1 at 60% of
the updates, augmentation = random circular shift (≤ 3 samples), amplitude scale 1 ± 0.1 and noise
0.05 (:func:`genlab.train.large_batch.shift_scale_noise`) — the baseline (M = 1) is augmented too,
as in the paper. Test accuracy every ``eval_every`` updates.

Gradient variance (genlab's per-example probe, :func:`genlab.probes.per_example.per_example_stats`
with the Gram matrix of the per-example gradients, eval mode): at the baseline's trained model, on
``var_examples`` training signals each augmented ``max(copies)`` times. For batch augmentation with
M copies the batch gradient is (1/B) Σ_i h_i with h_i the mean of example i's M copies' gradients,
so tr Cov = (E‖h‖² − ‖E h‖²)/B, computed from Gram entries (:func:`ba_gradient_variance`). For
reference, a batch of M·B distinct examples has the M = 1 variance divided by M (copies of one
example are correlated, so BA lies between).

Checks: precondition — the baseline learns (final test accuracy ≥ ``min_accuracy``); claims — (i)
the largest M reaches the target (baseline's final seed-mean accuracy − ``target_margin``) in fewer
updates than the baseline, seed means; (ii) tr Cov falls strictly as M grows; (iii) final accuracy
of each M ≥ the baseline's − ``acc_tol``; finding — accuracies and variance ratios.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from genlab.config import PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import accuracy, cross_entropy, mnist1d_subset, shuffled_batches
from genlab.experiments.optimizers.train_longer import _model
from genlab.train.large_batch import augmented_batch, shift_scale_noise
from genlab.train.optimizers import make_optimizer

PAPER = "Hoffer, Ben-Nun, Hubara, Giladi, Hoefler & Soudry 2019 (arXiv 1901.09335)"


class BatchAugmentationConfig(ExperimentConfig):
    """Config of :class:`BatchAugmentation`."""

    n_train: int = Field(2000, ge=100, le=4000, description="MNIST-1D training signals")
    width: int = Field(128, ge=1, le=4096, description="hidden width")
    batch_size: int = Field(32, ge=2, le=1024, description="distinct examples per batch B")
    copies: PositiveInts = Field((1, 2, 4), description="augmented copies M per example (must include 1, the baseline)")
    epochs: int = Field(10, ge=1, le=500, description="epochs over the original data (same for every M)")
    lr: float = Field(0.05, gt=0, description="learning rate (same for every M)")
    seeds: int = Field(2, ge=1, le=50, description="seeds")
    eval_every: int = Field(25, ge=1, description="updates between test-accuracy evaluations")
    target_margin: float = Field(0.01, ge=0, lt=1, description="target = baseline final accuracy − this")
    acc_tol: float = Field(0.01, ge=0, lt=1, description="claim (iii): final accuracy ≥ baseline − this")
    min_accuracy: float = Field(0.3, ge=0, le=1, description="precondition: baseline final accuracy at least this")
    var_examples: int = Field(128, ge=8, le=1024, description="training signals of the gradient-variance probe")

    @field_validator("copies")
    @classmethod
    def _has_baseline(cls, v: list[int]) -> list[int]:
        if 1 not in v or len(v) < 2:
            raise ValueError("must include 1 (the baseline) and at least one M > 1")
        return sorted(set(v))

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {"n_train": 1000, "width": 64, "copies": (1, 4), "epochs": 6, "seeds": 1, "eval_every": 15,
                      "var_examples": 64},
            "full": {"n_train": 4000, "width": 256, "copies": (1, 2, 4, 8), "epochs": 20, "seeds": 3, "eval_every": 50,
                     "var_examples": 256},
        }


def ba_gradient_variance(gram: np.ndarray, n: int, copies: int, max_copies: int) -> float:
    """tr Cov of the batch-augmented gradient for a batch of ONE example (divide by B for B):
    E_i‖h_i‖² − ‖E_i h_i‖², h_i the mean gradient of copies 0..M−1 of example i, from the Gram
    matrix of per-example gradients ordered copy-major (row k·n + i is copy k of example i)."""
    g = np.asarray(gram, dtype=float).reshape(max_copies, n, max_copies, n)[:copies, :, :copies, :]
    # ⟨h_i, h_j⟩ = (1/M²) Σ_{k,l<M} ⟨g_{k,i}, g_{l,j}⟩
    hh = g.sum(axis=(0, 2)) / copies**2
    return float(np.mean(np.diag(hh)) - hh.mean())


def train_run(config: BatchAugmentationConfig, data, copies: int, seed: int) -> dict[str, Any]:
    """Train with M = ``copies``; test-accuracy curve, final accuracy, the model."""
    (x, y), (xt, yt) = data
    n, b = x.shape[0], config.batch_size
    model = _model(config.width, None, seed)
    opt = make_optimizer("sgd", model.parameters(), lr=config.lr, momentum=0.9)
    g = torch.Generator().manual_seed(1000 + seed)
    aug = shift_scale_noise()
    total = config.epochs * (n // b)
    milestone = int(0.6 * total)
    steps, accs = [], []
    for t, idx in enumerate(shuffled_batches(n, b, total, g)):
        xb, yb = augmented_batch(x[idx], y[idx], copies, aug, g)
        for group in opt.param_groups:
            group["lr"] = config.lr * (0.1 if t >= milestone else 1.0)
        model.train()
        opt.zero_grad()
        loss = cross_entropy(model(xb), yb)
        if not math.isfinite(float(loss.detach())):
            return {"status": "diverged", "steps": steps, "acc": accs, "final": float("nan"), "model": model}
        loss.backward()
        opt.step()
        if (t + 1) % config.eval_every == 0 or t + 1 == total:
            model.eval()
            steps.append(t + 1)
            accs.append(accuracy(model, xt, yt))
    return {"status": "finished", "steps": steps, "acc": accs, "final": accs[-1], "model": model}


def gradient_variances(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, copies: list[int], seed: int) -> dict[int, float]:
    """tr Cov of the BA batch gradient (batch of one example) for each M, from one Gram matrix."""
    from genlab.probes.per_example import per_example_stats

    mmax = max(copies)
    g = torch.Generator().manual_seed(seed)
    xa, ya = augmented_batch(x, y, mmax, shift_scale_noise(), g)  # copy-major: row k·n + i
    stats = per_example_stats(model, cross_entropy, (xa, ya), gram=True, mode="eval")
    gram = stats.gram.detach().double().numpy()
    return {m: ba_gradient_variance(gram, x.shape[0], m, mmax) for m in copies}


def updates_to_target(steps: list[int], accs: list[float], target: float) -> float:
    """First evaluated update count at which the test accuracy is ≥ ``target`` (inf if never)."""
    return float(next((s for s, a in zip(steps, accs) if a >= target), math.inf))


class BatchAugmentation(Experiment):
    name = "batch-augmentation"
    title = "Batch augmentation: M augmented copies per example reach a target accuracy in fewer updates"
    paper = PAPER
    notes = {
        "the baseline learns": (
            "precondition: the baseline's (M = 1) seed-mean final test accuracy is at least min_accuracy (0.3; chance is 0.1)",
            "too few epochs or a learning rate that diverges", "more epochs"),
        "fewer updates": (
            "Hoffer et al.'s claim (i): the largest M reaches the target accuracy (baseline's final seed-mean accuracy − "
            "target_margin) at fewer updates than the baseline, seed means of the first evaluation at or above the target",
            "an accuracy curve that plateaus below the target for the augmented runs, seed noise, a coarse eval_every",
            "more seeds (--full), a smaller eval_every"),
        "gradient variance falls": (
            "claim (ii): tr Cov of the batch gradient (per-example Gram matrix at the trained baseline) decreases strictly with M",
            "augmentations so weak that copies have nearly the same gradient (then the variance barely changes)",
            "more var_examples"),
        "final accuracy": (
            "claim (iii): each M's seed-mean final test accuracy is at least the baseline's minus acc_tol (1 point)",
            "over-regularization by the augmentation at this small scale, or seed noise with one seed (quick)",
            "more seeds or --full"),
        "accuracies and variance ratios": ("a finding: per M, accuracies, updates to the target and variance ratios", "cannot fail", ""),
    }
    captions = {
        "batch_augmentation.png": "Left: test accuracy against updates for each M (seed means) with the target line of claim (i). "
        "Right: tr Cov of the batch gradient against M (claim ii) with the reference band between a plain batch of M·B "
        "distinct examples (V₁/M) and no reduction (V₁).",
    }
    Config = BatchAugmentationConfig

    def run(self, config: BatchAugmentationConfig, recorder: Any) -> Result:
        d = mnist1d_subset(config.n_train, 1000)
        data = (d.train, d.test)
        runs: dict[str, list[dict[str, Any]]] = {str(m): [] for m in config.copies}
        variance: dict[str, float] = {}
        with recorder.progress(self.name, config.seeds * len(config.copies) + 1, unit="runs") as bar:
            for i in range(config.seeds):
                for m in config.copies:
                    r = train_run(config, data, m, config.seed + i)
                    model = r.pop("model")
                    runs[str(m)].append(r)
                    for s, a in zip(r["steps"], r["acc"]):
                        recorder.log_many({f"M{m}/test_acc": a}, s)
                    if m == 1 and i == 0:
                        base_model = model
                    bar.advance(1)
            x, y = d.train
            v = gradient_variances(base_model, x[: config.var_examples], y[: config.var_examples], list(config.copies), config.seed)
            variance = {str(m): val for m, val in v.items()}
            bar.advance(1)
        return {"runs": runs, "variance": variance}

    def checks(self, config: BatchAugmentationConfig, result: Result) -> list[Verdict]:
        runs, var = result["runs"], result["variance"]
        ms = sorted(int(m) for m in runs)
        final = {m: float(np.mean([r["final"] for r in runs[str(m)]])) for m in ms}
        target = final[1] - config.target_margin
        upd = {m: float(np.mean([updates_to_target(r["steps"], r["acc"], target) for r in runs[str(m)]])) for m in ms}
        mmax = ms[-1]
        v = [var[str(m)] for m in ms]
        out = [
            Verdict(claim="the baseline learns (precondition of the accuracy claims)",
                    predicted=f"baseline final test accuracy ≥ {config.min_accuracy:g}", measured=f"{final[1]:.3f}",
                    tolerance="exact", passed=math.isfinite(final[1]) and final[1] >= config.min_accuracy, paper=PAPER,
                    kind="precondition"),
            Verdict(claim=f"(i) batch augmentation reaches the target accuracy in fewer updates (M = {mmax} vs the baseline)",
                    predicted=f"updates to test accuracy ≥ {target:.3f} (baseline final − {config.target_margin:g}): M={mmax} < M=1",
                    measured=", ".join(f"M={m}: {upd[m]:.0f}" for m in ms) + f" (evaluated every {config.eval_every} updates)",
                    tolerance=f"strict, on the evaluation grid of {config.eval_every} updates",
                    passed=upd[mmax] < upd[1], paper=PAPER + ", §4"),
            Verdict(claim="(ii) the batch-gradient variance falls as the number of copies M grows",
                    predicted="tr Cov strictly decreasing in M (per-example Gram matrix, trained baseline)",
                    measured=", ".join(f"M={m}: {val:.4g}" for m, val in zip(ms, v)),
                    tolerance="strict monotonicity", passed=all(b < a for a, b in zip(v, v[1:])) and all(map(math.isfinite, v)),
                    paper=PAPER + ", §4"),
            Verdict(claim="(iii) the final accuracy with batch augmentation is at least the baseline's",
                    predicted=f"final accuracy of every M ≥ baseline {final[1]:.3f} − {config.acc_tol:g}",
                    measured=", ".join(f"M={m}: {final[m]:.3f}" for m in ms) + f" (mean over {config.seeds} seeds)",
                    tolerance=f"{config.acc_tol:g} absolute accuracy",
                    passed=all(math.isfinite(final[m]) and final[m] >= final[1] - config.acc_tol for m in ms), paper=PAPER),
            Verdict(claim="accuracies and variance ratios per M", predicted="no prediction",
                    measured=", ".join(f"M={m}: acc {final[m]:.3f}, V_M/V_1 {var[str(m)] / var['1']:.3f} (plain M·B batch: {1 / m:.3f})"
                                       for m in ms),
                    tolerance="—", passed=True, paper=PAPER, kind="finding"),
        ]
        return out

    def figures(self, config: BatchAugmentationConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from genlab.report.bands import draw_prediction, draw_threshold

        runs, var = result["runs"], result["variance"]
        ms = sorted(int(m) for m in runs)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        base_final = float(np.mean([r["final"] for r in runs["1"]]))
        for m in ms:
            steps = runs[str(m)][0]["steps"]
            acc = np.mean([r["acc"][: len(steps)] for r in runs[str(m)] if len(r["acc"]) >= len(steps)], axis=0)
            ax1.plot(steps, acc, label=f"M = {m}" + (" (baseline)" if m == 1 else ""))
        draw_threshold(ax1, base_final - config.target_margin, f"target (claim i): baseline final − {config.target_margin:g}")
        ax1.set_xlabel("updates")
        ax1.set_ylabel("test accuracy")
        ax1.legend(fontsize=8)
        m_arr = np.array(ms, dtype=float)
        v1 = var["1"]
        # no reduction (V₁) down to a plain batch of M·B distinct examples (V₁/M)
        draw_prediction(ax2, v1 / m_arr, v1 / m_arr, np.full_like(m_arr, v1), x=m_arr, label="plain batch of M·B (V₁/M)",
                        band_label="between V₁/M and V₁", color="tab:blue")
        ax2.plot(m_arr, [var[str(m)] for m in ms], "o-", color="tab:red", label="batch augmentation (measured)")
        ax2.set_xscale("log", base=2)
        ax2.set_yscale("log")
        ax2.set_xlabel("copies M")
        ax2.set_ylabel("tr Cov of the batch gradient (B = 1)")
        ax2.legend(fontsize=8)
        fig.tight_layout()
        return {"batch_augmentation.png": fig}


EXPERIMENT = BatchAugmentation()
