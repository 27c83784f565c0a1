"""random-interpolators: typical interpolating networks with random quantized weights generalize
when a narrow teacher exists.

Claim (Buzaglo, Harel, Nacson, Brutzkus, Srebro & Soudry 2024, "How uniform random weights induce
non-uniform bias: typical interpolating neural networks generalize with narrow teachers", arXiv
2402.06323, Thm. 1 and Sec. 5): a network drawn uniformly from the quantized-weight networks that
interpolate the training set (guess and check) has test error that falls with the number n of
examples at a rate set by the teacher's complexity (its width k) and only weakly by the student's
width. Setup: inputs {±1}^d (all 2^d points; the test set is every point not drawn for training),
teacher sign(Σ_j v_j sign(w_j·x)) with k units, w_j ∈ {−1, 0, 1}^d, v_j = ±1; students of width m
in ``student_widths`` (both on the same nested training sets: the first n points of one random
order per teacher) with weights and biases in {−1, 0, 1} (ties of sign → +1), sampled by
:func:`genlab.train.samplers.guess_and_check` until ``samples`` interpolators are found (or
``max_draws`` draws). Checked, at the largest n reached by every (k, m): the mean test error is
higher for the wider teacher at both student widths (claim 1), and the effect of the teacher width
is larger than that of the student width (claim 2), each with a 95 % bootstrap interval over the
accepted samples. Finding: SGD-trained real-weight students (ReLU, same width, logistic loss to
interpolation) on the same splits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field

from genlab.config import PositiveInts
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments.measures._suite import figure_style
from genlab.theory.ranking import mean_interval
from genlab.train.samplers import guess_and_check

PAPER = "Buzaglo, Harel, Nacson, Brutzkus, Srebro & Soudry 2024, arXiv 2402.06323"
LEVELS = torch.tensor([-1.0, 0.0, 1.0])


class RandomInterpolatorsConfig(ExperimentConfig):
    d: int = Field(6, ge=2, le=10, description="input dimension (inputs are all of {±1}^d)")
    teacher_widths: PositiveInts = Field(default_factory=lambda: [1, 3], description="teacher widths k (odd: no output ties)")
    student_widths: PositiveInts = Field(default_factory=lambda: [3, 7], min_length=2, max_length=2, description="two student widths m")
    ns: PositiveInts = Field(default_factory=lambda: [4, 8, 16, 24], description="training-set sizes")
    samples: int = Field(12, ge=2, description="interpolators sampled per (k, m, n)")
    max_draws: int = Field(60_000, ge=1000, description="give up on a (k, m, n) after this many draws")
    sgd_steps: int = Field(300, ge=1, description="full-batch steps of the SGD-trained comparison students")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"d": 8, "teacher_widths": [1, 3, 5], "ns": [4, 8, 16, 32, 48, 64], "samples": 50,
                                      "max_draws": 4_000_000, "sgd_steps": 1000}}


def _cube(d: int) -> torch.Tensor:
    return torch.tensor([[1.0 if (i >> j) & 1 else -1.0 for j in range(d)] for i in range(2**d)])


def _sign(z: torch.Tensor) -> torch.Tensor:
    return torch.where(z >= 0, 1.0, -1.0)


def _student_out(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    h = _sign(torch.einsum("bhd,nd->bnh", w["W"], x) + w["b"][:, None, :])
    return _sign(torch.einsum("bnh,bh->bn", h, w["v"]))


def _sgd_student(x: torch.Tensor, y: torch.Tensor, width: int, steps: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.softplus(-y * net(x).squeeze(1)).mean().backward()
        opt.step()
    return net


class RandomInterpolators(Experiment):
    name = "random-interpolators"
    title = "Random interpolating networks generalize with narrow teachers"
    paper = PAPER
    notes = {
        "wider teacher": ("Buzaglo et al.: the sample size needed grows with the teacher's complexity", "too few samples or n too small (guess and check finds no interpolator of a wide teacher beyond n = 8–16 at d = 8 in 4 million draws)",
                          "rerun with --full; at full scale too, the common n is limited by the sampler (README)"),
        "teacher width matters more": ("Buzaglo et al.: the student's width barely matters", "a small grid, or a common n too small to separate teachers", "rerun with --full; see the full preset's result in the README"),
        "interpolators found": ("that guess and check found interpolators at every n", "acceptance rate too small at large n", "raise max_draws or lower ns"),
    }
    captions = {"curves.png": "Mean test error of sampled interpolators against n, per teacher width k (colour) and student width m (line style); dotted: SGD students: both claims."}
    Config = RandomInterpolatorsConfig

    def run(self, config: RandomInterpolatorsConfig, recorder: Any) -> Result:
        x_all = _cube(config.d)
        N = x_all.shape[0]
        g = torch.Generator().manual_seed(config.seed)
        out: dict[str, Any] = {"cells": []}
        for k in config.teacher_widths:
            while True:
                tw = LEVELS[torch.randint(0, 3, (k, config.d), generator=g)]
                if (tw.abs().sum(1) > 0).all():
                    break
            tv = torch.where(torch.rand(k, generator=g) < 0.5, -1.0, 1.0)
            y_all = _sign(_sign(x_all @ tw.T) @ tv)
            perm = torch.randperm(N, generator=g)  # nested training sets, shared by both student widths
            for m in config.student_widths:
                shapes = {"W": (m, config.d), "b": (m,), "v": (m,)}
                for n in config.ns:
                    if n >= N:
                        continue
                    tr, te = perm[:n], perm[n:]
                    xs, ys = x_all[tr], y_all[tr]
                    r = guess_and_check(shapes, LEVELS, lambda w: (_student_out(w, xs) == ys).all(1),
                                        config.samples, config.max_draws, seed=config.seed + 7919 * n + 31 * m + k)
                    errs = ((_student_out(r.accepted, x_all[te]) != y_all[te]).double().mean(1).tolist()
                            if r.accepts and r.accepted["W"].shape[0] else [])
                    sgd = _sgd_student(xs, ys, m, config.sgd_steps, config.seed + n)
                    with torch.no_grad():
                        sgd_err = float((_sign(sgd(x_all[te]).squeeze(1)) != y_all[te]).double().mean())
                    cell = {"k": k, "m": m, "n": n, "errors": errs, "draws": r.draws, "accepts": r.accepts,
                            "rate": r.rate, "sgd_error": sgd_err}
                    out["cells"].append(cell)
                    recorder.log_many({f"k{k}/m{m}/test_error": float(np.mean(errs)) if errs else float("nan"),
                                       f"k{k}/m{m}/acceptance": r.rate}, n)
        return out

    @staticmethod
    def _last_common_n(cells: list[dict[str, Any]], min_samples: int) -> int | None:
        groups: dict[tuple[int, int], set[int]] = {}
        for c in cells:
            groups.setdefault((c["k"], c["m"]), set())
            if len(c["errors"]) >= min_samples:
                groups[(c["k"], c["m"])].add(c["n"])
        common = set.intersection(*groups.values()) if groups else set()
        return max(common) if common else None

    @staticmethod
    def _effects(means: dict[tuple[int, int], float], k_lo: int, k_hi: int, ms: list[int]) -> tuple[float, float]:
        """(mean error increase from the narrow to the wide teacher, mean |error change| between student widths)."""
        teacher = float(np.mean([means[(k_hi, m)] - means[(k_lo, m)] for m in ms]))
        student = float(np.mean([abs(means[(k, ms[-1])] - means[(k, ms[0])]) for k in (k_lo, k_hi)]))
        return teacher, student

    def checks(self, config: RandomInterpolatorsConfig, result: Result) -> list[Verdict]:
        cells = result["cells"]
        n_star = self._last_common_n(cells, 2)
        short = [f"k={c['k']} m={c['m']} n={c['n']}: {len(c['errors'])}" for c in cells if len(c["errors"]) < config.samples]
        out = [Verdict(claim="interpolators found by guess and check at every (k, m, n)",
                       predicted=f"{config.samples} accepted samples per cell within {config.max_draws} draws",
                       measured="all cells full" if not short else "short cells (accepted): " + "; ".join(short),
                       tolerance="a common n with ≥ 2 samples in every cell is required", paper=PAPER, kind="precondition",
                       passed=n_star is not None)]
        if n_star is None:
            return out
        at = {(c["k"], c["m"]): c for c in cells if c["n"] == n_star}
        ks, ms = sorted(config.teacher_widths), list(config.student_widths)
        iv = {km: mean_interval(c["errors"], 200, seed=config.seed) for km, c in at.items()}
        k_lo, k_hi = ks[0], ks[-1]
        ok1 = all(iv[(k_hi, m)].low > iv[(k_lo, m)].high for m in ms)
        out.append(Verdict(
            claim="a wider teacher needs more examples: at equal n the interpolators' test error is higher for the wider teacher",
            predicted=f"at n = {n_star}: error(k={k_hi}) > error(k={k_lo}) for both student widths, intervals disjoint",
            measured="; ".join(f"m={m}: k={k_lo} {iv[(k_lo, m)].value:.3f} [{iv[(k_lo, m)].low:.3f}, {iv[(k_lo, m)].high:.3f}], "
                               f"k={k_hi} {iv[(k_hi, m)].value:.3f} [{iv[(k_hi, m)].low:.3f}, {iv[(k_hi, m)].high:.3f}]" for m in ms),
            tolerance="95 % bootstrap intervals over the sampled interpolators", paper=PAPER, passed=bool(ok1)))
        means = {km: np.mean(c["errors"]) for km, c in at.items()}
        teacher_effect, student_effect = self._effects(means, k_lo, k_hi, ms)
        # bootstrap over the sampled interpolators of every cell, resampled independently
        rng = np.random.default_rng(config.seed)
        diffs = []
        for _ in range(200):
            bm = {km: np.mean(rng.choice(c["errors"], len(c["errors"]))) for km, c in at.items()}
            te, se = self._effects(bm, k_lo, k_hi, ms)
            diffs.append(te - se)
        lo, hi = np.quantile(diffs, [0.025, 0.975])
        out.append(Verdict(
            claim="teacher width matters more than student width for the interpolators' test error",
            predicted="mean error increase from the narrow to the wide teacher − mean |error change| between the two student widths > 0, "
                      "95 % interval above 0",
            measured=f"teacher effect {teacher_effect:+.3f}, student-width effect {student_effect:.3f}; difference "
                     f"{teacher_effect - student_effect:+.3f} [{lo:+.3f}, {hi:+.3f}] (n = {n_star})",
            tolerance="95 % bootstrap interval over the sampled interpolators (cells resampled independently, 200 resamples)",
            paper=PAPER, passed=bool(lo > 0)))
        out.append(Verdict(
            claim="SGD-trained real-weight students on the same splits",
            predicted="(a measured comparison)",
            measured="; ".join(f"k={k} m={m}: sampled {np.mean(at[(k, m)]['errors']):.3f} vs SGD {at[(k, m)]['sgd_error']:.3f}" for (k, m) in sorted(at)),
            tolerance="none", paper=PAPER, kind="finding", passed=True))
        return out

    def figures(self, config: RandomInterpolatorsConfig, result: Result) -> dict[str, Any]:
        plt = figure_style()
        fig, ax = plt.subplots(figsize=(6.5, 4))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ci, k in enumerate(config.teacher_widths):
            for li, m in enumerate(config.student_widths):
                cs = [c for c in result["cells"] if c["k"] == k and c["m"] == m and c["errors"]]
                ax.plot([c["n"] for c in cs], [np.mean(c["errors"]) for c in cs], ["-", "--"][li], marker="o", color=colors[ci % len(colors)],
                        label=f"teacher k={k}, student m={m}")
                ax.plot([c["n"] for c in cs], [c["sgd_error"] for c in cs], ":", color=colors[ci % len(colors)], lw=0.8)
        ax.set_xlabel("training examples n")
        ax.set_ylabel("test error (mean over interpolators)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        return {"curves.png": fig}


EXPERIMENT = RandomInterpolators()
