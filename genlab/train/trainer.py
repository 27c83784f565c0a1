"""The Trainer: full-batch gradient descent and minibatch SGD for any ``nn.Module`` and loss.

Deterministic for a given seed (minibatch order drawn from a generator seeded by the config).
It stops at a step budget, at a loss or gradient-norm tolerance, or at a non-finite loss —
which is returned as ``status="diverged"`` with the step, never raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from genlab.train.monitor import Measurement
from genlab.train.optimizers import make_optimizer, requires_closure
from genlab.train.schedules import Schedule, constant

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainResult:
    """How training ended: ``converged`` (a tolerance met), ``budget`` or ``diverged``."""

    status: str
    steps: int
    loss: float
    grad_norm: float
    reason: str
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def converged(self) -> bool:
        return self.status == "converged"


class Trainer:
    """Train ``model`` on ``data = (inputs, targets)`` with (S)GD.

    Args:
        lr: a fixed step size or a schedule ``step -> step size``.
        batch_size: ``None`` for full-batch gradient descent, else minibatch SGD (reshuffled every epoch).
        momentum, weight_decay: heavy-ball momentum and an L2 penalty in the gradient, with the
            conventions of ``torch.optim.SGD`` (dampening 0, no Nesterov).
        max_steps: step budget.
        loss_tol, grad_tol: stop as ``converged`` when the full-batch loss / gradient norm falls below.
        eval_every: for SGD, how often (steps) the full-batch loss and gradient are evaluated for
            the tolerances (default: once per epoch); full-batch GD evaluates them at every step.
        measurements: :class:`Measurement` hooks; their values are recorded as metrics.
        recorder: where metrics go (``log_many(values, step)``); ``prefix`` is put before each name.
        log_every: how often the loss and gradient norm are recorded.
        progress: an object with ``advance(n)`` (a progress bar), advanced once per step.
        aux_loss: ``aux_loss(x, y) -> scalar tensor`` added to the loss of every batch, called right
            after the model's forward on ``x`` (e.g. :class:`genlab.train.guidance.RepresentationMatching`,
            whose hooks read the layers of that forward); the recorded loss is the sum.
        optimizer: ``None`` for the built-in (S)GD step above (the fast path), else a name of
            :data:`genlab.train.optimizers.OPTIMIZERS` (``"adam"``, ``"lamb"``, ``"sam"``,
            ``"delayed-sgd"``, …); ``optimizer_options`` are its keyword arguments (momentum and
            weight decay go there, not in ``momentum``/``weight_decay``). The schedule sets its lr.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        data: tuple[torch.Tensor, torch.Tensor],
        *,
        lr: float | Schedule,
        batch_size: int | None = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        max_steps: int = 1000,
        loss_tol: float | None = None,
        grad_tol: float | None = None,
        eval_every: int | None = None,
        seed: int = 0,
        measurements: Sequence[Measurement] = (),
        recorder: Any = None,
        prefix: str = "",
        log_every: int = 10,
        progress: Any = None,
        aux_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        optimizer: str | None = None,
        optimizer_options: dict[str, Any] | None = None,
    ):
        self.model = model
        self.loss_fn = loss_fn
        self.x, self.y = data
        n = self.x.shape[0]
        if batch_size is not None and not (1 <= batch_size <= n):
            raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
        self.full_batch = batch_size is None or batch_size == n
        self.batch_size = n if batch_size is None else batch_size
        self.schedule: Schedule = lr if callable(lr) else constant(float(lr))
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self._velocity: list[torch.Tensor] | None = None
        self.max_steps = int(max_steps)
        self.loss_tol = loss_tol
        self.grad_tol = grad_tol
        steps_per_epoch = math.ceil(n / self.batch_size)
        self.eval_every = 1 if self.full_batch else int(eval_every or steps_per_epoch)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.measurements = list(measurements)
        self.recorder = recorder
        self.prefix = prefix
        self.log_every = max(int(log_every), 1)
        self.progress = progress
        self.aux_loss = aux_loss
        self.optimizer = None
        if optimizer is not None:
            if momentum or weight_decay:
                raise ValueError("momentum and weight_decay belong in optimizer_options when an optimizer is given")
            self.optimizer = make_optimizer(optimizer, self.params, lr=self.schedule(0), **(optimizer_options or {}))

    # -- helpers --------------------------------------------------------------------------------
    def _record(self, values: dict[str, float], step: int) -> None:
        if self.recorder is not None and values:
            self.recorder.log_many({self.prefix + k: float(v) for k, v in values.items()}, step)

    def _measure(self, step: int, at_end: bool = False) -> None:
        """Run the measurements due at ``step``; with ``at_end``, those not due there but wanted at the end."""
        for m in self.measurements:
            if (m.at_end and not m.due(step)) if at_end else m.due(step):
                was_training = self.model.training
                values = m.fn(self.model, step)
                self.model.train(was_training)
                self._record(values, step)

    def _objective_grad(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Loss on (x, y); leaves its gradient in ``p.grad`` (weight decay is added in :meth:`_step`)."""
        for p in self.params:
            p.grad = None
        loss = self.loss_fn(self.model(x), y)
        if self.aux_loss is not None:
            loss = loss + self.aux_loss(x, y)
        loss.backward()
        for p in self.params:  # parameters the loss does not reach get a zero gradient
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return float(loss.detach())

    def _direction(self) -> list[torch.Tensor]:
        """Gradient of loss + (weight_decay/2)·‖θ‖², as in ``torch.optim.SGD``'s L2 penalty."""
        grads = [p.grad for p in self.params]
        if self.weight_decay:
            grads = torch._foreach_add([g.detach() for g in grads], [p.detach() for p in self.params], alpha=self.weight_decay)
        return grads

    def _full_grad_norm(self) -> float:
        grads = self._direction()
        return float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])))

    @torch.no_grad()
    def _step(self, lr: float) -> None:
        """θ ← θ − lr·d, with d the gradient (heavy-ball: d ← momentum·d_prev + gradient)."""
        d = self._direction()
        if self.momentum:
            if self._velocity is None:
                self._velocity = [g.detach().clone() for g in d]
            else:
                torch._foreach_mul_(self._velocity, self.momentum)
                torch._foreach_add_(self._velocity, d)
            d = self._velocity
        torch._foreach_add_(self.params, d, alpha=-lr)

    def _optimizer_step(self, lr: float, x: torch.Tensor, y: torch.Tensor) -> None:
        """One step of the registry optimizer; the gradient of (x, y) is already in ``p.grad``."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if requires_closure(self.optimizer):
            self.optimizer.step(lambda: self._objective_grad(x, y))
        else:
            self.optimizer.step()

    def _batches(self):
        n = self.x.shape[0]
        while True:
            perm = torch.randperm(n, generator=self.generator)
            for i in range(0, n - self.batch_size + 1, self.batch_size):
                yield perm[i : i + self.batch_size]

    # -- main loop ----------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Run until a stopping rule fires; return how it ended."""
        self.model.train()
        batches = None if self.full_batch else self._batches()
        xb, yb = self.x, self.y
        loss = grad_norm = float("nan")
        step = 0
        for step in range(self.max_steps + 1):
            lr = self.schedule(step)
            evaluate = self.full_batch or step % self.eval_every == 0 or step == self.max_steps
            if evaluate:
                loss = self._objective_grad(self.x, self.y)
                grad_norm = self._full_grad_norm()
                if not math.isfinite(loss) or not math.isfinite(grad_norm):
                    self._record({"loss": loss, "diverged_at": step}, step)
                    return TrainResult("diverged", step, loss, grad_norm, f"non-finite loss at step {step}")
                if step % self.log_every == 0:
                    self._record({"loss": loss, "grad_norm": grad_norm, "lr": lr}, step)
                self._measure(step)
                reason = None
                if self.loss_tol is not None and loss <= self.loss_tol:
                    reason = f"loss {loss:.3g} <= {self.loss_tol:g}"
                elif self.grad_tol is not None and grad_norm <= self.grad_tol:
                    reason = f"gradient norm {grad_norm:.3g} <= {self.grad_tol:g}"
                if reason is not None:
                    self._finish(step, loss, grad_norm)
                    return TrainResult("converged", step, loss, grad_norm, reason)
                if step == self.max_steps:
                    break
            if not self.full_batch:
                idx = next(batches)
                xb, yb = self.x[idx], self.y[idx]
                batch_loss = self._objective_grad(xb, yb)
                if not math.isfinite(batch_loss):
                    self._record({"loss": batch_loss, "diverged_at": step}, step)
                    return TrainResult("diverged", step, batch_loss, float("nan"), f"non-finite loss at step {step}")
            if self.optimizer is None:
                self._step(lr)
            else:
                self._optimizer_step(lr, xb, yb)
            if self.progress is not None:
                self.progress.advance(1)
        self._finish(step, loss, grad_norm)
        return TrainResult("budget", step, loss, grad_norm, f"step budget {self.max_steps} reached")

    def _finish(self, step: int, loss: float, grad_norm: float) -> None:
        if step % self.log_every != 0:
            self._record({"loss": loss, "grad_norm": grad_norm}, step)
        self._measure(step, at_end=True)
        if self.progress is not None:
            self.progress.advance(max(self.max_steps - step, 0))
