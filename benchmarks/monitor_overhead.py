"""Benchmark: what the Monitor adds to a user's training loop, against the plain loop, in one run.

Methods, interleaved round by round on the same model architecture (each method keeps its own
copy of the model and optimizer across rounds, so its schedules see consecutive steps):

- ``plain``: the user's loop (SGD, batch 128, forward + backward + step);
- ``economy/1``, ``economy/16``, ``economy/256``: ``genlab.Monitor(probes="economy", every=k)`` used
  as ``with monitor(step, batch):`` around the backward (the hook path);
- ``economy/1 step()``: the same every step through ``monitor.step(batch, loss=)`` (second pass);
- ``curvature/16``, ``curvature/128``: ``probes="curvature"`` (λ_max warm-started, Hutchinson trace
  with 30 products, batch sharpness);
- ``budget=0.1``: ``probes=["economy", "curvature"]`` every step under ``budget=0.1``;
- ``cockpit economy``: Cockpit's ``configuration("economy")`` every step (Schneider, Dangel &
  Hennig 2021, arXiv 2102.06604), where Cockpit supports the model (BackPACK-extended
  ``nn.Sequential``; installed only in the benchmarks' environment, ``benchmarks/make_env.sh``).

Models: an MLP and a CNN on MNIST-1D (Greydanus 2020; the ``mnist1d`` package), and a tiny
transformer on MNIST-1D read as 10 tokens of 4 values. Reported: per method the ratio of its
wall time to the plain loop's (summed over rounds), its overhead (ratio − 1), and for the budget
the Monitor's own overhead estimate. Run with ``OMP_NUM_THREADS=1``:

    python benchmarks/monitor_overhead.py [--steps 512] [--round 64] [--models mlp cnn transformer]
        [--markdown benchmarks/monitor_overhead.md]

JSON to stdout. Targets (issue 13): economy/16 ≤ 1.05×, economy/1 ≤ 1.5×, budget=0.1 overhead
within 0.08–0.12.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time

import torch
from torch import nn

torch.set_num_threads(1)

METHODS = ["plain", "economy/1", "economy/16", "economy/256", "economy/1 step()", "curvature/16", "curvature/128",
           "budget=0.1", "cockpit economy"]


class Tiny(nn.Module):
    """A one-layer transformer encoder on MNIST-1D as 10 tokens of 4 values."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 32)
        self.pos = nn.Parameter(torch.zeros(10, 32))
        self.layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        h = self.embed(x.reshape(x.shape[0], 10, 4)) + self.pos
        return self.head(self.layer(h).mean(1))


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "mlp":
        return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "cnn":
        return nn.Sequential(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                             nn.Conv1d(16, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(160, 10))
    return Tiny()


class Runner:
    """One method's model, optimizer, instrument and step counter; ``run(batches)`` times a round."""

    def __init__(self, method: str, model_name: str, lr: float):
        import genlab

        self.method, self.step = method, 0
        self.model = build(model_name)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.loss_fn = nn.CrossEntropyLoss()
        self.mon = None
        self.cockpit = None
        self.error = ""
        if method.startswith("economy") or method.startswith("curvature"):
            probes, every = method.split()[0].split("/")
            self.mon = genlab.Monitor(self.model, self.loss_fn, self.opt, probes=probes, every=int(every))
        elif method == "budget=0.1":
            self.mon = genlab.Monitor(self.model, self.loss_fn, self.opt, probes=["economy", "curvature"], budget=0.1)
        elif method == "cockpit economy":
            self._cockpit()

    def _cockpit(self) -> None:
        try:
            from backpack import extend
            from cockpit import Cockpit
            from cockpit.utils.configuration import configuration
        except Exception as err:  # noqa: BLE001 - not installed: reported
            self.error = f"not installed ({type(err).__name__})"
            return
        try:
            self.model = extend(self.model)
            self.opt = torch.optim.SGD(self.model.parameters(), lr=self.opt.param_groups[0]["lr"])
            self.loss_fn = extend(nn.CrossEntropyLoss())
            self.individual = nn.CrossEntropyLoss(reduction="none")
            self.cockpit = Cockpit(self.model.parameters(), quantities=configuration("economy"))
        except Exception as err:  # noqa: BLE001
            self.error = f"unsupported: {str(err).splitlines()[0][:100]}"

    def run(self, batches) -> float:
        if self.mon is not None and self.mon.budget is not None:
            self.mon.budget.resume()  # the other methods' rounds are not this loop's time
        t0 = time.perf_counter()
        for x, y in batches:
            self.step += 1
            self.opt.zero_grad()
            if self.cockpit is not None:
                out = self.model(x)
                loss = self.loss_fn(out, y)
                info = {"batch_size": x.shape[0], "individual_losses": self.individual(out, y), "loss": loss,
                        "optimizer": self.opt}
                with self.cockpit(self.step - 1, info=info):  # Cockpit counts from 0
                    loss.backward(create_graph=self.cockpit.create_graph(self.step - 1))
                self.opt.step()
            elif self.mon is not None and self.method != "economy/1 step()":
                with self.mon(self.step, (x, y)):
                    loss = self.loss_fn(self.model(x), y)
                    loss.backward()
                self.opt.step()
            else:
                loss = self.loss_fn(self.model(x), y)
                loss.backward()
                self.opt.step()
                if self.mon is not None:
                    self.mon.step((x, y), loss=loss)
        elapsed = time.perf_counter() - t0
        if self.mon is not None and self.mon.budget is not None:
            self.mon.budget.pause()
        return elapsed


def bench_model(name: str, steps: int, round_steps: int, x: torch.Tensor, y: torch.Tensor, batch: int) -> dict:
    lr = 0.05
    runners = {m: Runner(m, name, lr) for m in METHODS}
    for m, r in list(runners.items()):
        if r.error:
            del runners[m]
    g = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(y), generator=g) for _ in range(steps * batch // len(y) + 1)])
    seconds = {m: 0.0 for m in runners}
    failed: dict[str, str] = {}
    # one warm-up step each (imports, first allocations), not timed
    for m, r in runners.items():
        try:
            r.run([(x[order[:batch]], y[order[:batch]])])
        except Exception as err:  # noqa: BLE001 - a peer failing on the model is a result
            failed[m] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"

    for start in range(batch, steps * batch + batch, round_steps * batch):
        idx = order[start:start + round_steps * batch]
        batches = [(x[idx[i:i + batch]], y[idx[i:i + batch]]) for i in range(0, len(idx) - batch + 1, batch)]
        for m, r in runners.items():
            if m in failed:
                continue
            try:
                seconds[m] += r.run(batches)
            except Exception as err:  # noqa: BLE001 - a peer failing on the model is a result
                failed[m] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    print(f"{name}: done", file=sys.stderr, flush=True)
    base = seconds["plain"]
    out = {"model": name, "parameters": sum(p.numel() for p in build(name).parameters()), "batch": batch,
           "steps": runners["plain"].step - 1, "plain_seconds": base, "methods": {}}
    for m in METHODS:
        if m not in runners:
            out["methods"][m] = {"status": Runner(m, name, lr).error}
        elif m in failed:
            out["methods"][m] = {"status": failed[m]}
        else:
            row = {"ratio": seconds[m] / base, "overhead": seconds[m] / base - 1}
            r = runners[m]
            if m == "budget=0.1" and r.mon is not None:
                row["monitor_overhead_estimate"] = r.mon.budget.overhead
                row["measured"] = {q: len(v) for q, v in r.mon.history.items() if q in ("grad_norm", "sharpness", "trace", "loss", "batch_sharpness")}
                row["skipped"] = dict(r.mon.skipped)
            out["methods"][m] = row
    return out


TARGETS = {"economy/1": ("ratio", 1.5, "≤ 1.5×"), "economy/16": ("ratio", 1.05, "≤ 1.05×"),
           "budget=0.1": ("overhead", (0.08, 0.12), "overhead 0.08–0.12")}


def target_met(m: str, row: dict) -> str:
    if m not in TARGETS or "ratio" not in row:
        return ""
    key, lim, text = TARGETS[m]
    v = row[key]
    ok = lim[0] <= v <= lim[1] if isinstance(lim, tuple) else v <= lim
    return f"{text}: {'met' if ok else 'NOT met'}"


def markdown(results: list[dict]) -> str:
    lines = ["| method | " + " | ".join(f"{r['model']} ({r['parameters']} params)" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for m in METHODS:
        cells = []
        for r in results:
            row = r["methods"][m]
            if "ratio" not in row:
                cells.append(row["status"])
                continue
            cell = f"{row['ratio']:.3g}×"
            if "monitor_overhead_estimate" in row:
                cell += f" (overhead {row['overhead']:.3f}; Monitor's estimate {row['monitor_overhead_estimate']:.3f})"
            t = target_met(m, row)
            cells.append(cell + (f" — {t}" if t else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--round", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--models", nargs="+", default=["mlp", "cnn", "transformer"])
    ap.add_argument("--markdown", default=None)
    a = ap.parse_args()
    from genlab.data.classification import mnist1d

    d = mnist1d()
    x, y = d.x, d.y
    t0 = time.perf_counter()
    results = [bench_model(m, a.steps, a.round, x, y, a.batch) for m in a.models]
    report = {"benchmark": "monitor_overhead", "torch": torch.__version__, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "seconds": time.perf_counter() - t0, "results": results}
    json.dump(report, sys.stdout, indent=1)
    print()
    if a.markdown:
        head = (f"# Monitor overhead (benchmarks/monitor_overhead.py)\n\nMNIST-1D, batch {a.batch}, SGD, {a.steps} steps per "
                f"method in rounds of {a.round}, methods interleaved; 1 thread; torch {torch.__version__}. Ratio = wall time "
                "of the loop with the method / the plain loop's, summed over rounds.\n\n")
        with open(a.markdown, "w") as f:
            f.write(head + markdown(results))


if __name__ == "__main__":
    main()
