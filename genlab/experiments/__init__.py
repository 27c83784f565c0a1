"""The experiment registry: one subpackage per theme, one module per experiment.

``genlab/experiments/<theme>/__init__.py`` gives the theme's ``TITLE`` and ``ORDER`` (the
atlas groups and sorts by them); every module of a theme that defines ``EXPERIMENT`` is an
experiment of that theme. Names starting with ``_`` are neither themes nor experiments
(``_base``, ``_classification`` hold shared code). Adding an experiment is adding a module to
its theme; adding a theme is adding a subpackage with ``TITLE`` and ``ORDER``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache

from genlab.errors import InputError, did_you_mean
from genlab.experiments._base import Experiment


@dataclass(frozen=True)
class Theme:
    """One theme of the atlas: its package name, title, sort key and experiment names."""

    key: str
    title: str
    order: int
    experiments: tuple[str, ...]


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Experiment], dict[str, Theme]]:
    experiments: dict[str, Experiment] = {}
    themes: list[Theme] = []
    for pkg in pkgutil.iter_modules(__path__):
        if not pkg.ispkg or pkg.name.startswith("_"):
            continue
        theme_mod = importlib.import_module(f"{__name__}.{pkg.name}")
        title = getattr(theme_mod, "TITLE", pkg.name)
        order = int(getattr(theme_mod, "ORDER", 1000))
        names: list[str] = []
        for info in sorted(pkgutil.iter_modules(theme_mod.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{theme_mod.__name__}.{info.name}")
            exp = getattr(module, "EXPERIMENT", None)
            if not isinstance(exp, Experiment):
                continue
            if exp.name in experiments:
                raise RuntimeError(f"experiment name {exp.name!r} registered twice")
            exp.theme = pkg.name
            experiments[exp.name] = exp
            names.append(exp.name)
        themes.append(Theme(pkg.name, title, order, tuple(names)))
    themes.sort(key=lambda t: (t.order, t.key))
    ordered = {name: experiments[name] for t in themes for name in t.experiments}
    return ordered, {t.key: t for t in themes}


def registry() -> dict[str, Experiment]:
    """All registered experiments by name, grouped by theme (themes in ``ORDER``)."""
    return _load()[0]


def themes() -> dict[str, Theme]:
    """The themes by package name, in ``ORDER``."""
    return _load()[1]


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name is an InputError listing the known ones."""
    reg = registry()
    if name not in reg:
        raise InputError(f"experiment {name!r} unknown;{did_you_mean(name, list(reg))} allowed: {', '.join(sorted(reg))}")
    return reg[name]


__all__ = ["Experiment", "Theme", "registry", "themes", "get_experiment"]
