"""data-diet: examples scored early in training (EL2N, GraNd) can be pruned without loss of accuracy.

Claim (Paul, Ganguli & Dziugaite 2021, "Deep learning on a data diet: finding important examples
early in training", arXiv 2107.07075, Sec. 3 and Fig. 1): training on the examples with the highest
EL2N = E‖softmax(f(x)) − onehot(y)‖₂ or GraNd = E‖∇_θ ℓ(f(x), y)‖₂ scores (expectation over
independently initialized networks, read after a few epochs) is at moderate pruning fractions at
least as accurate as training on a random subset of the same size.

Setup: ``score_seeds`` MLPs trained for ``score_steps`` SGD steps on the MNIST-1D training set; their
EL2N and GraNd scores averaged; then for each kept fraction, fresh networks trained for the same
``train_steps`` on the highest-scoring examples and on a random subset, test accuracy averaged over
``retrain_seeds``. At this scale (thousands of examples) the claim may not hold: Sorscher, Geirhos,
Shekhar, Ganguli & Morcos 2022 (arXiv 2206.14486) predict that with scarce data keeping the hardest
examples hurts — the verdict reports what is measured, and Sorscher et al.'s prediction (keep
easy ≥ keep hard when data is scarce) is its own claim.

Regime (issue 14; changed after the earlier setup's results): the scorers were read at 32 % train
accuracy and global top-50 % kept 9 of ~400 examples of one class. Now the scorers train until they
fit (``min_scorer_acc``, a precondition), every retraining run fits its subset (``min_fit_acc``, a
precondition), and class-balanced EL2N pruning is run beside global pruning. To afford that in the
quick preset's CPU time, n_train 4000 → 1000, lr 0.05 → 0.1, score_steps 300 → 1200, score_seeds
4 → 3, keep_fractions [0.5, 0.7] → [0.5] (the full preset keeps 0.3–0.9), train_steps 1500 → 1000,
then → 2000 after the fit precondition failed at 1000 (lowest 0.906; said in its verdict).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field

from genlab.config import Fractions, PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments._classification import accuracy, cross_entropy, mnist1d_subset
from genlab.models.mlp import mlp
from genlab.probes.data_importance import average_over_seeds, el2n_scores, grand_scores
from genlab.train import Trainer

PAPER = "Paul, Ganguli & Dziugaite 2021 (arXiv 2107.07075)"
# "el2n"/"grand": keep the highest scores globally; "el2n-balanced": the highest EL2N within each
# class (the same number per class, as far as the class has examples); "easy": the lowest EL2N
METHODS = ("el2n", "grand", "el2n-balanced", "easy", "random")


class DataDietConfig(ExperimentConfig):
    n_train: int = Field(1000, ge=100, le=4000, description="MNIST-1D training examples")
    n_test: int = Field(1000, ge=10, le=1000, description="MNIST-1D test examples")
    widths: PositiveInts = Field(default_factory=lambda: [128, 128], min_length=1, description="hidden widths")
    lr: float = Field(0.1, gt=0, description="SGD step size")
    batch_size: int = Field(64, ge=1, description="SGD minibatch size")
    score_seeds: int = Field(3, ge=1, description="networks whose scores are averaged")
    score_steps: int = Field(1200, ge=0, description="SGD steps of the scorer networks before the scores are read")
    train_steps: int = Field(2000, ge=1, description="SGD steps of every (re)training run")
    min_scorer_acc: float = Field(0.9, gt=0, le=1, description="regime: scorers' train accuracy at scoring ≥ this")
    min_fit_acc: float = Field(0.95, gt=0, le=1, description="regime: every retraining run fits its kept examples to ≥ this train accuracy")
    keep_fractions: Fractions = Field(default_factory=lambda: [0.5], min_length=1, description="fractions kept")
    retrain_seeds: int = Field(2, ge=1, description="retraining runs per fraction and method")
    moderate_min_keep: float = Field(0.5, gt=0, le=1, description="'moderate' pruning: kept fraction ≥ this")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {
            "quick": {},
            "full": {
                "n_train": 4000,
                "score_seeds": 10,
                "train_steps": 6000,
                "score_steps": 6000,
                "keep_fractions": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                "retrain_seeds": 5,
                "widths": [256, 256],
            },
        }


def balanced_top(scores: torch.Tensor, labels: torch.Tensor, k: int, num_classes: int) -> torch.Tensor:
    """Indices of the k highest scores taken class by class: ⌊k/C⌋ (+1 for the first k mod C
    classes) per class, a class with fewer examples giving all of them and the rest refilled from
    the highest remaining scores overall (Sorscher et al. 2022 prune class-balanced)."""
    per = [k // num_classes + (1 if c < k % num_classes else 0) for c in range(num_classes)]
    chosen: list[int] = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        order = idx[torch.argsort(scores[idx], descending=True)]
        chosen.extend(order[: per[c]].tolist())
    if len(chosen) < k:
        rest = [i for i in torch.argsort(scores, descending=True).tolist() if i not in set(chosen)]
        chosen.extend(rest[: k - len(chosen)])
    return torch.tensor(sorted(chosen[:k]))


def _train(config: DataDietConfig, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int) -> tuple[torch.nn.Module, str]:
    model = mlp(x.shape[1], config.widths, 10, seed=seed)
    result = Trainer(
        model,
        cross_entropy,
        (x, y),
        lr=config.lr,
        batch_size=min(config.batch_size, x.shape[0]),
        max_steps=steps,
        seed=seed,
        log_every=10**9,
    ).fit()
    return model, result.status


class DataDiet(Experiment):
    name = "data-diet"
    title = "Data diet: pruning by EL2N / GraNd vs random pruning"
    paper = PAPER
    notes = {
        "pruning by": ("Paul et al.: keeping the examples with the highest EL2N/GraNd scores is as good as a random subset at moderate pruning",
                       "scores from too few seeds or too early, or test accuracy noise", "rerun with --full (more seeds)"),
        "training on the highest-": ("the same comparison at one kept fraction", "test accuracy noise", "rerun over seeds"),
    }
    captions = {"data_diet.png": "Test accuracy against the kept fraction for EL2N, GraNd and random pruning, and EL2N against GraNd: the pruning claims."}
    Config = DataDietConfig

    def run(self, config: DataDietConfig, recorder: Any) -> Result:
        data = mnist1d_subset(config.n_train, config.n_test)
        n = data.x.shape[0]
        total = config.score_seeds * config.score_steps + config.retrain_seeds * config.train_steps * (
            1 + len(METHODS) * len(config.keep_fractions)
        )
        trained: dict[int, torch.nn.Module] = {}

        with recorder.progress(self.name, total) as bar:

            def train_scorer(seed: int) -> torch.nn.Module:
                if seed not in trained:
                    trained[seed] = _train(config, data.x, data.y, config.score_steps, 10_000 + config.seed * 100 + seed)[0]
                    bar.advance(config.score_steps)
                return trained[seed]

            seeds = list(range(config.score_seeds))
            scores = {
                "el2n": average_over_seeds(train_scorer, seeds, lambda m: el2n_scores(m, data.train)),
                "grand": average_over_seeds(train_scorer, seeds, lambda m: grand_scores(m, cross_entropy, data.train)),
            }
            scorer_acc = [accuracy(trained[s], data.x, data.y) for s in seeds]
            fits: list[float] = []

            def test_acc(idx: torch.Tensor | None, rs: int) -> float:
                x, y = (data.x, data.y) if idx is None else (data.x[idx], data.y[idx])
                model, status = _train(config, x, y, config.train_steps, config.seed * 100 + rs)
                bar.advance(config.train_steps)
                fits.append(float("nan") if status == "diverged" else accuracy(model, x, y))
                return float("nan") if status == "diverged" else accuracy(model, data.x_test, data.y_test)

            full = [test_acc(None, rs) for rs in range(config.retrain_seeds)]
            recorder.log_many({"full/test_acc": float(np.mean(full))}, 0)
            runs = []
            for frac in config.keep_fractions:
                k = max(1, int(round(frac * n)))
                for method in METHODS:
                    accs = []
                    for rs in range(config.retrain_seeds):
                        if method == "random":
                            g = torch.Generator().manual_seed(config.seed * 1000 + rs * 10 + int(frac * 100))
                            idx = torch.randperm(n, generator=g)[:k]
                        elif method == "el2n-balanced":
                            idx = balanced_top(scores["el2n"], data.y, k, data.num_classes)
                        elif method == "easy":
                            idx = torch.argsort(scores["el2n"], descending=False)[:k]
                        else:
                            idx = torch.argsort(scores[method], descending=True)[:k]
                        accs.append(test_acc(idx, rs))
                    counts = torch.bincount(data.y[idx], minlength=data.num_classes).tolist()
                    runs.append({"keep": frac, "k": k, "method": method, "test_acc": accs, "class_counts": counts})
                    recorder.log_many({f"{method}/test_acc": float(np.mean(accs))}, k)
        corr = float(np.corrcoef(scores["el2n"].numpy(), scores["grand"].numpy())[0, 1])
        return {
            "scorer_train_acc": scorer_acc,
            "retrain_fit_acc": fits,
            "full_test_acc": full,
            "runs": runs,
            "el2n_grand_correlation": corr,
            "el2n": scores["el2n"].tolist(),
            "grand": scores["grand"].tolist(),
        }

    @staticmethod
    def _compare(acc: dict, a_key: tuple, b_key: tuple) -> tuple[float, float]:
        """Mean difference of test accuracy a − b over retraining seeds and its standard error."""
        a, b = acc[a_key], acc[b_key]
        diff = float(np.mean(a) - np.mean(b))
        se = math.sqrt((np.var(a, ddof=1) / len(a) if len(a) > 1 else 0.0) + (np.var(b, ddof=1) / len(b) if len(b) > 1 else 0.0))
        return diff, se

    def checks(self, config: DataDietConfig, result: Result) -> list[Verdict]:
        runs = result["runs"]
        acc = {(r["keep"], r["method"]): np.asarray(r["test_acc"], float) for r in runs}
        moderate = sorted({r["keep"] for r in runs if r["keep"] >= config.moderate_min_keep})
        fractions = sorted({r["keep"] for r in runs})
        out = []
        # regime (issue 14): the scores come from networks that fit the training set, and every
        # retraining run fits its kept examples (accuracy differences are not under-training)
        if "scorer_train_acc" in result:
            sa = result["scorer_train_acc"]
            out.append(Verdict(
                claim="regime: the scoring networks fit the training set when the scores are read",
                predicted=f"mean train accuracy of the {len(sa)} scorers ≥ {config.min_scorer_acc:g}",
                measured=f"{np.mean(sa):.3f} (per scorer {', '.join(f'{a:.3f}' for a in sa)}) after {config.score_steps} steps",
                tolerance="-", passed=bool(np.mean(sa) >= config.min_scorer_acc), paper=PAPER, kind="precondition"))
            fa = np.asarray(result["retrain_fit_acc"], float)
            out.append(Verdict(
                claim="regime: every retraining run fits its kept examples (trained to convergence)",
                predicted=f"train accuracy on its own training subset ≥ {config.min_fit_acc:g}, every run",
                measured=f"lowest {np.nanmin(fa) if fa.size else float('nan'):.3f} over {fa.size} runs",
                tolerance=f"- (train_steps {config.train_steps}; the default was raised 1000 → 2000 after this precondition "
                "failed at 1000 with 0.906)", passed=bool(fa.size and np.all(fa >= config.min_fit_acc)), paper=PAPER, kind="precondition"))
        for method, label in (("el2n", "EL2N"), ("grand", "GraNd"), ("el2n-balanced", "class-balanced EL2N")):
            if not any(r["method"] == method for r in runs):
                continue
            if not moderate:
                out.append(Verdict(
                    claim=f"pruning by {label} is at least as accurate as random pruning at moderate fractions",
                    predicted=f"a kept fraction ≥ {config.moderate_min_keep:g} to test",
                    measured="none configured", tolerance="-", passed=False, paper=PAPER))
                continue
            parts, ok = [], True
            for f in moderate:
                diff, se = self._compare(acc, (f, method), (f, "random"))
                ok = ok and bool(np.isfinite(diff) and diff >= -2 * se)
                counts = next(r["class_counts"] for r in runs if r["keep"] == f and r["method"] == method)
                parts.append(
                    f"keep {f:g}: {np.mean(acc[(f, method)]):.3f} vs random {np.mean(acc[(f, 'random')]):.3f} "
                    f"(Δ {diff:+.3f} ± {se:.3f}; smallest class kept {min(counts)} of {sum(counts)})"
                )
            out.append(Verdict(
                claim=f"training on the highest-{label} examples is at least as accurate as on a random subset "
                "of the same size, at moderate pruning",
                predicted=f"test acc(score) − test acc(random) ≥ −2·SE at every kept fraction ≥ {config.moderate_min_keep:g}",
                measured="; ".join(parts) + f"; full data {np.mean(result['full_test_acc']):.3f}",
                tolerance=f"2 standard errors over {config.retrain_seeds} retraining seeds",
                passed=ok,
                paper=PAPER,
            ))
        if any(r["method"] == "easy" for r in runs):
            parts, ok = [], True
            for f in fractions:
                diff, se = self._compare(acc, (f, "easy"), (f, "el2n"))
                ok = ok and bool(np.isfinite(diff) and diff >= -2 * se)
                parts.append(f"keep {f:g}: easiest {np.mean(acc[(f, 'easy')]):.3f} vs hardest {np.mean(acc[(f, 'el2n')]):.3f} "
                             f"(Δ {diff:+.3f} ± {se:.3f})")
            out.append(Verdict(
                claim="with scarce data, keeping the easiest examples is at least as good as keeping the hardest "
                "(Sorscher et al. 2022)",
                predicted="test acc(lowest EL2N) − test acc(highest EL2N) ≥ −2·SE at every kept fraction",
                measured="; ".join(parts) + f" ({result['runs'][0]['k'] / result['runs'][0]['keep']:.0f} training examples; "
                f"full-data test accuracy {np.mean(result['full_test_acc']):.3f})",
                tolerance=f"2 standard errors over {config.retrain_seeds} retraining seeds",
                passed=ok,
                paper="Sorscher, Geirhos, Shekhar, Ganguli & Morcos 2022 (arXiv 2206.14486), §2 (small-data regime)",
            ))
        return out

    def figures(self, config: DataDietConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        for method, color in zip(METHODS, ("tab:blue", "tab:green", "0.4")):
            rs = [r for r in result["runs"] if r["method"] == method]
            ax1.errorbar(
                [r["keep"] for r in rs],
                [np.mean(r["test_acc"]) for r in rs],
                yerr=[np.std(r["test_acc"]) for r in rs],
                marker="o",
                color=color,
                capsize=3,
                label=method,
            )
        ax1.axhline(np.mean(result["full_test_acc"]), color="k", ls=":", lw=1, label="full data")
        ax1.set_xlabel("fraction of training set kept")
        ax1.set_ylabel("test accuracy")
        ax1.legend(fontsize=7)
        ax2.scatter(result["el2n"], result["grand"], s=3, alpha=0.4)
        ax2.set_xlabel("EL2N (seed average)")
        ax2.set_ylabel("GraNd (seed average)")
        ax2.set_title(f"correlation {result['el2n_grand_correlation']:.2f}", fontsize=9)
        fig.tight_layout()
        return {"data_diet.png": fig}


EXPERIMENT = DataDiet()
