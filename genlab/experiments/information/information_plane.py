"""information-plane: a fitting phase then a compression phase with tanh; none with ReLU.

Claims, side by side (the second contests the generality of the first):
- Shwartz-Ziv & Tishby 2017, "Opening the black box of deep neural networks via information"
  (arXiv 1703.00810, Sec. 3–4, Fig. 3): in the information plane (I(X;T), I(T;Y)) of each hidden
  layer T, training first *fits* (I(T;Y) rises) and then, for most of training, *compresses*
  (I(X;T) falls).
- Saxe, Bansal, Dapello, Advani, Kolchinsky, Tracey & Cox 2018, "On the information bottleneck
  theory of deep learning" (arXiv 1711.07876 / ICLR 2018, Sec. 2, Fig. 1): the compression comes
  from the saturation of the double-sided tanh; the same network with ReLU, measured with the same
  binning estimator, shows no compression.

Setup: their task (all 4096 patterns of 12 binary inputs; our spherically symmetric label rule —
theirs is not given in the paper, see ``_szt``), their 12-10-7-5-4-3-2 network (widths confirmed
from the authors' code), an 80% training split, minibatch SGD (batch 256). MI by fixed-width
binning with 30 bins (their estimator): over [−1, 1] for tanh, over each layer's range across the
whole run for ReLU (Saxe et al.); the 4096 patterns are the whole, uniform input distribution, so
each value is the exact MI of the binned layer (no sampling error; the spread is over seeds).

Compression of layer l: I(X;T_l) at the end of the fitting phase (first record with training
accuracy ≥ ``fit_accuracy``) minus its mean over the last ``end_fraction`` of the records, on
the seed-averaged curves; a layer "compresses" if this is ≥ ``min_compression`` bits.

Changed after seeing results: the authors train with lr 0.0004 for 8000 epochs, too long here.
First tries with full-batch GD and momentum (lr 0.5, then 0.05) collapsed to a constant
predictor; the step was then set to SGD lr 0.1, momentum 0.9, batch 256, which fits in ~800
steps. That run was also where we first saw the tanh compression. The first full-preset run
(5 seeds, 20000 steps) used PyTorch's default initialization for ReLU too: some ReLU seeds stayed
at chance for the whole run (seed-mean training accuracy 0.80), the precondition failed and the
ReLU claim was not tested; ReLU now starts from He initialization (``relu_init``), which fits
reliably (tanh keeps PyTorch's default, with which it fits).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.experiments.information._szt import compression, mi_trajectories, train_recording_activations

PAPER_SZT = "Shwartz-Ziv & Tishby 2017, arXiv 1703.00810, Sec. 3-4"
PAPER_SAXE = "Saxe et al. 2018, arXiv 1711.07876, Sec. 2"
PAPER = f"{PAPER_SZT}; {PAPER_SAXE}"
ACTS = ("tanh", "relu")


class InformationPlaneConfig(ExperimentConfig):
    n_train: int = Field(3277, ge=100, le=4000, description="training patterns (80% of 4096, as theirs)")
    lr: float = Field(0.1, gt=0, description="SGD step size")
    momentum: float = Field(0.9, ge=0, lt=1, description="heavy-ball momentum")
    batch_size: int = Field(256, ge=1, description="minibatch size (theirs: 256)")
    steps: int = Field(2200, ge=10, description="SGD steps per run")
    records: int = Field(23, ge=4, description="information-plane points per run (evenly spaced)")
    seeds: int = Field(1, ge=1, le=50, description="runs per activation (seed, seed+1, …), curves averaged")
    bins: int = Field(30, ge=2, description="equal-width bins per unit (theirs: 30)")
    fit_accuracy: float = Field(0.95, gt=0.5, le=1, description="training accuracy that ends the fitting phase")
    end_fraction: float = Field(0.2, gt=0, lt=1, description="'end of training' = the last this fraction of records")
    min_compression: float = Field(0.5, gt=0, description="bits of I(X;T) lost after fitting that count as compression")
    relu_init: Literal["he", "default"] = Field("he", description="ReLU net init: he = N(0, 2/fan_in), zero biases; default = PyTorch's (tanh: always PyTorch's)")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"steps": 20000, "records": 60, "seeds": 5}}


class InformationPlane(Experiment):
    name = "information-plane"
    title = "The information plane: compression with tanh (Shwartz-Ziv & Tishby), none with ReLU (Saxe et al.)"
    paper = PAPER
    notes = {
        "the networks train": (
            "precondition: no run diverged", "a non-finite loss at SGD lr 0.1, momentum 0.9", "lower lr"),
        "network fits the task (compression is claimed after fitting)": (
            "precondition, per activation: the seed-mean training accuracy over the last end_fraction (20%) of records is ≥ fit_accuracy (0.95)",
            "too few SGD steps for the 12-10-7-5-4-3-2 network to fit our label rule (a ReLU net can stay at chance)",
            "more steps, or --full; more seeds to average"),
        "a fitting phase — I(T;Y) of the last hidden layer rises": (
            "Shwartz-Ziv & Tishby's fitting phase: for tanh, I(T;Y) of the last hidden layer (30-bin estimator, exact on all 4096 patterns) rises by ≥ 0.5 bit from step 0 to the end of fitting",
            "a network that already separates the labels at initialization, or never fits",
            "more steps; check the fit precondition"),
        "after fitting, the hidden layers compress": (
            "Shwartz-Ziv & Tishby's compression phase: for tanh, I(X;T) falls by ≥ min_compression (0.5 bit) from the end of fitting to the mean over the last 20% of records, in at least half of the hidden layers (seed-mean curves)",
            "too short a run after fitting for saturation to set in; the step size we chose (SGD lr 0.1, not the authors' 0.0004 for 8000 epochs) changes the dynamics",
            "more steps or seeds (--full), or genlab sweep information-plane --quick --grid seed=0:4"),
        "ReLU, same network and binning estimator: no compression": (
            "Saxe et al.'s counter-claim: with ReLU and the same binning (over each layer's range over the run), no hidden layer loses ≥ 0.5 bit of I(X;T) after fitting",
            "any ReLU layer losing 0.5 bit, e.g. dead units or a layer range shrinking late in training; or a ReLU run that never fits (then it cannot pass)",
            "more seeds (curves are seed means); check the ReLU fit precondition"),
        "tanh units saturate as the layers compress": (
            "a finding: share of tanh values with |t| > 0.95 per layer, at the end of fitting and at the end",
            "cannot fail", ""),
    }
    captions = {"information_plane.png": "Top: information-plane trajectories (I(X;T), I(T;Y)) per hidden layer, coloured by SGD step, for tanh and ReLU (fitting-phase claim). Bottom: I(X;T) per layer against step with the end of fitting dashed and the 0.5-bit compression level dotted: the tanh compression and ReLU no-compression claims."}
    Config = InformationPlaneConfig

    def run(self, config: InformationPlaneConfig, recorder: Any) -> Result:
        out: dict[str, Any] = {}
        with recorder.progress(self.name, 2 * config.seeds * config.steps) as bar:
            for act in ACTS:
                ixts, itys, tra, tea, sat = [], [], [], [], []
                for k in range(config.seeds):
                    seed = config.seed + k
                    run = train_recording_activations(
                        act, seed, n_train=config.n_train, lr=config.lr, momentum=config.momentum,
                        batch_size=config.batch_size, steps=config.steps, records=config.records,
                        init=config.relu_init if act == "relu" else "default", recorder=recorder, prefix=f"{act}/seed{seed}/", progress=bar,
                    )
                    if run["status"] == "diverged":
                        return {"status": "diverged", "activation": act, "seed": seed}
                    ixt, ity = mi_trajectories(run, strategy="fixed", bins=config.bins, fixed_range="tanh" if act == "tanh" else "span")
                    ixts.append(ixt)
                    itys.append(ity)
                    tra.append(run["train_acc"])
                    tea.append(run["test_acc"])
                    # share of hidden units' values within 0.05 of tanh's bounds, per layer (saturation)
                    sat.append([[float((np.abs(a) > 0.95).mean()) for a in acts] for acts in run["acts"]])
                    steps = run["step"]
                out[act] = {
                    "step": steps,
                    "ixt": np.mean(ixts, 0).tolist(),
                    "ity": np.mean(itys, 0).tolist(),
                    "ixt_seeds": [a.tolist() for a in ixts],
                    "train_acc": np.mean(tra, 0).tolist(),
                    "test_acc": np.mean(tea, 0).tolist(),
                    "saturation": np.mean(sat, 0).tolist(),
                }
                for r, s in enumerate(steps):
                    recorder.log_many({f"{act}/ixt_{l}": v for l, v in enumerate(out[act]["ixt"][r])}, s)
        return out

    def _compression(self, config: InformationPlaneConfig, res: dict) -> tuple[np.ndarray, int, np.ndarray]:
        c, k = compression(np.asarray(res["ixt"]), np.asarray(res["train_acc"]), config.fit_accuracy, config.end_fraction)
        per_seed = []
        for ixt in res["ixt_seeds"]:
            cs, _ = compression(np.asarray(ixt), np.asarray(res["train_acc"]), config.fit_accuracy, config.end_fraction)
            per_seed.append(cs)
        spread = np.std(per_seed, 0, ddof=1) if len(per_seed) > 1 else np.full(len(c), np.nan)
        return c, k, spread

    def checks(self, config: InformationPlaneConfig, result: Result) -> list[Verdict]:
        if result.get("status") == "diverged":
            return [Verdict("the networks train", "finite loss", f"{result['activation']} seed {result['seed']} diverged",
                            "-", False, PAPER, kind="precondition")]
        out: list[Verdict] = []
        comp = {}
        for act in ACTS:
            r = result[act]
            final = float(np.mean(r["train_acc"][-max(1, int(config.end_fraction * len(r["step"]))):]))
            out.append(Verdict(
                claim=f"{act} network fits the task (compression is claimed after fitting)",
                predicted=f"training accuracy reaches ≥ {config.fit_accuracy:g} and stays (mean over the last records)",
                measured=f"final training accuracy {final:.3f}, test {r['test_acc'][-1]:.3f} (seed mean, {config.seeds} seed(s))",
                tolerance="-", passed=bool(final >= config.fit_accuracy), paper=PAPER, kind="precondition",
            ))
            comp[act] = self._compression(config, r)

        def describe(act: str) -> str:
            c, k, spread = comp[act]
            r = result[act]
            if k < 0:
                return "never fits"
            parts = [f"T{l + 1}: {np.asarray(r['ixt'])[k, l]:.2f}→{np.asarray(r['ixt'])[k, l] - c[l]:.2f} (Δ {c[l]:+.2f}"
                     + (f" ± {spread[l]:.2f}" if np.isfinite(spread[l]) else "") + ")" for l in range(len(c))]
            return f"I(X;T) bits at end of fitting (step {r['step'][k]}) → end: " + "; ".join(parts)

        tanh = result["tanh"]
        ity = np.asarray(tanh["ity"])
        k_t = comp["tanh"][1]
        rise = float(ity[k_t, -1] - ity[0, -1]) if k_t >= 0 else float("nan")
        out.append(Verdict(
            claim="tanh: a fitting phase — I(T;Y) of the last hidden layer rises from initialization",
            predicted="I(T_L;Y) at end of fitting − at step 0 ≥ 0.5 bit (of H(Y) = 1 bit)",
            measured=f"{ity[0, -1]:.3f} → {ity[k_t, -1]:.3f} bits (rise {rise:+.3f})" if k_t >= 0 else "never fits",
            tolerance="0.5 bit", passed=bool(np.isfinite(rise) and rise >= 0.5), paper=PAPER_SZT,
        ))
        c_t = comp["tanh"][0]
        n_t = int(np.sum(c_t >= config.min_compression)) if np.all(np.isfinite(c_t)) else 0
        out.append(Verdict(
            claim="tanh: after fitting, the hidden layers compress — I(X;T) falls (Shwartz-Ziv & Tishby)",
            predicted=f"I(X;T) falls by ≥ {config.min_compression:g} bit in at least half of the {len(c_t)} hidden layers",
            measured=f"{n_t} of {len(c_t)} layers; " + describe("tanh"),
            tolerance=f"{config.min_compression:g} bit; ± = std over seeds",
            passed=bool(n_t >= len(c_t) / 2), paper=PAPER_SZT,
        ))
        c_r = comp["relu"][0]
        finite = bool(np.all(np.isfinite(c_r)))
        n_r = int(np.sum(c_r >= config.min_compression)) if finite else -1
        out.append(Verdict(
            claim="ReLU, same network and binning estimator: no compression (Saxe et al., contesting the generality above)",
            predicted=f"no hidden layer loses ≥ {config.min_compression:g} bit of I(X;T) after fitting",
            measured=(f"{n_r} of {len(c_r)} layers compress; " if finite else "") + describe("relu"),
            tolerance=f"{config.min_compression:g} bit; ± = std over seeds",
            passed=bool(finite and n_r == 0), paper=PAPER_SAXE,
        ))
        if k_t >= 0:
            sat = np.asarray(tanh["saturation"])
            out.append(Verdict(
                claim="tanh units saturate as the layers compress (Saxe et al.'s explanation)",
                predicted="share of tanh values with |t| > 0.95, per layer, at end of fitting vs at the end",
                measured="; ".join(f"T{l + 1}: {sat[k_t, l]:.2f}→{sat[-1, l]:.2f}" for l in range(sat.shape[1])),
                tolerance="-", passed=True, paper=PAPER_SAXE, kind="finding",
            ))
        return out

    def figures(self, config: InformationPlaneConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if result.get("status") == "diverged":
            return {}
        fig, axes = plt.subplots(2, 2, figsize=(11, 8))
        for col, act in enumerate(ACTS):
            r = result[act]
            ixt, ity, steps = np.asarray(r["ixt"]), np.asarray(r["ity"]), np.asarray(r["step"])
            c, k, _ = self._compression(config, r)
            ax = axes[0, col]
            for l in range(ixt.shape[1]):
                ax.plot(ixt[:, l], ity[:, l], color="0.7", lw=0.6)
                sc = ax.scatter(ixt[:, l], ity[:, l], c=steps, cmap="viridis", s=12)
                ax.annotate(f"T{l + 1}", (ixt[-1, l], ity[-1, l]), fontsize=7)
            fig.colorbar(sc, ax=ax, label="SGD step")
            ax.set_xlabel("I(X;T) bits")
            ax.set_ylabel("I(T;Y) bits")
            ax.set_title(f"{act}: information plane (30 equal bins; {config.seeds} seed(s))", fontsize=9)
            ax = axes[1, col]
            for l in range(ixt.shape[1]):
                line, = ax.plot(steps, ixt[:, l], label=f"T{l + 1}")
                if k >= 0:  # the level I(X;T) must fall below to count as compression
                    ax.hlines(ixt[k, l] - config.min_compression, steps[k], steps[-1], color=line.get_color(), ls=":", lw=0.8)
            if k >= 0:
                ax.axvline(steps[k], color="k", lw=0.8, ls="--", label=f"fitting ends (acc ≥ {config.fit_accuracy:g})")
            tail = steps[-max(1, int(round(config.end_fraction * len(steps))))]
            ax.axvspan(tail, steps[-1], color="0.9", label="end window")
            ax.set_xlabel("SGD step")
            ax.set_ylabel("I(X;T) bits")
            ax.set_title(f"{act}: dotted = value at end of fitting − {config.min_compression:g} bit "
                         f"({'compression predicted' if act == 'tanh' else 'no compression predicted'})", fontsize=8)
            ax.legend(fontsize=6)
        fig.tight_layout()
        return {"information_plane.png": fig}


EXPERIMENT = InformationPlane()
