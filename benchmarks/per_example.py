"""Benchmark: gradient coherence and gradient SNR without per-example gradients.

Side by side, in one run: genlab's engine (genlab.probes.gradient_stats), a materializing
``torch.func.vmap(grad)`` baseline, and BackPACK (backpack-for-pytorch: BatchL2Grad for the
coherence, SumGradSquared for the SNR; only if installed — it is not a genlab dependency).
Each method runs in its own subprocess, which first times one plain batch gradient (forward +
backward of the mean loss) on the same model and data: the cost is reported as a multiple of
that, and the peak memory as the growth of the process's peak RSS during the method's first call
(``resource.getrusage``; the subprocess's setup and plain gradient are already in the base).
The values of α and of the pooled SNR are reported too, so the methods check each other.

    python benchmarks/per_example.py [--quick] [--models ...] [--markdown benchmarks/per_example.md]

The ``transformer`` model (LayerNorm + multi-head attention) runs through genlab's vmap fallback
(its modules have no fast path); BackPACK has no extension for either module.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODELS = {
    # ~0.54M parameters, batch 1000 (the MLP target: ≤ 3× a batch gradient)
    "mlp": {"batch": 1000},
    "cnn": {"batch": 256},
    "cnn-wide": {"batch": 256},
    # LayerNorm + multi-head attention (nn.TransformerEncoderLayer): BackPACK supports neither
    "transformer": {"batch": 128},
}
METHODS = ["genlab", "vmap", "backpack"]
QUANTITIES = ["coherence", "snr"]


def _build(name: str, batch: int):
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

        model = Encoder()
        x = torch.randn(batch, 16, 16)
    elif name == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
        x = torch.randn(batch, 784)
    elif name == "cnn-wide":
        model = nn.Sequential(
            nn.Conv2d(1, 32, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(1024, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
        x = torch.randn(batch, 1, 28, 28)
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(512, 10),
        )
        x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    return model, x, y


def _snr_pooled(mean: "torch.Tensor", second: "torch.Tensor") -> float:
    var = (second - mean**2).clamp_min(0)
    return float((mean**2).sum() / var.sum())


def _method(name: str, quantity: str, model, x, y):
    """A zero-argument callable computing ``quantity`` with ``name``; returns the value."""
    import torch
    from torch import nn

    loss_fn = nn.functional.cross_entropy
    params = [p for p in model.parameters()]
    B = x.shape[0]
    if name == "genlab":
        from genlab.probes.gradient_stats import gradient_coherence, gradient_snr

        if quantity == "coherence":
            return lambda: gradient_coherence(model, loss_fn, (x, y)).alpha
        return lambda: gradient_snr(model, loss_fn, (x, y)).overall.pooled_snr
    if name == "vmap":
        from torch.func import functional_call, grad, vmap

        pdict = {n: p.detach() for n, p in model.named_parameters()}

        def one(pd, xi, yi):
            return loss_fn(functional_call(model, pd, (xi.unsqueeze(0),)), yi.unsqueeze(0))

        per_ex = vmap(grad(one), in_dims=(None, 0, 0))

        def run():
            g = per_ex(pdict, x, y)
            flat = torch.cat([v.reshape(B, -1) for v in g.values()], 1)  # the N × P matrix
            mean = flat.mean(0)
            if quantity == "coherence":
                return float(mean.pow(2).sum() / flat.pow(2).sum(1).mean())
            return _snr_pooled(mean, flat.pow(2).mean(0))

        return run
    if name == "backpack":
        from backpack import backpack, extend
        from backpack.extensions import BatchL2Grad, SumGradSquared

        emodel = extend(model)
        eloss = extend(nn.CrossEntropyLoss())

        def run():
            for p in params:
                p.grad = None
            loss = eloss(emodel(x), y)
            ext = BatchL2Grad() if quantity == "coherence" else SumGradSquared()
            with backpack(ext):
                loss.backward()
            mean = torch.cat([p.grad.reshape(-1) for p in params])
            # BackPACK's individual gradients are those of (1/B)·ℓ_i (mean reduction): rescale
            if quantity == "coherence":
                sq = sum(p.batch_l2 for p in params) * B**2
                return float(mean.pow(2).sum() / sq.mean())
            second = torch.cat([p.sum_grad_squared.reshape(-1) for p in params]) * B
            return _snr_pooled(mean, second)

        return run
    raise ValueError(name)


def _plain(model, x, y):
    import torch
    from torch import nn

    params = list(model.parameters())

    def run():
        loss = nn.functional.cross_entropy(model(x), y)
        return torch.autograd.grad(loss, params)

    return run


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def worker(model_name: str, method: str, quantity: str, repeats: int) -> dict:
    """Runs in a subprocess: plain gradient first (base), then the method."""
    import torch

    model, x, y = _build(model_name, MODELS[model_name]["batch"])
    plain = _plain(model, x, y)
    plain()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        fn = _method(method, quantity, model, x, y)
    except ImportError as exc:
        return {"skipped": f"{method} not installed ({exc})"}
    value = fn()  # first call: peak memory
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024.0
    t_method = _time(fn, repeats)
    t_plain = _time(plain, repeats)
    return {
        "value": float(value),
        "seconds": t_method,
        "plain_seconds": t_plain,
        "ratio": t_method / t_plain,
        "extra_peak_mb": peak_mb,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": int(x.shape[0]),
        "threads": torch.get_num_threads(),
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| model | quantity | method | × batch gradient | extra peak memory (MB) | value |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['quantity']} | {r['method']} | skipped | | {r['skipped']} |")
            continue
        label = "α" if r["quantity"] == "coherence" else "pooled SNR"
        lines.append(
            f"| {r['model']} ({r['params'] / 1e6:.2f}M params, batch {r['batch']}) | {r['quantity']} | {r['method']} "
            f"| {r['ratio']:.2f} | {r['extra_peak_mb']:.0f} | {label} = {r['value']:.6g} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repeats")
    ap.add_argument("--markdown", default=None, help="also write the table to this file")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS), help="models to run")
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "METHOD", "QUANTITY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    repeats = 2 if args.quick else args.repeats
    if args.worker:
        print(json.dumps(worker(*args.worker, repeats)))
        return
    results = []
    for model_name in args.models:
        for quantity in QUANTITIES:
            for method in METHODS:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", model_name, method, quantity, "--repeats", str(repeats)],
                    capture_output=True,
                    text=True,
                    env=os.environ.copy(),
                )
                if out.returncode != 0:
                    res = {"skipped": f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"}
                else:
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                results.append({"model": model_name, "quantity": quantity, "method": method, **res})
                print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "per_example", "results": results}, indent=1))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(
                "Per-example gradient statistics: cost as a multiple of one plain batch gradient "
                "(forward + backward, same process), extra peak RSS of the first call. "
                f"torch threads: {results[0].get('threads', '?')}; median of {repeats} runs; "
                f"load average while measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
                "(shared machine: ratios within ~20% are noise).\n\n"
            )
            fh.write(markdown(results))


if __name__ == "__main__":
    main()
