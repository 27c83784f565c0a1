"""When a quantity is measured: every k steps, at log-spaced steps, or both."""

from __future__ import annotations

import math
from dataclasses import dataclass

from genlab.errors import InputError


@dataclass(frozen=True)
class Schedule:
    """Due at step t ≥ 1 when ``every`` divides t, or (``log_spaced``) when some power of ``base``
    lies in (t − 1, t] (1, 2, 3, 4, 6, 8, 12, 18, ... for base 1.5)."""

    every: int | None = None
    log_spaced: bool = False
    base: float = 1.5

    def __post_init__(self) -> None:
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int) or self.every <= 0):
            raise InputError(f"every: got {self.every!r}; must be an integer >= 1")
        if self.every is None and not self.log_spaced:
            raise InputError("every: got None with log_spaced=False; give an interval >= 1 or log_spaced=True")
        if not self.base > 1:
            raise InputError(f"base: got {self.base!r}; must be > 1")

    def due(self, step: int) -> bool:
        if self.every is not None and step % self.every == 0:
            return True
        if self.log_spaced and step >= 1:
            k = math.floor(math.log(step) / math.log(self.base) + 1e-12)
            return self.base**k > step - 1 + 1e-9
        return False
