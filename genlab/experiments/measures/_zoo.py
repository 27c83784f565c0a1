"""The model zoo of the measures theme: MNIST-1D MLPs over hyperparameter axes, each trained to a
fixed training-loss criterion (Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020, arXiv 1912.02178,
Sec. 4: cross-entropy 0.01; models that do not reach it are left out of the protocol).

One member = ``[Linear → ReLU → Dropout] × depth → Linear`` of width ``width``, Adam (not the
paper's SGD with momentum: it reaches the criterion in far fewer CPU steps) with step ``lr``,
minibatch ``batch_size``, L2 weight decay ``weight_decay``, dropout ``dropout``, on the first
``n_train`` MNIST-1D training signals; the training loss (eval mode, whole training subset) is
checked after every epoch and training stops at ``criterion``. A member is stored as two state
dicts (final and initial, ``torch.save`` bytes, read back with ``weights_only=True``) plus its
numbers, so measures can be recomputed without retraining.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

import torch
from torch import nn

from genlab.data.classification import ClassificationData

AXES = ("width", "depth", "lr", "batch_size", "weight_decay", "dropout", "n_train")


@lru_cache(maxsize=2)
def zoo_data(num_samples: int = 5000) -> ClassificationData:
    """MNIST-1D generated locally with ``num_samples`` signals (80 % train; 5000 = the standard
    4000/1000 split of Greydanus 2020; fewer is the same generator, cheaper to make)."""
    if num_samples == 5000:
        from genlab.experiments._classification import _mnist1d

        return _mnist1d()
    from mnist1d.data import get_dataset_args, make_dataset

    from genlab.data.classification import _tensors

    args = get_dataset_args()
    args.num_samples = int(num_samples)
    d = make_dataset(args)
    return _tensors(d["x"], d["y"], d["x_test"], d["y_test"], 10, f"mnist1d-{num_samples}")


def build_model(width: int, depth: int, dropout: float, seed: int, d_in: int = 40, classes: int = 10) -> nn.Sequential:
    """The member's network, PyTorch default init drawn from ``seed`` (global generator untouched)."""
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        dims = [d_in] + [width] * depth
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(dims[-1], classes))
    return nn.Sequential(*layers)


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in state.items()}, buf)
    return buf.getvalue()


def load_state(data: bytes) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@dataclass
class Member:
    """One trained model of the zoo with its hyperparameters and numbers."""

    spec: dict[str, Any]
    model: nn.Sequential
    init_state: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss) after every epoch
    stored: dict[str, Any] = field(default_factory=dict)  # measures computed when it was trained: settings, values, dist_all_sq

    @property
    def reached(self) -> bool:
        return bool(self.metrics.get("reached", 0.0))


@torch.no_grad()
def _eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    out = model(x)
    return float(nn.functional.cross_entropy(out, y)), float((out.argmax(-1) == y).double().mean())


def train_member(spec: dict[str, Any], data: ClassificationData, criterion: float, max_steps: int, seed: int) -> Member:
    """Train one member (see the module docstring) and measure train/test loss and accuracy."""
    n = int(spec["n_train"])
    x, y = data.x[:n], data.y[:n]
    model = build_model(int(spec["width"]), int(spec["depth"]), float(spec["dropout"]), seed, data.x.shape[1], data.num_classes)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=float(spec["lr"]), weight_decay=float(spec["weight_decay"]))
    g = torch.Generator().manual_seed(seed + 1)
    b = min(int(spec["batch_size"]), n)
    steps, loss = 0, _eval(model, x, y)[0]
    curve = [(0, loss)]
    while steps < max_steps and loss > criterion and loss == loss:
        model.train()
        perm = torch.randperm(n, generator=g)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 2 + steps)  # dropout masks from the member's seed
            for i in range(0, n - b + 1, b):
                idx = perm[i : i + b]
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
                steps += 1
                if steps >= max_steps:
                    break
        loss = _eval(model, x, y)[0]
        curve.append((steps, loss))
    train_loss, train_acc = _eval(model, x, y)
    test_loss, test_acc = _eval(model, data.x_test, data.y_test)
    metrics = {
        "train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc,
        "test_error": 1 - test_acc, "gap": train_acc - test_acc, "steps": float(steps),
        "reached": float(train_loss <= criterion), "n_train": float(n), "n_test": float(len(data.y_test)),
    }
    return Member(dict(spec), model, init, metrics, curve)


def grid(axes: dict[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the axes' values, one spec dict per point (in AXES order)."""
    names = [a for a in AXES if a in axes]
    return [dict(zip(names, vals)) for vals in itertools.product(*(list(axes[a]) for a in names))]


def member_measures(m: Member, data: ClassificationData, seed: int, draws: int, ascent_steps: int) -> dict[str, Any]:
    """Every measure of :func:`genlab.probes.measures_suite.all_measures` on the member's training
    subset, with the settings that produced them (so a reader can tell whether they match its own)
    and ‖θ − θ₀‖² over all parameters."""
    from genlab.probes.distance import distance_from_init
    from genlab.probes.measures_suite import all_measures

    n = int(m.spec["n_train"])
    values = all_measures(m.model, data.x[:n], data.y[:n], m.init_state, seed=seed, draws=draws, ascent_steps=ascent_steps)
    dist = distance_from_init(m.model, m.init_state).total ** 2
    return {"settings": measure_settings(seed, draws, ascent_steps), "values": values, "dist_all_sq": dist}


def measure_settings(seed: int, draws: int, ascent_steps: int) -> dict[str, int]:
    return {"seed": int(seed), "draws": int(draws), "ascent_steps": int(ascent_steps)}


def load_member(spec: dict[str, Any], final: bytes, init: bytes, metrics: dict[str, float],
                stored: dict[str, Any] | None = None) -> Member:
    """A member rebuilt from stored state dicts (``weights_only=True``) without retraining."""
    model = build_model(int(spec["width"]), int(spec["depth"]), float(spec["dropout"]), 0)
    model.load_state_dict(load_state(final))
    return Member(dict(spec), model.eval(), load_state(init), dict(metrics), stored=dict(stored or {}))


def members_from_store(store: Any, sweep: str) -> list[Member]:
    """Every finished ``zoo-model`` run of sweep ``sweep`` in ``store``, rebuilt from its artifacts."""
    import json
    from pathlib import Path

    from genlab.errors import InputError

    runs = [r for r in store.runs(sweep=sweep) if r["experiment"] == "zoo-model" and r["status"] == "finished"]
    if not runs:
        raise InputError(f"zoo: sweep {sweep!r} has no finished zoo-model runs in {store.home}")
    out = []
    for r in runs:
        arts = {a["name"]: a for a in store.artifacts(r["id"])}
        paths = {k: Path(arts[k]["path"]) for k in ("model.pt", "init.pt", "result.json") if k in arts}
        if len(paths) < 3:
            continue
        result = json.loads(paths["result.json"].read_text())
        spec = {**result["spec"], "num_samples": int(result.get("num_samples", 5000))}
        out.append(load_member(spec, paths["model.pt"].read_bytes(), paths["init.pt"].read_bytes(), result["metrics"],
                               result.get("measures")))
    return out
