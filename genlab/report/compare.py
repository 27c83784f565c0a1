"""Data out of the store and runs compared: metric series, config and verdict differences,
final-metric deltas, and the overlay of several runs' curves on shared axes. Torch-free."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from genlab.errors import InputError, did_you_mean
from genlab.store import Store, claim_outcome


def series(store: Store, run_id: int, patterns: Sequence[str] = ()) -> dict[str, tuple[list[int], list[float]]]:
    """Every metric series of a run (name -> steps, values), in recording order, optionally only
    the names matching ``patterns`` (exact names or shell globs such as ``eta=0.1/*``).
    A pattern matching nothing is an InputError that suggests the nearest name."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for step, name, value in store.metrics(run_id):
        steps, values = out.setdefault(name, ([], []))
        steps.append(step)
        values.append(value)
    if not patterns:
        return out
    chosen: dict[str, tuple[list[int], list[float]]] = {}
    for pat in patterns:
        hits = [n for n in out if fnmatch.fnmatchcase(n, pat)] if any(c in pat for c in "*?[") else \
            ([pat] if pat in out else [])
        if not hits:
            tails = [n for n in out if n.endswith("/" + pat)]
            hint = f" did you mean {tails[0]!r} (or the glob '*/{pat}')?" if tails else did_you_mean(pat, list(out))
            raise InputError(f"NAME: run {run_id} has no metric {pat!r};{hint} "
                             f"`genlab metrics {run_id}` lists its {len(out)} metrics")
        for n in hits:
            chosen[n] = out[n]
    return chosen


@dataclass
class RunDiff:
    """What differs between run A and run B."""

    a: dict[str, Any]
    b: dict[str, Any]
    config: list[tuple[str, Any, Any]] = field(default_factory=list)  # key, value in A, value in B
    verdicts: list[tuple[str, str, str]] = field(default_factory=list)  # claim, outcome in A, in B
    metrics: list[tuple[str, float, float]] = field(default_factory=list)  # name, final in A, in B
    only_a: list[str] = field(default_factory=list)  # metrics only A has
    only_b: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a["id"], "b": self.b["id"],
            "config": [{"key": k, "a": x, "b": y} for k, x, y in self.config],
            "verdicts": [{"claim": c, "a": x, "b": y} for c, x, y in self.verdicts],
            "metrics": [{"name": n, "a": _json_num(x), "b": _json_num(y), "delta": _json_num(y - x)}
                        for n, x, y in self.metrics],
            "only_a": self.only_a, "only_b": self.only_b,
        }


def _json_num(x: float) -> float | None:
    return x if math.isfinite(x) else None


_MISSING = "(absent)"


def diff_runs(store: Store, a: int, b: int, all_metrics: bool = False) -> RunDiff:
    """Config keys whose values differ, every claim's outcome in both runs (changed ones first),
    and the final value of every metric both runs share (only the changed ones unless ``all_metrics``)."""
    ra, rb = store.get_run(a), store.get_run(b)
    for rid, run in ((a, ra), (b, rb)):
        if run is None:
            raise InputError(f"RUN: no run with id {rid} in the store")
    assert ra is not None and rb is not None
    d = RunDiff(ra, rb)
    ca, cb = ra["config"], rb["config"]
    for key in sorted(set(ca) | set(cb)):
        if ca.get(key, _MISSING) != cb.get(key, _MISSING):
            d.config.append((key, ca.get(key, _MISSING), cb.get(key, _MISSING)))
    va, vb = store.checks(a), store.checks(b)
    oa = {v.claim: claim_outcome(v, va) for v in va}
    ob = {v.claim: claim_outcome(v, vb) for v in vb}
    claims = list(dict.fromkeys([*oa, *ob]))
    rows = [(c, oa.get(c, _MISSING), ob.get(c, _MISSING)) for c in claims]
    d.verdicts = sorted(rows, key=lambda r: r[1] == r[2])  # changed outcomes first, order kept otherwise
    fa, fb = store.final_metrics(a), store.final_metrics(b)
    for name in sorted(set(fa) & set(fb)):
        x, y = fa[name], fb[name]
        same = x == y or (math.isnan(x) and math.isnan(y))
        if all_metrics or not same:
            d.metrics.append((name, x, y))
    d.only_a = sorted(set(fa) - set(fb))
    d.only_b = sorted(set(fb) - set(fa))
    return d


def overlay_figures(store: Store, run_ids: Sequence[int], max_panels: int = 12) -> list[tuple[str, Any]]:
    """For runs of one experiment: one panel per metric series they all recorded (more than one
    step), every run's curve on the same axes. Returns (metric name, matplotlib Figure) pairs,
    at most ``max_panels`` (the series with the most points first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_run = {rid: series(store, rid) for rid in run_ids}
    common = set.intersection(*(set(s) for s in per_run.values())) if per_run else set()
    names = [n for n in common if all(len(per_run[r][n][0]) > 1 for r in run_ids)]
    names.sort(key=lambda n: (-max(len(per_run[r][n][0]) for r in run_ids), n))
    figs = []
    for name in names[:max_panels]:
        fig, ax = plt.subplots(figsize=(4.4, 2.9))
        for rid in run_ids:
            steps, values = per_run[rid][name]
            ax.plot(steps, values, lw=1.3, label=f"run {rid}")
        finite = [v for rid in run_ids for v in per_run[rid][name][1] if math.isfinite(v)]
        if finite and min(finite) > 0 and max(finite) / min(finite) > 1e3:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        fig.tight_layout()
        figs.append((name, fig))
    return figs


__all__ = ["RunDiff", "diff_runs", "overlay_figures", "series"]
