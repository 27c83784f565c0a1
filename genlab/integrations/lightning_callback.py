"""genlab's Monitor as a Lightning callback (optional extra ``genlab[lightning]``).

``Trainer(callbacks=[MonitorCallback(F.cross_entropy, probes="curvature", every=16, store=home)])``:
the Monitor is built at the start of fitting on the LightningModule and the trainer's first
optimizer, steps after each training batch's optimizer step (``on_train_batch_end``) with that
batch and the loss the module's ``training_step`` returned, and is closed (verdicts stored, run
finished) when fitting ends, or marked failed when it raises. The module's ``forward`` must take
the batch's inputs: the Monitor calls ``module(x)`` and ``loss_fn(output, y)``.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as e:  # the optional extra is missing
    raise ImportError("genlab.integrations.lightning_callback needs Lightning: pip install 'genlab[lightning]'") from e

from genlab.monitor import Monitor
from genlab.store import Verdict


class MonitorCallback(Callback):
    """A :class:`genlab.Monitor` driven by Lightning's hooks; ``monitor_kwargs`` go to the Monitor
    (``probes``, ``every``, ``store``, ``name``, ``tensorboard``, ...)."""

    def __init__(self, loss_fn: Any, **monitor_kwargs: Any) -> None:
        self.loss_fn = loss_fn
        self.kwargs = monitor_kwargs
        self.monitor: Monitor | None = None
        self.verdicts: list[Verdict] = []

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        opt = trainer.optimizers[0] if trainer.optimizers else None
        self.monitor = Monitor(pl_module, self.loss_fn, opt, **self.kwargs)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.monitor is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self.monitor.step(batch, loss=loss)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None:
            self.verdicts = self.monitor.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.monitor is not None:
            self.verdicts = self.monitor.close("failed")
            self.monitor = None


__all__ = ["MonitorCallback"]
