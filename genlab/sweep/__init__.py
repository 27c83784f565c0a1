"""Sweeps: a grid of configs over many seeds, run by a local process pool or Ray, one writer to the store."""

from genlab.sweep.driver import plan_sweep, run_sweep, sweep_runs
from genlab.sweep.grid import grid_points, parse_grid, sweep_id

__all__ = ["plan_sweep", "run_sweep", "sweep_runs", "parse_grid", "grid_points", "sweep_id"]
