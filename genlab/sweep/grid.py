"""Sweep grids: ``--grid key=v1,v2,…`` / ``key=a:b`` parsed into the cartesian product of points,
and the sweep id (a hash of experiment, preset, grid and fixed values, so the same command resumes)."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any, Sequence

from genlab.config import short_repr, parse_value
from genlab.errors import InputError


MAX_POINTS = 1000
"""Default cap on the points of one sweep (``--max-points`` raises it)."""


def _range(text: str, cap: int) -> range | None:
    """``a:b`` → range(a, b); ``a:b:s`` with step s; None if ``text`` is not a range.
    The range is counted, never expanded, before it is checked against ``cap``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or any(len(p.strip()) > 30 for p in parts):
        return None
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return None
    step = nums[2] if len(nums) == 3 else 1
    if step <= 0 or nums[1] <= nums[0]:
        raise InputError(f"--grid: empty range {text!r} (expected a:b with a < b, optional step > 0)")
    values = range(nums[0], nums[1], step)
    if len(values) > cap:
        raise InputError(f"--grid: range {text!r} has {len(values)} values, more than the {cap} points allowed (--max-points)")
    return values


def parse_grid(items: Sequence[str], max_points: int = MAX_POINTS) -> dict[str, list[Any]]:
    """``["eta=0.1,0.2", "seed=0:4"]`` → ``{"eta": [0.1, 0.2], "seed": [0, 1, 2, 3]}`` (order kept).

    The number of points (the product of the grid sizes) is counted before anything is
    expanded; more than ``max_points`` is an InputError."""
    grid: dict[str, list[Any]] = {}
    total = 1
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key or not text:
            raise InputError(f"--grid: expected key=v1,v2,… or key=a:b, got {short_repr(item)}")
        if key in grid:
            raise InputError(f"--grid: key {short_repr(key)} given twice")
        values = _range(text, max_points)
        if values is None:
            if text.count(",") >= max_points:
                raise InputError(f"--grid: {short_repr(key)} has more than the {max_points} points allowed (--max-points)")
            values = [parse_value(part.strip(), f"--grid {short_repr(key, 40)}") for part in text.split(",") if part.strip()]
        if not values:
            raise InputError(f"--grid: no values for {short_repr(key)}")
        total *= len(values)
        if total > max_points:
            raise InputError(f"--grid: more than {max_points} points (the product of the grids; --max-points raises the cap)")
        values = list(values)
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise InputError(f"--grid: repeated value for {short_repr(key)}")
        grid[key] = values
    if not grid:
        raise InputError("--grid: at least one grid is required (e.g. --grid seed=0:4)")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def sweep_id(experiment: str, preset: str | None, grid: dict[str, list[Any]], sets: dict[str, Any]) -> str:
    """Deterministic id ``<experiment>-<10 hex>`` of a sweep: the same command gives the same id."""
    text = json.dumps(
        {"experiment": experiment, "preset": preset, "grid": grid, "sets": sets}, sort_keys=True, default=str
    )
    return f"{experiment}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
