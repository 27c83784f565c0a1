"""Trained MNIST-1D models shared by the curvature benchmarks (not a benchmark itself).

An MLP 40-256-256-10 (78,858 parameters) and the MNIST-1D reference CNN (Greydanus 2020: three
strided Conv1d layers of 25 channels and a linear read-out, 5,210 parameters), both ``nn.Sequential``
with ReLU modules (so that BackPACK's exact Hessian diagonal applies), trained by full-batch Adam on
the first 1000 MNIST-1D training examples until every one is classified correctly (100% train
accuracy), float32. Trained weights are cached in ``benchmarks/.cache`` (loaded with
``weights_only=True``); a trained model's Hessian has the clustered top spectrum of real networks,
where an untrained one's top eigenvalue is well separated and power iteration looks good.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "benchmarks" / ".cache"
N_TRAIN = 1000


def data(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 1000 MNIST-1D training examples: inputs (1000, 40) for the MLP, (1000, 1, 40) for the CNN."""
    from genlab.data.classification import mnist1d

    d = mnist1d()
    x, y = d.x[:N_TRAIN].float(), d.y[:N_TRAIN].long()
    return (x[:, None, :], y) if kind == "cnn" else (x, y)


def build(kind: str) -> torch.nn.Sequential:
    torch.manual_seed(0)
    if kind == "mlp":
        return torch.nn.Sequential(
            torch.nn.Linear(40, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10),
        )
    c = 25
    return torch.nn.Sequential(
        torch.nn.Conv1d(1, c, 5, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv1d(c, c, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv1d(c, c, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(c * 5, 10),
    )


def trained(kind: str, max_steps: int = 20000) -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor, dict]:
    """The model trained to 100% train accuracy (cached), its data, and how it was trained."""
    x, y = data(kind)
    model = build(kind)
    path = CACHE / f"{kind}_mnist1d_{N_TRAIN}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["state"])
        meta = {k: v for k, v in saved.items() if k != "state"}
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = 0
        while step < max_steps:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            step += 1
            if step % 50 == 0:
                with torch.no_grad():
                    if bool((model(x).argmax(1) == y).all()):
                        break
        meta = {"adam_steps": step}
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save({"state": model.state_dict(), **meta}, path)
    model.eval().zero_grad(set_to_none=True)
    with torch.no_grad():
        out = model(x)
        meta.update(train_accuracy=float((out.argmax(1) == y).float().mean()), train_loss=float(F.cross_entropy(out, y)),
                    params=sum(p.numel() for p in model.parameters()), examples=N_TRAIN)
    return model, x, y, meta


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def parser(doc: str, **extra: tuple[type, object, str]) -> argparse.ArgumentParser:
    """The common command line: --models, --json, --markdown, and ``extra`` (name: (type, default, nargs))."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    for name, (typ, default, nargs) in extra.items():
        ap.add_argument(f"--{name}", type=typ, default=default, **({"nargs": nargs} if nargs else {}))
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    return ap


def emit(payload: dict, args: argparse.Namespace, table: str) -> None:
    """Print the JSON; write it and the markdown table where asked."""
    text = json.dumps(payload, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
