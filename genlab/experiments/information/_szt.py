"""Shared pieces of the information-plane experiments (not an experiment itself): the
Shwartz-Ziv & Tishby 2017 task, their network, and the per-layer MI trajectories.

Task (Shwartz-Ziv & Tishby 2017, arXiv 1703.00810, Sec. 3.1): all 4096 patterns of 12 binary
inputs; the label thresholds a spherically symmetric function of the pattern. Their exact
function is not given in the paper; ours places the 12 inputs on the vertices of an icosahedron
(12 points spread uniformly on the sphere, so the rotations of the icosahedron permute the
inputs) and labels x by y = 1[‖Σ_i (2x_i − 1)·v_i‖² > θ], θ the value closest to an even split
— invariant under those rotations, as theirs, but not their function.

Network: 12-10-7-5-4-3-2, i.e. hidden layers 10, 7, 5, 4, 3 and a 2-way softmax output — the
widths confirmed from the authors' code (ravidziv/IDNNs, networks/network_paramters.py,
``layers_sizes = [[10, 7, 5, 4, 3]]``), with tanh (their choice) or ReLU/ELU (Saxe et al. 2018;
Chelombiev et al. 2019) hidden units.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import torch
from torch import nn

from genlab.probes.activations import layer_activations
from genlab.probes.mutual_information import adaptive_bins, codes, discrete_mi, fixed_bins

SZT_WIDTHS = (10, 7, 5, 4, 3)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def icosahedron() -> np.ndarray:
    """The 12 unit vertices of a regular icosahedron."""
    phi = (1 + 5**0.5) / 2
    v = []
    for a in (-1, 1):
        for b in (-phi, phi):
            v += [(0, a, b), (a, b, 0), (b, 0, a)]
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@lru_cache(maxsize=1)
def szt_task() -> tuple[np.ndarray, np.ndarray]:
    """All 4096 patterns x ∈ {0,1}^12 (rows) and their labels y ∈ {0,1} (see the module docstring)."""
    x = ((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(float)
    f = (((2 * x - 1) @ icosahedron()) ** 2).sum(1)
    values = np.unique(f)
    shares = np.array([(f > t).mean() for t in values])
    theta = values[int(np.argmin(np.abs(shares - 0.5)))]
    return x, (f > theta).astype(np.int64)


def split(n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random training set of ``n_train`` patterns and of the rest (the test set)."""
    perm = np.random.default_rng(seed).permutation(4096)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def szt_net(activation: str, seed: int, widths=SZT_WIDTHS, init: str = "default") -> nn.Sequential:
    """12 → widths → 2 with ``activation`` hidden units, drawn from ``seed``: PyTorch's default
    initialization, or with ``init="he"`` weights N(0, 2/fan_in) and zero biases (He et al. 2015),
    which keeps the signal through the narrow ReLU layers (with the default, many ReLU/ELU runs sit
    at chance for hundreds of steps)."""
    layers: list[nn.Module] = []
    dims = [12, *widths]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(dims[-1], 2))
        if init == "he":
            for m in layers:
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, (2.0 / m.in_features) ** 0.5)
                    nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


def hidden_names(net: nn.Sequential) -> list[str]:
    """Names of the hidden activation modules (the representations T_1 … T_L)."""
    return [name for name, m in net.named_children() if not isinstance(m, nn.Linear)]


def train_recording_activations(
    activation: str,
    seed: int,
    *,
    n_train: int,
    lr: float,
    momentum: float,
    batch_size: int,
    steps: int,
    records: int,
    weight_decay: float = 0.0,
    init: str = "default",
    recorder=None,
    prefix: str = "",
    progress=None,
) -> dict:
    """Train the SZT network by minibatch SGD on a random ``n_train``-pattern split (drawn from
    ``seed``), taking the hidden activations on all 4096 patterns at ``records`` evenly spaced
    steps (every record is a full-batch evaluation). Returns the record steps, train/test accuracy,
    the activations (list over records of float32 arrays per layer) and the final status."""
    from genlab.train import Measurement, Trainer

    x_np, y_np = szt_task()
    x = torch.tensor(x_np, dtype=torch.float32)
    y = torch.tensor(y_np)
    tr, te = split(n_train, seed)
    net = szt_net(activation, seed, init=init)
    names = hidden_names(net)
    every = max(steps // max(records - 1, 1), 1)
    out: dict = {"step": [], "train_acc": [], "test_acc": [], "acts": []}

    def measure(m: nn.Module, step: int) -> dict[str, float]:
        acts = layer_activations(m, x, names)
        with torch.no_grad():
            pred = m(x).argmax(1)
        tra = float((pred[tr] == y[tr]).double().mean())
        tea = float((pred[te] == y[te]).double().mean())
        out["step"].append(step)
        out["train_acc"].append(tra)
        out["test_acc"].append(tea)
        out["acts"].append([acts[n].numpy().copy() for n in names])
        return {"train_acc": tra, "test_acc": tea}

    res = Trainer(
        net, nn.functional.cross_entropy, (x[tr], y[tr]), lr=lr, batch_size=batch_size, momentum=momentum,
        weight_decay=weight_decay, max_steps=steps, eval_every=every, seed=seed,
        measurements=[Measurement(every, measure)], recorder=recorder, prefix=prefix, log_every=every,
        progress=progress,
    ).fit()
    out["status"] = res.status
    return out


def mi_trajectories(run: dict, *, strategy: str, bins: int, fixed_range: str) -> tuple[np.ndarray, np.ndarray]:
    """I(X;T_l) and I(T_l;Y) (records × layers, bits) of one recorded run. ``fixed_range`` for the
    fixed-width bins: "tanh" = [−1, 1] (Shwartz-Ziv & Tishby), "span" = each layer's [min, max]
    over all records (one binning for the whole run, as Saxe et al. do for ReLU); adaptive bins
    are re-derived at each record."""
    x_np, y_np = szt_task()
    n_layers = len(run["acts"][0])
    ranges = None
    if strategy == "fixed":
        if fixed_range == "tanh":
            ranges = [(-1.0, 1.0)] * n_layers
        else:
            ranges = [
                (float(min(a[l].min() for a in run["acts"])), float(max(a[l].max() for a in run["acts"])))
                for l in range(n_layers)
            ]
    ixt = np.zeros((len(run["acts"]), n_layers))
    ity = np.zeros_like(ixt)
    cx, cy = codes(x_np), codes(y_np)
    for r, acts in enumerate(run["acts"]):
        for l, t in enumerate(acts):
            # what binned_mi(..., population=True) computes, with each layer binned once for both MIs
            if strategy == "fixed":
                ct = codes(fixed_bins(t, bins, *ranges[l]))
            else:
                ct = codes(adaptive_bins(t, bins))
            ixt[r, l] = discrete_mi(cx, ct)[0]
            ity[r, l] = discrete_mi(ct, cy)[0]
    return ixt, ity


def compression(ixt: np.ndarray, train_acc: np.ndarray, fit_accuracy: float, end_fraction: float) -> tuple[np.ndarray, int]:
    """Per layer: I(X;T) at the end of the fitting phase (the first record whose training accuracy
    reaches ``fit_accuracy``) minus its mean over the last ``end_fraction`` of the records; and
    that record's index (−1 and NaNs if the run never fits)."""
    hit = np.flatnonzero(np.asarray(train_acc) >= fit_accuracy)
    if hit.size == 0:
        return np.full(ixt.shape[1], np.nan), -1
    k = int(hit[0])
    tail = max(1, int(round(end_fraction * ixt.shape[0])))
    start = max(k + 1, ixt.shape[0] - tail)
    if start >= ixt.shape[0]:
        return np.full(ixt.shape[1], np.nan), k
    return ixt[k] - ixt[start:].mean(0), k
