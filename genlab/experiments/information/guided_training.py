"""guided-training: an MLP guided toward a CNN's layer representations inherits some of its
inductive bias — even when the guide is untrained.

Claims ("Training the untrainable: introducing inductive bias via representational alignment",
Subramaniam, Mayo, Conwell, Poggio, Katz, Cheung & Barbu 2024, arXiv 2410.20035, Secs. 3–4):
a fully connected network trained with an extra loss λ·Σ_l (1 − CKA(its layer l, guide layer l))
toward a convolutional guide overfits less and generalizes better than the same network trained
plainly; (b) the effect persists when the guide is a randomly initialized (untrained) CNN.

Setup: MNIST-1D (``n_train`` training signals), an MLP 40 → ``widths`` → 10 (ReLU) and a CNN guide
(three Conv1d + ReLU layers of ``channels`` channels, kernel 5, the last two with stride 2, then a
linear readout). Pairs: MLP hidden layer l ↔ CNN conv layer l. Linear CKA on each minibatch
(:class:`genlab.train.guidance.RepresentationMatching`), λ = ``guide_weight``. The CNN guide is
trained first (same SGD settings); the untrained guide is the CNN at initialization. Every
condition uses the same MLP initialization and minibatch order per seed; means over ``seeds``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import accuracy, cross_entropy, mnist1d_subset
from genlab.models.mlp import mlp
from genlab.probes.activations import layer_activations
from genlab.probes.similarity import linear_cka
from genlab.train import Trainer
from genlab.train.guidance import RepresentationMatching

PAPER = "Subramaniam et al. 2024, 'Training the untrainable', arXiv 2410.20035, Secs. 3-4"
CONDITIONS = ("plain", "trained guide", "untrained guide")


def cnn_guide(channels: int, length: int, classes: int, seed: int) -> nn.Sequential:
    """Conv1d(1→C, 5) → ReLU → Conv1d(C→C, 5, stride 2) → ReLU → Conv1d(C→C, 5, stride 2) → ReLU → Linear."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        out_len = math.ceil(math.ceil(length / 2) / 2)
        return nn.Sequential(
            nn.Unflatten(1, (1, length)),
            nn.Conv1d(1, channels, 5, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(channels * out_len, classes),
        )


GUIDE_LAYERS = ("2", "4", "6")


class GuidedTrainingConfig(ExperimentConfig):
    n_train: int = Field(1000, ge=50, le=4000, description="MNIST-1D training signals")
    n_test: int = Field(1000, ge=50, le=1000, description="MNIST-1D test signals")
    widths: list[int] = Field(default_factory=lambda: [128, 128, 128], min_length=1, max_length=3,
                              description="MLP hidden widths (≤ 3: one guide layer each)")
    channels: int = Field(8, ge=1, description="CNN guide channels")
    guide_weight: float = Field(1.0, ge=0, description="λ of the CKA-matching term")
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(100, ge=2, description="minibatch size (CKA is taken over the batch)")
    steps: int = Field(300, ge=10, description="SGD steps of every network (guide included)")
    seeds: int = Field(1, ge=1, le=20)

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"n_train": 4000, "widths": [256, 256, 256], "steps": 4000, "seeds": 5}}


class GuidedTraining(Experiment):
    name = "guided-training"
    title = "Guidance: an MLP matched to a CNN's layers (trained or not) generalizes better"
    paper = PAPER
    notes = {
        "every network trains": (
            "precondition: no run (guide, plain or guided MLP) diverged",
            "a non-finite loss at lr 0.05 with momentum 0.9", "lower lr"),
        "the CNN guide has a better inductive bias than the MLP": (
            "precondition: the trained CNN's seed-mean test accuracy is above the plain MLP's, so there is an inductive bias to transfer",
            "a CNN undertrained in `steps` SGD steps, or too few channels",
            "more steps or channels"),
        "the plain MLP overfits": (
            "precondition: the plain MLP's seed-mean train − test accuracy gap is at least 0.1",
            "too many training signals (n_train) or too few steps for the MLP to memorize",
            "fewer n_train or more steps"),
        "> plain MLP on test accuracy": (
            "the paper's claim, once for the trained and once for the untrained (random) CNN guide: guided − plain test accuracy, paired by seed, has mean > 0 (and > 2 standard errors with ≥ 3 seeds)",
            "a guide weight λ that is too small to change the MLP or so large it hurts fitting; with one seed (quick) a single noisy difference decides",
            "more seeds (seeds=5, or genlab sweep guided-training --quick --grid seed=0:4), another guide_weight"),
        "overfits less than the plain MLP": (
            "for each guide: the train − test gap of the plain MLP minus the guided one, paired by seed, has mean > 0 (and > 2 standard errors with ≥ 3 seeds)",
            "guidance that lowers train accuracy and test accuracy alike, leaving the gap unchanged; one seed in quick",
            "more seeds, another guide_weight"),
        "the matching term does align the layers": (
            "a finding: linear CKA of each MLP hidden layer to its guide layer on held-out signals, per condition",
            "cannot fail", ""),
    }
    captions = {"guided_training.png": "Per condition (plain, trained guide, untrained guide), per-seed test accuracy (left) and train − test gap (right) with the seed mean as a bar, the plain mean dotted and the trained CNN's accuracy dashed: the guided-vs-plain accuracy and overfitting claims."}
    Config = GuidedTrainingConfig

    def run(self, config: GuidedTrainingConfig, recorder: Any) -> Result:
        data = mnist1d_subset(config.n_train, config.n_test)
        x, y = data.train
        length = x.shape[1]
        out: dict[str, Any] = {c: [] for c in CONDITIONS}
        out["guide"] = []
        pairs = [(str(2 * l + 1), GUIDE_LAYERS[l]) for l in range(len(config.widths))]
        probe_x = data.x_test[: min(500, config.n_test)]
        total = config.seeds * 4 * config.steps
        with recorder.progress(self.name, total) as bar:
            for k in range(config.seeds):
                seed = config.seed + k
                common = dict(lr=config.lr, momentum=config.momentum, batch_size=config.batch_size,
                              max_steps=config.steps, seed=seed, recorder=recorder, progress=bar,
                              eval_every=max(config.steps // 10, 1), log_every=max(config.steps // 10, 1))
                untrained = cnn_guide(config.channels, length, data.num_classes, seed + 1000)
                trained = cnn_guide(config.channels, length, data.num_classes, seed + 1000)
                res = Trainer(trained, cross_entropy, (x, y), prefix=f"seed{seed}/guide/", **common).fit()
                out["guide"].append({"status": res.status, "train_acc": accuracy(trained, x, y),
                                     "test_acc": accuracy(trained, *data.test)})
                for cond in CONDITIONS:
                    net = mlp(length, config.widths, data.num_classes, seed=seed)
                    guide = {"trained guide": trained, "untrained guide": untrained}.get(cond)
                    aux = RepresentationMatching(net, guide, pairs, weight=config.guide_weight) if guide is not None else None
                    try:
                        res = Trainer(net, cross_entropy, (x, y), aux_loss=aux, prefix=f"seed{seed}/{cond}/", **common).fit()
                    finally:
                        if aux is not None:
                            aux.remove()
                    tr, te = accuracy(net, x, y), accuracy(net, *data.test)
                    ref = trained if guide is None else guide
                    a_net = layer_activations(net, probe_x, [s for s, _ in pairs])
                    a_ref = layer_activations(ref, probe_x, [g for _, g in pairs])
                    ckas = [float(linear_cka(a_net[s], a_ref[g])) for s, g in pairs]
                    out[cond].append({"status": res.status, "train_acc": tr, "test_acc": te, "gap": tr - te, "cka": ckas})
                    recorder.log_many({f"{cond}/test_acc": te, f"{cond}/gap": tr - te}, seed)
        return out

    @staticmethod
    def _paired(a: list[float], b: list[float]) -> tuple[float, float]:
        d = np.asarray(a) - np.asarray(b)
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        return float(d.mean()), se

    def checks(self, config: GuidedTrainingConfig, result: Result) -> list[Verdict]:
        if any(r["status"] == "diverged" for c in (*CONDITIONS, "guide") for r in result[c]):
            return [Verdict("every network trains", "finite loss", "a run diverged", "-", False, PAPER, kind="precondition")]
        col = {c: {k: [r[k] for r in result[c]] for k in ("train_acc", "test_acc", "gap")} for c in CONDITIONS}
        g_test = [r["test_acc"] for r in result["guide"]]
        out = [
            Verdict(
                claim="the CNN guide has a better inductive bias than the MLP (there is something to transfer)",
                predicted="trained CNN test accuracy > plain MLP test accuracy (seed mean)",
                measured=f"CNN {np.mean(g_test):.3f}, MLP {np.mean(col['plain']['test_acc']):.3f}",
                tolerance="-", passed=bool(np.mean(g_test) > np.mean(col["plain"]["test_acc"])), paper=PAPER, kind="precondition",
            ),
            Verdict(
                claim="the plain MLP overfits (the regime guidance is meant to fix)",
                predicted="plain MLP train − test accuracy ≥ 0.1 (seed mean)",
                measured=f"gap {np.mean(col['plain']['gap']):.3f} (train {np.mean(col['plain']['train_acc']):.3f})",
                tolerance="-", passed=bool(np.mean(col["plain"]["gap"]) >= 0.1), paper=PAPER, kind="precondition",
            ),
        ]
        n = config.seeds

        def rule(mean: float, se: float) -> bool:
            return bool(mean > 0 and (n < 3 or mean > 2 * se))

        tol = "mean over seeds > 0" + ("; and > 2 standard errors of the paired difference" if n >= 3 else " (one seed: no error bar)")
        for cond in ("trained guide", "untrained guide"):
            m, se = self._paired(col[cond]["test_acc"], col["plain"]["test_acc"])
            out.append(Verdict(
                claim=f"MLP with {cond} > plain MLP on test accuracy",
                predicted="test accuracy difference (guided − plain) > 0",
                measured=f"{np.mean(col[cond]['test_acc']):.3f} vs {np.mean(col['plain']['test_acc']):.3f}: Δ {m:+.3f}"
                         + (f" ± {se:.3f}" if np.isfinite(se) else "") + f" over {n} seed(s)",
                tolerance=tol, passed=rule(m, se), paper=PAPER,
            ))
            m, se = self._paired(col["plain"]["gap"], col[cond]["gap"])
            out.append(Verdict(
                claim=f"MLP with {cond} overfits less than the plain MLP",
                predicted="train − test gap: plain − guided > 0",
                measured=f"gap {np.mean(col[cond]['gap']):.3f} vs {np.mean(col['plain']['gap']):.3f}: reduction {m:+.3f}"
                         + (f" ± {se:.3f}" if np.isfinite(se) else ""),
                tolerance=tol, passed=rule(m, se), paper=PAPER,
            ))
        cka = {c: np.mean([r["cka"] for r in result[c]], 0) for c in CONDITIONS}
        out.append(Verdict(
            claim="the matching term does align the layers",
            predicted="linear CKA to the guide per layer on held-out signals (plain: to the trained CNN)",
            measured="; ".join(f"{c}: " + ", ".join(f"{v:.2f}" for v in cka[c]) for c in CONDITIONS),
            tolerance="-", passed=True, paper=PAPER, kind="finding",
        ))
        return out

    def figures(self, config: GuidedTrainingConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, key, label in ((axes[0], "test_acc", "test accuracy"), (axes[1], "gap", "train − test accuracy")):
            for i, c in enumerate(CONDITIONS):
                vals = [r[key] for r in result[c]]
                ax.scatter(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, color=f"C{i}", s=18)
                ax.hlines(np.mean(vals), i - 0.25, i + 0.25, color=f"C{i}", lw=2)
            ax.axhline(np.mean([r[key] for r in result["plain"]]), color="0.5", ls=":", lw=0.8,
                       label="plain mean (prediction: guided " + ("above" if key == "test_acc" else "below") + ")")
            if key == "test_acc":
                ax.axhline(np.mean([r["test_acc"] for r in result["guide"]]), color="k", ls="--", lw=0.8, label="trained CNN guide")
            ax.set_xticks(range(len(CONDITIONS)), CONDITIONS, fontsize=8)
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
        fig.suptitle(f"MLP on MNIST-1D, n = {config.n_train}, λ = {config.guide_weight:g}, {config.seeds} seed(s)", fontsize=9)
        fig.tight_layout()
        return {"guided_training.png": fig}


EXPERIMENT = GuidedTraining()
