"""What an experiment writes through while it runs: metrics, artifacts and progress.

A :class:`Recorder` buffers metric rows and commits them to the store in transactions
(every ``flush_every`` rows or ``flush_seconds``), so a killed process loses at most the
last unflushed rows and never leaves a half-written store. :class:`MemoryRecorder` keeps
everything in memory (tests, worker processes); both share this interface.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...


class _NullProgress:
    def advance(self, n: int = 1) -> None:
        pass


class BaseRecorder:
    """Interface shared by the recorders: ``log``, ``log_many``, ``save_*`` and ``progress``."""

    def __init__(self, progress_factory: Callable[..., Any] | None = None):
        self._progress_factory = progress_factory

    def log(self, name: str, value: float, step: int = 0) -> None:
        self.log_many({name: value}, step)

    def log_many(self, values: dict[str, float], step: int = 0) -> None:  # pragma: no cover
        raise NotImplementedError

    @contextmanager
    def progress(self, description: str, total: int, unit: str = "steps") -> Iterator[Progress]:
        """A progress bar counting ``unit`` where the caller has one (the CLI), a no-op otherwise."""
        if self._progress_factory is None:
            yield _NullProgress()
        else:
            with self._progress_factory(description, total, unit=unit) as bar:
                yield bar

    def flush(self) -> None:
        pass


class MemoryRecorder(BaseRecorder):
    """Keeps metrics in a list of ``(step, name, value)``; used by tests and workers."""

    def __init__(self, progress_factory: Callable[..., Any] | None = None):
        super().__init__(progress_factory)
        self.rows: list[tuple[int, str, float]] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # name → (kind, bytes) saved by save_bytes

    def log_many(self, values: dict[str, float], step: int = 0) -> None:
        self.rows.extend((int(step), name, float(v)) for name, v in values.items())

    def save_bytes(self, name: str, data: bytes, kind: str = "file") -> None:
        """Keep a file's bytes (a worker returns them; the sweep driver writes them as artifacts)."""
        self.files[name] = (kind, bytes(data))

    def series(self, name: str) -> tuple[list[int], list[float]]:
        pts = [(s, v) for s, n, v in self.rows if n == name]
        return [s for s, _ in pts], [v for _, v in pts]


class Recorder(BaseRecorder):
    """Writes a run's metrics and artifacts into the store."""

    def __init__(
        self,
        store: Any,
        run_id: int,
        progress_factory: Callable[..., Any] | None = None,
        flush_every: int = 2000,
        flush_seconds: float = 2.0,
    ):
        super().__init__(progress_factory)
        self.store = store
        self.run_id = run_id
        self._buffer: list[tuple[int, str, float]] = []
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()

    def log_many(self, values: dict[str, float], step: int = 0) -> None:
        self._buffer.extend((int(step), name, float(v)) for name, v in values.items())
        if len(self._buffer) >= self._flush_every or time.monotonic() - self._last_flush > self._flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.store.log_metrics(self.run_id, self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir(self.run_id)

    def _atomic_path(self, name: str) -> tuple[Path, Path]:
        final = self.run_dir / name
        return final, final.with_name(f".{final.name}.tmp-{os.getpid()}")

    def save_json(self, name: str, obj: Any, kind: str = "result") -> Path:
        """Write JSON atomically (temp file, then rename) and record it as an artifact."""
        final, tmp = self._atomic_path(name)
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, allow_nan=True))
        os.replace(tmp, final)
        self.store.add_artifact(self.run_id, kind, name, final)
        return final

    def save_bytes(self, name: str, data: bytes, kind: str = "file") -> Path:
        """Write raw bytes atomically (e.g. a ``torch.save``d state dict) as an artifact of ``kind``."""
        final, tmp = self._atomic_path(name)
        tmp.write_bytes(data)
        os.replace(tmp, final)
        self.store.add_artifact(self.run_id, kind, name, final)
        return final

    def save_figure(self, name: str, fig: Any) -> Path:
        """Save a matplotlib figure as PNG atomically and record it as a ``figure`` artifact."""
        from genlab.report.figures import legible

        final, tmp = self._atomic_path(name)
        legible(fig).savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        os.replace(tmp, final)
        self.store.add_artifact(self.run_id, "figure", name, final)
        return final
