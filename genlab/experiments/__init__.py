"""The experiment registry: every module of this package that defines ``EXPERIMENT``.

Adding an experiment is adding a module (names starting with ``_`` are not experiments).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from genlab.errors import InputError
from genlab.experiments._base import Experiment


@lru_cache(maxsize=1)
def registry() -> dict[str, Experiment]:
    """All registered experiments by name, in module order."""
    found: dict[str, Experiment] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            if exp.name in found:
                raise RuntimeError(f"experiment name {exp.name!r} registered twice")
            found[exp.name] = exp
    return found


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name is an InputError listing the known ones."""
    reg = registry()
    if name not in reg:
        raise InputError(f"experiment {name!r} unknown; allowed: {', '.join(sorted(reg))}")
    return reg[name]


__all__ = ["Experiment", "registry", "get_experiment"]
