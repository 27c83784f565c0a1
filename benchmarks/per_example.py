"""Benchmark: per-example gradient norms, gradient coherence and gradient SNR against BackPACK and Opacus.

Side by side, in one process per model with the methods interleaved (round r runs every method
once, in turn): one plain batch gradient (forward + backward of the mean loss, the unit of cost),
genlab (``per_example_stats``, ``gradient_coherence``, ``gradient_snr(...).overall.pooled_snr``),
BackPACK (``BatchL2Grad`` for norms and coherence, ``SumGradSquared`` for the SNR) and Opacus
ghost clipping (``GradSampleModuleFastGradientClipping``: per-example norms without per-example
gradients; coherence from those norms and the batch gradient; Opacus has no SNR). BackPACK and
Opacus each work on their own deep copy of the model (their hooks stay out of the other
methods' passes). A method that does not support a model is reported as skipped with its error.
Reported: the median time of each method over the rounds divided by the median plain gradient,
and the value it computed (mean squared norm, α, pooled SNR), so the methods check each other.

Models: ``mlp`` 784 → 512 → 256 → 10 (batch 1000); ``cnn-bn`` two 5×5 conv + BatchNorm (eval
mode) + max-pool, linear head, 28×28 inputs (batch 256); ``transformer`` linear embedding, one
``nn.TransformerEncoderLayer`` (LayerNorm + multi-head attention, dropout 0), mean pooling
(batch 128, 16 tokens). Untrained, random data: the cost of these statistics does not depend on
training.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/per_example.py [--repeats 7] [--models ...] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = {"mlp": 1000, "cnn-bn": 256, "transformer": 128}
QUANTITIES = ["norms", "coherence", "snr"]
METHODS = ["genlab", "backpack", "opacus-ghost"]


def build(name: str, batch: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "transformer":

        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Linear(16, 64)
                self.layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
                self.head = nn.Linear(64, 10)

            def forward(self, x):
                return self.head(self.layer(self.embed(x)).mean(1))

        model, x = Encoder(), torch.randn(batch, 16, 16)
    elif name == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
        x = torch.randn(batch, 784)
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(512, 10),
        )
        x = torch.randn(batch, 1, 28, 28)
        with torch.no_grad():  # running statistics of a few batches, then eval mode
            for _ in range(3):
                model(torch.randn(batch, 1, 28, 28))
    y = torch.randint(0, 10, (batch,))
    return model.eval(), x, y


def _pooled_snr(mean, second) -> float:
    var = (second - mean**2).clamp_min(0)
    return float((mean**2).sum() / var.sum())


def method(name: str, quantity: str, model, x, y):
    """A zero-argument callable computing ``quantity`` with ``name`` (returns its value)."""
    import torch
    from torch import nn

    loss_fn = nn.functional.cross_entropy
    B = x.shape[0]
    if name == "plain":
        params = list(model.parameters())
        return lambda: torch.autograd.grad(loss_fn(model(x), y), params) and 0.0
    if name == "genlab":
        from genlab.probes.gradient_stats import gradient_coherence, gradient_snr
        from genlab.probes.per_example import per_example_stats

        if quantity == "norms":
            return lambda: float(per_example_stats(model, loss_fn, (x, y)).sq_norms.mean())
        if quantity == "coherence":
            return lambda: gradient_coherence(model, loss_fn, (x, y)).alpha
        return lambda: gradient_snr(model, loss_fn, (x, y)).overall.pooled_snr
    if name == "backpack":
        from backpack import backpack, extend
        from backpack.extensions import BatchL2Grad, SumGradSquared

        emodel = extend(copy.deepcopy(model))
        eloss = extend(nn.CrossEntropyLoss())
        params = list(emodel.parameters())

        def run():
            for p in params:
                p.grad = None
            loss = eloss(emodel(x), y)
            with backpack(SumGradSquared() if quantity == "snr" else BatchL2Grad()):
                loss.backward()
            # BackPACK's individual gradients are those of (1/B)·ℓ_i (mean reduction): rescaled
            if quantity == "snr":
                mean = torch.cat([p.grad.reshape(-1) for p in params])
                return _pooled_snr(mean, torch.cat([p.sum_grad_squared.reshape(-1) for p in params]) * B)
            sq = sum(p.batch_l2 for p in params) * B**2
            if quantity == "norms":
                return float(sq.mean())
            mean = torch.cat([p.grad.reshape(-1) for p in params])
            return float(mean.pow(2).sum() / sq.mean())

        return run
    if name == "opacus-ghost":
        if quantity == "snr":
            return None
        from opacus.grad_sample import GradSampleModuleFastGradientClipping

        # Opacus records activations in train mode only (same function here: no dropout; the
        # BatchNorm model, where train mode would differ, Opacus refuses anyway)
        gsm = GradSampleModuleFastGradientClipping(copy.deepcopy(model).train(), loss_reduction="mean",
                                                   use_ghost_clipping=True)
        params = [p for p in gsm.parameters() if p.requires_grad]

        def run():
            for p in params:
                p.grad = None
            loss_fn(gsm(x), y).backward()
            sq = gsm.get_norm_sample().pow(2)
            if quantity == "norms":
                return float(sq.mean())
            mean = torch.cat([p.grad.reshape(-1) for p in params])
            return float(mean.pow(2).sum() / sq.mean())

        return run
    raise ValueError(name)


def worker(model_name: str, repeats: int) -> list[dict]:
    """One process per model: every (quantity, method) and the plain gradient, interleaved."""
    import torch

    model, x, y = build(model_name, MODELS[model_name])
    fns, rows = {("-", "plain"): method("plain", "-", model, x, y)}, {}
    for q in QUANTITIES:
        for m in METHODS:
            try:
                fn = method(m, q, model, x, y)
                if fn is None:
                    continue
                rows[(q, m)] = {"value": float(fn())}  # first call: warm-up and the value
                fns[(q, m)] = fn
            except Exception as exc:  # the method does not support this model
                rows[(q, m)] = {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"}
    fns[("-", "plain")]()
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    plain = statistics.median(times[("-", "plain")])
    out = []
    for (q, m), r in rows.items():
        if "value" in r:
            t = statistics.median(times[(q, m)])
            r.update(seconds=t, ratio=t / plain)
        out.append({"model": model_name, "quantity": q, "method": m, "plain_seconds": plain,
                    "params": sum(p.numel() for p in model.parameters()), "batch": int(x.shape[0]),
                    "threads": torch.get_num_threads(), **r})
    return out


def markdown(results: list[dict], repeats: int, load: tuple[float, float]) -> str:
    lines = [
        "Per-example gradient statistics: median time over interleaved rounds as a multiple of one plain "
        f"batch gradient (forward + backward, same process, same rounds). torch threads: "
        f"{results[0].get('threads', '?')}; {repeats} rounds; load average {load[0]:.1f} before and "
        f"{load[1]:.1f} after, on {os.cpu_count()} cores (a shared machine: ratios within ~20% are noise).",
        "",
        "| model | quantity | method | × batch gradient | value |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        label = {"norms": "mean ‖g_i‖²", "coherence": "α", "snr": "pooled SNR"}[r["quantity"]]
        what = f"{r['model']} ({r['params'] / 1e6:.2f}M params, batch {r['batch']})"
        if "skipped" in r:
            lines.append(f"| {what} | {r['quantity']} | {r['method']} | unsupported | {r['skipped']} |")
        else:
            lines.append(f"| {what} | {r['quantity']} | {r['method']} | {r['ratio']:.2f} | {label} = {r['value']:.6g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--markdown", default=None, help="also write the table to this file")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats)))
        return
    load0 = os.getloadavg()[0]
    results = []
    for name in args.models:
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--repeats", str(args.repeats)],
                             capture_output=True, text=True, env=os.environ.copy())
        if out.returncode != 0:
            results.append({"model": name, "quantity": "-", "method": "-", "params": 0, "batch": 0,
                            "skipped": f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"})
            continue
        results.extend(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    load = (load0, os.getloadavg()[0])
    print(json.dumps({"benchmark": "per_example", "repeats": args.repeats, "load_average": load, "results": results},
                     indent=1))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(results, args.repeats, load))


if __name__ == "__main__":
    main()
