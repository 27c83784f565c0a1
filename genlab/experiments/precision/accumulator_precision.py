"""accumulator-precision: fine-tuning recovers accuracy with 12-bit accumulators, not below.

Claim (Blumenfeld, Hubara & Soudry 2024, "Towards cheaper inference in deep networks with lower
bit-width accumulators", ICLR, arXiv 2401.14110, abstract): a network fine-tuned from full
precision with its dot products accumulated in 12-bit floats loses no significant accuracy; with
narrower accumulators accuracy degrades, and fine-grained gradient approximations improve it.

Setup: the MNIST-1D MLP 40→100→100→10 (Greydanus 2020) trained in float32 by Adam; then, for each
accumulator width B = 1 + m + e bits (sign, m mantissa, e exponent bits; e fixed at
``exponent_bits``, our split — the paper's formats were not readable to us), every linear layer
accumulates in the simulated format (:class:`genlab.models.low_precision.AccumLinear`, chunk
``chunk``, products and biases exact), the model is evaluated as is ("post-training") and after
``finetune_steps`` Adam steps with straight-through gradients; at the lowest widths also with the
swamping-masked gradient (our reading of "fine-grained", see the layer's docstring). The margin
(``margin``, 2 accuracy points) is ours, stated before running.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from pydantic import Field

from genlab.data.classification import mnist1d
from genlab.experiments._base import Experiment, ExperimentConfig, Result, Verdict
from genlab.models.low_precision import AccumLinear

PAPER = "Blumenfeld, Hubara & Soudry 2024, arXiv 2401.14110 (ICLR)"


class AccumulatorPrecisionConfig(ExperimentConfig):
    """Config of :class:`AccumulatorPrecision`."""

    widths: list[int] = Field(default_factory=lambda: [8, 12], min_length=2, description="accumulator bits 1 + m + e")
    paper_width: int = Field(12, ge=4, description="the width the paper reports as enough")
    exponent_bits: int = Field(4, ge=2, le=8)
    fine_grained_widths: int = Field(1, ge=0, description="how many of the lowest widths also get the swamping-masked gradient")
    chunk: int = Field(16, ge=1)
    hidden: int = Field(100, ge=1)
    pretrain_steps: int = Field(800, ge=1)
    finetune_steps: int = Field(15, ge=0)
    n_eval: int = Field(500, ge=10, le=1000, description="test examples evaluated")
    batch_size: int = Field(100, ge=1)
    lr: float = Field(0.01, gt=0, description="Adam step of the float32 training")
    finetune_lr: float = Field(1e-3, gt=0)
    margin: float = Field(0.02, ge=0, description="accuracy within this of float32 counts as no loss")
    baseline_min: float = Field(0.5, ge=0, le=1, description="precondition: float32 test accuracy at least this")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": {}, "full": {"widths": [6, 7, 8, 9, 10, 11, 12, 13, 14, 16], "fine_grained_widths": 4,
                                      "pretrain_steps": 8000, "finetune_steps": 600, "n_eval": 1000}}


def _mlp(hidden: int) -> torch.nn.Sequential:
    def lin(i: int, o: int) -> AccumLinear:
        return AccumLinear(i, o, sim_dtype=torch.float32)

    return torch.nn.Sequential(lin(40, hidden), torch.nn.ReLU(), lin(hidden, hidden), torch.nn.ReLU(), lin(hidden, 10))


def _set_format(net: torch.nn.Module, mantissa: int | None, exponent: int, chunk: int, grad_mode: str) -> None:
    for m in net.modules():
        if isinstance(m, AccumLinear):
            m.mantissa, m.exponent, m.chunk, m.grad_mode = mantissa, exponent, chunk, grad_mode


def _train(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, batch: int, gen: torch.Generator,
           advance: Any) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        advance(1)


@torch.no_grad()
def _accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((net(x).argmax(1) == y).double().mean())


class AccumulatorPrecision(Experiment):
    name = "accumulator-precision"
    title = "Low-bit accumulators: 12 bits suffice after fine-tuning, fewer lose accuracy"
    paper = PAPER
    notes = {
        "the float32 MLP learns MNIST-1D": (
            "that the float32 MLP reaches test accuracy ≥ baseline_min (0.5) before any accumulator is simulated",
            "too few pretrain_steps or too large an Adam lr for the float32 training",
            "more pretrain_steps or the full preset (--full)"),
        "accumulators the network keeps its float32 accuracy": (
            "the paper's claim: fine-tuned with paper_width-bit (12) accumulators, test accuracy ≥ float32 accuracy − margin (2 points, ours)",
            "too few finetune_steps (15 in quick) to recover from the rounding; the exponent/mantissa split (exponent_bits=4) is ours, not the paper's",
            "more finetune_steps or --full; more seeds via genlab sweep accumulator-precision --quick --grid seed=0:4"),
        "below the paper's width accuracy is lost": (
            "that at the lowest width tested, after fine-tuning, accuracy is below float32 − margin",
            "a lowest width still wide enough (or a chunk small enough) that rounding does not hurt; fine-tuning that recovers anyway",
            "add narrower widths (e.g. widths=[6,8,12]) or --full"),
        "fine-grained gradient (swamping-masked": (
            "that at each of the lowest fine_grained_widths widths the swamping-masked gradient (our reading of the paper's fine-grained approximation) gives strictly higher fine-tuned accuracy than straight-through",
            "a tie or a loss at any width tested; with 15 fine-tuning steps (quick) the two gradients barely differ",
            "--full (600 fine-tuning steps, 4 widths) or more seeds via genlab sweep accumulator-precision --quick --grid seed=0:4"),
        "accuracy against accumulator width": (
            "a finding: accuracy per width before and after fine-tuning (straight-through), no prediction",
            "cannot fail", ""),
    }
    captions = {"accuracy.png": "Test accuracy against accumulator width before (dashed) and after (solid) straight-through fine-tuning, with the float32 line, its margin band and the paper's 12-bit width marked; squares are the fine-grained gradient: the 12-bit, below-width and fine-grained claims."}
    Config = AccumulatorPrecisionConfig

    def run(self, config: AccumulatorPrecisionConfig, recorder: Any) -> Result:
        bad = [b for b in config.widths if b - 1 - config.exponent_bits < 0]
        if bad:
            raise ValueError(f"widths: {bad[0]} bits leave no mantissa with exponent_bits={config.exponent_bits}")
        data = mnist1d()
        gen = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)  # nn.Linear's default init draws from the global generator
        net = _mlp(config.hidden)
        widths = sorted(config.widths)
        fine = widths[: config.fine_grained_widths]
        total = config.pretrain_steps + config.finetune_steps * (len(widths) + len(fine) + 1)
        out: list[dict[str, Any]] = []
        xe, ye = data.x_test[: config.n_eval], data.y_test[: config.n_eval]
        with recorder.progress(self.name, total) as bar:
            _train(net, data.x, data.y, config.pretrain_steps, config.lr, config.batch_size, gen, bar.advance)
            pre = _accuracy(net, xe, ye)
            # the reference: float32, fine-tuned with the same steps (fine-tuning also trains longer)
            ref = copy.deepcopy(net)
            _train(ref, data.x, data.y, config.finetune_steps, config.finetune_lr, config.batch_size,
                   torch.Generator().manual_seed(config.seed + 1000), bar.advance)
            base = _accuracy(ref, xe, ye)
            recorder.log_many({"acc/float32": pre, "acc/float32_finetuned": base}, 0)
            for bits in widths:
                m = bits - 1 - config.exponent_bits
                for mode in ["ste"] + (["swamp"] if bits in fine else []):
                    tuned = copy.deepcopy(net)
                    _set_format(tuned, m, config.exponent_bits, config.chunk, mode)
                    post = _accuracy(tuned, xe, ye)
                    _train(tuned, data.x, data.y, config.finetune_steps, config.finetune_lr, config.batch_size,
                           torch.Generator().manual_seed(config.seed + bits), bar.advance)
                    acc = _accuracy(tuned, xe, ye)
                    out.append({"bits": bits, "mantissa": m, "grad": mode, "post_training": post, "finetuned": acc})
                    recorder.log_many({f"acc/{bits}bits/{mode}/post": post, f"acc/{bits}bits/{mode}/finetuned": acc}, bits)
        return {"float32_pretrained": pre, "float32": base, "runs": out}

    def checks(self, config: AccumulatorPrecisionConfig, result: Result) -> list[Verdict]:
        base = result["float32"]
        ste = {r["bits"]: r for r in result["runs"] if r["grad"] == "ste"}
        swamp = {r["bits"]: r for r in result["runs"] if r["grad"] == "swamp"}
        lowest = min(ste)
        out = [Verdict(
            claim="the float32 MLP learns MNIST-1D (precondition)",
            predicted=f"test accuracy ≥ {config.baseline_min:g}",
            measured=f"{base:.4f}",
            tolerance="—",
            passed=base >= config.baseline_min,
            paper=PAPER,
            kind="precondition",
        )]
        if config.paper_width in ste:
            r = ste[config.paper_width]
            out.append(Verdict(
                claim=f"fine-tuned with {config.paper_width}-bit accumulators the network keeps its float32 accuracy",
                predicted=f"accuracy ≥ float32 − {config.margin:g} = {base - config.margin:.4f}",
                measured=f"{r['finetuned']:.4f} (before fine-tuning {r['post_training']:.4f})",
                tolerance=f"{config.margin:g} (ours)",
                passed=r["finetuned"] >= base - config.margin,
                paper=PAPER,
            ))
        r = ste[lowest]
        out.append(Verdict(
            claim=f"below the paper's width accuracy is lost: {lowest}-bit accumulators, fine-tuned",
            predicted=f"accuracy < float32 − {config.margin:g} = {base - config.margin:.4f}",
            measured=f"{r['finetuned']:.4f}",
            tolerance=f"{config.margin:g}",
            passed=r["finetuned"] < base - config.margin,
            paper=PAPER,
        ))
        if swamp:
            pairs = [(b, ste[b]["finetuned"], swamp[b]["finetuned"]) for b in sorted(swamp)]
            out.append(Verdict(
                claim="at the lowest widths the fine-grained gradient (swamping-masked, our reading) beats straight-through",
                predicted="accuracy(fine-grained) > accuracy(STE) at every width tested",
                measured="; ".join(f"{b} bits: STE {a:.4f}, fine-grained {c:.4f}" for b, a, c in pairs),
                tolerance="strict",
                passed=all(c > a for _, a, c in pairs),
                paper=PAPER,
            ))
        out.append(Verdict(
            claim="accuracy against accumulator width, before and after fine-tuning (STE)",
            predicted="no prediction",
            measured="; ".join(f"{b} bits (m={ste[b]['mantissa']}): {ste[b]['post_training']:.3f} → {ste[b]['finetuned']:.3f}" for b in sorted(ste)),
            tolerance="—",
            passed=True,
            paper=PAPER,
            kind="finding",
        ))
        return out

    def figures(self, config: AccumulatorPrecisionConfig, result: Result) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        base = result["float32"]
        ste = sorted((r for r in result["runs"] if r["grad"] == "ste"), key=lambda r: r["bits"])
        sw = sorted((r for r in result["runs"] if r["grad"] == "swamp"), key=lambda r: r["bits"])
        fig, ax = plt.subplots(figsize=(6.5, 4))
        b = [r["bits"] for r in ste]
        ax.axhline(base, color="k", lw=1, label=f"float32 {base:.3f}")
        ax.axhspan(base - config.margin, base, color="k", alpha=0.1, label=f"margin {config.margin:g}")
        ax.axvline(config.paper_width, color="gray", ls=":", label=f"paper's width ({config.paper_width} bits)")
        ax.plot(b, [r["post_training"] for r in ste], "o--", color="C1", label="accumulator, no fine-tuning")
        ax.plot(b, [r["finetuned"] for r in ste], "o-", color="C0", label="fine-tuned, straight-through")
        if sw:
            ax.plot([r["bits"] for r in sw], [r["finetuned"] for r in sw], "s", color="C3", ms=8, label="fine-tuned, fine-grained (ours)")
        ax.set_xlabel(f"accumulator bits (1 sign + m mantissa + {config.exponent_bits} exponent)")
        ax.set_ylabel("MNIST-1D test accuracy")
        ax.legend(fontsize=7)
        ax.set_title("accuracy against accumulator width", fontsize=9)
        fig.tight_layout()
        return {"accuracy.png": fig}


EXPERIMENT = AccumulatorPrecision()
