"""Every scalar the Monitor records, also written as a TensorBoard event file.

Uses ``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package (the
optional extra ``genlab[tensorboard]``). Tags are the Monitor's metric names (``loss``,
``sharpness``, ``threshold``, ``trace``, ``trace_se``, ...), steps the Monitor's step count.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from genlab.errors import InputError


def tensorboard_available() -> bool:
    """True when the ``tensorboard`` package (needed by torch's SummaryWriter) imports."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardWriter:
    """Write scalars to an event file in ``logdir`` (created if missing)."""

    def __init__(self, logdir: str | os.PathLike[str]) -> None:
        if not str(logdir):
            raise InputError("tensorboard: got an empty path; give a log directory")
        if os.path.exists(logdir) and not os.path.isdir(logdir):
            raise InputError(f"tensorboard: {str(logdir)!r} is a file; give a log directory")
        if not tensorboard_available():
            raise InputError("tensorboard: the tensorboard package is not installed; pip install 'genlab[tensorboard]'")
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = str(logdir)
        self._writer = SummaryWriter(log_dir=self.logdir)

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """One scalar per tag at ``step`` (non-finite values are written as they are: a diverging run shows)."""
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, float(value), global_step=step)

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()


__all__ = ["TensorBoardWriter", "tensorboard_available"]
