"""Task streams: train one model on a sequence of tasks, warm-started, and record R[i, j].

A stream is a list of tasks (each a dataset, a loss and an evaluation set) and an order (which task
is trained at each step; tasks may re-occur). After every step i the model is evaluated on every
task j, giving the accuracy matrix R[i, j] that continual-learning papers report (Lopez-Paz &
Ranzato 2017, "Gradient episodic memory for continual learning", arXiv 1706.08840, Sec. 5;
Chaudhry, Dokania, Ajanthan & Torr 2018, "Riemannian walk for incremental learning", arXiv
1801.10112, Sec. 4). From it, with a step per task visit:
- average accuracy A = mean_j R[L−1, j] over the tasks seen;
- backward transfer BWT = mean_j (R[L−1, j] − R[ℓ_j, j]), ℓ_j the last step that trained j, over
  the tasks seen except the one trained last (GEM's BWT when each task is visited once);
- forward transfer FWT = mean_j (R[f_j − 1, j] − b_j), f_j the first step that trained j (f_j > 0),
  b_j the accuracy before any training (GEM's FWT);
- forgetting f_j = max_{f_j ≤ i < L−1} R[i, j] − R[L−1, j], averaged over the same tasks as BWT
  (Chaudhry et al. 2018, Eq. for f_k^j with k = L − 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from genlab.train.trainer import Trainer

ORDERS = ("sequential", "cyclic", "random", "reoccurring")


@dataclass
class Task:
    """One task: training data, its loss, and the data it is evaluated on (default: the training data)."""

    name: str
    train: tuple[torch.Tensor, torch.Tensor]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def eval_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.test if self.test is not None else self.train


def task_order(kind: str, n_tasks: int, length: int, seed: int = 0, reoccurrence: float = 0.5) -> list[int]:
    """Which task is trained at each of ``length`` steps.

    sequential: 0, 1, …, T−1 (``length`` must be T); cyclic: i mod T; random: i.i.d. uniform;
    reoccurring: task i mod T in turn, except that with probability ``reoccurrence`` a step
    re-trains a task already seen (uniform among them) instead of the next new one — the
    sequential order at 0 and mostly re-visits near 1 (the first step is always task 0)."""
    if kind not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {kind!r}")
    if n_tasks < 1 or length < 1:
        raise ValueError("n_tasks and length must be >= 1")
    if kind == "sequential":
        if length != n_tasks:
            raise ValueError(f"a sequential order has length n_tasks = {n_tasks}, got {length}")
        return list(range(n_tasks))
    if kind == "cyclic":
        return [i % n_tasks for i in range(length)]
    rng = np.random.default_rng(seed)
    if kind == "random":
        return [int(m) for m in rng.integers(0, n_tasks, size=length)]
    if not 0.0 <= reoccurrence <= 1.0:
        raise ValueError(f"reoccurrence must be in [0, 1], got {reoccurrence}")
    order, nxt = [0], 1
    for _ in range(1, length):
        if rng.random() < reoccurrence:
            order.append(int(rng.integers(0, min(nxt, n_tasks))))
        else:
            order.append(nxt % n_tasks)
            nxt += 1
    return order


@dataclass
class StreamResult:
    """R[i, j] after step i (rows) on task j (columns), R0[j] before training, and the order."""

    order: list[int]
    R: np.ndarray
    R0: np.ndarray
    losses: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    extras: list[dict[str, float]] = field(default_factory=list)

    def _seen_but_last(self) -> list[int]:
        last = self.order[-1]
        return sorted(set(self.order) - {last})

    def average_accuracy(self) -> float:
        seen = sorted(set(self.order))
        return float(np.mean(self.R[-1, seen]))

    def backward_transfer(self) -> float:
        js = self._seen_but_last()
        if not js:
            return float("nan")
        last_visit = {j: max(i for i, m in enumerate(self.order) if m == j) for j in js}
        return float(np.mean([self.R[-1, j] - self.R[last_visit[j], j] for j in js]))

    def forward_transfer(self) -> float:
        first = {}
        for i, m in enumerate(self.order):
            first.setdefault(m, i)
        js = [j for j, f in first.items() if f > 0]
        if not js:
            return float("nan")
        return float(np.mean([self.R[first[j] - 1, j] - self.R0[j] for j in js]))

    def forgetting(self) -> float:
        js = self._seen_but_last()
        if not js:
            return float("nan")
        L = len(self.order)
        out = []
        for j in js:
            f = self.order.index(j)
            out.append(float(np.max(self.R[f : L - 1, j]) - self.R[L - 1, j]))
        return float(np.mean(out))

    def summary(self) -> dict[str, float]:
        return {"average_accuracy": self.average_accuracy(), "backward_transfer": self.backward_transfer(),
                "forward_transfer": self.forward_transfer(), "forgetting": self.forgetting()}


def accuracy(model: torch.nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Share of correct predictions: argmax over outputs for integer targets, sign for ±1 float targets."""
    x, y = data
    with torch.no_grad():
        out = model(x)
    if y.dtype.is_floating_point:
        return float(((out.reshape(-1) * y.reshape(-1)) > 0).double().mean())
    return float((out.argmax(dim=-1) == y).double().mean())


def run_stream(
    model: torch.nn.Module,
    tasks: Sequence[Task],
    order: Sequence[int],
    train: Callable[[torch.nn.Module, Task, int], Any],
    evaluate: Callable[[torch.nn.Module, Task], float] | None = None,
    progress: Any = None,
    measure: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    evaluate_all: Callable[[torch.nn.Module], Sequence[float]] | None = None,
    record_losses: bool = True,
) -> StreamResult:
    """Train ``model`` in place on ``tasks[order[i]]`` for i = 0, 1, … (each step starts where the
    last ended: warm start) with ``train(model, task, step)``; after every step evaluate every
    task (``evaluate(model, task)``, default :func:`accuracy` on its evaluation data) and its loss,
    and record ``measure(model)`` (extra scalars, e.g. accuracy on all classes) if given.
    ``evaluate_all(model)`` may replace the per-task evaluation with one call returning the whole
    row R[i, :] (e.g. from one forward pass); ``record_losses=False`` skips the loss matrix (NaN)."""
    if not order:
        raise ValueError("order must contain at least one step")
    for m in order:
        if not 0 <= int(m) < len(tasks):
            raise ValueError(f"order entries must be task indices in [0, {len(tasks)}), got {m}")
    ev = evaluate or (lambda mdl, t: accuracy(mdl, t.eval_data))

    def loss_of(t: Task) -> float:
        with torch.no_grad():
            return float(t.loss_fn(model(t.eval_data[0]), t.eval_data[1]))

    def row(mdl: torch.nn.Module) -> np.ndarray:
        if evaluate_all is not None:
            with torch.no_grad():
                r = np.asarray(evaluate_all(mdl), dtype=float)
            if r.shape != (len(tasks),):
                raise ValueError(f"evaluate_all must return {len(tasks)} values, got shape {r.shape}")
            return r
        return np.array([ev(mdl, t) for t in tasks])

    model.eval()
    R0 = row(model)
    R = np.empty((len(order), len(tasks)))
    losses = np.empty((len(order), len(tasks)))
    extras: list[dict[str, float]] = []
    for i, m in enumerate(order):
        model.train()
        train(model, tasks[int(m)], i)
        model.eval()
        R[i] = row(model)
        losses[i] = [loss_of(t) for t in tasks] if record_losses else np.nan
        if measure is not None:
            with torch.no_grad():
                extras.append({k: float(v) for k, v in measure(model).items()})
        if progress is not None:
            progress.advance(1)
    return StreamResult(order=[int(m) for m in order], R=R, R0=R0, losses=losses, extras=extras)


def trainer_step(lr: float, steps: int, batch_size: int | None = None, seed: int = 0) -> Callable[[torch.nn.Module, Task, int], Any]:
    """A ``train`` callable for :func:`run_stream`: ``steps`` of (S)GD with the Trainer on the task's
    training data (minibatch order seeded by ``seed`` and the step index)."""

    def train(model: torch.nn.Module, task: Task, step: int):
        return Trainer(model, task.loss_fn, task.train, lr=lr, batch_size=batch_size, max_steps=steps,
                       seed=seed * 1_000_003 + step).fit()

    return train
