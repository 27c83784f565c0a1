"""Shared by the zoo experiments of the measures theme: the zoo's config, building (or reading) the
zoo and computing every measure on every member, cached per process so that the experiments of one
atlas run share one zoo."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import Field

from genlab.config import NonNegativeFloats, PositiveFloats, PositiveInts
from genlab.experiments._base import ExperimentConfig
from genlab.experiments.measures._zoo import AXES, grid, measure_settings, member_measures, members_from_store, train_member, zoo_data

QUICK_ZOO: dict[str, Any] = {"widths": [16, 64], "depths": [1, 2], "lrs": [0.02], "batch_sizes": [100], "weight_decays": [0.0],
                             "dropouts": [0.0], "n_trains": [100, 300], "num_samples": 625, "criterion": 0.05,
                             "max_steps": 1500, "draws": 3, "ascent_steps": 3,
                             "bootstrap": 100, "cmi_bootstrap": 10}
FULL_ZOO: dict[str, Any] = {"widths": [128, 256], "depths": [2, 3], "lrs": [0.001, 0.003], "batch_sizes": [32, 128],
                            "weight_decays": [0.0, 0.0001], "dropouts": [0.0, 0.1], "n_trains": [1000, 4000],
                            "num_samples": 5000, "criterion": 0.01, "max_steps": 40000, "draws": 8, "ascent_steps": 10}


class ZooConfig(ExperimentConfig):
    """The zoo: the product of the axis lists (trained in this run), or ``zoo`` = the name of a
    ``genlab sweep zoo-model`` sweep in the store (read back, nothing retrained). At full scale the
    sweep is the way: it trains the 128 models in parallel, resumably, and stores their measures
    (45 min wall on 2 cores); ``--full`` without ``zoo`` trains the same grid in this one process."""

    widths: PositiveInts = Field(default_factory=lambda: [16, 64], description="hidden widths")
    depths: PositiveInts = Field(default_factory=lambda: [1, 2], description="hidden layers")
    lrs: PositiveFloats = Field(default_factory=lambda: [0.02], description="Adam step sizes")
    batch_sizes: PositiveInts = Field(default_factory=lambda: [100], description="minibatch sizes")
    weight_decays: NonNegativeFloats = Field(default_factory=lambda: [0.0], description="L2 weight decays")
    dropouts: NonNegativeFloats = Field(default_factory=lambda: [0.0], description="dropout probabilities (< 1)")
    n_trains: PositiveInts = Field(default_factory=lambda: [100, 300], description="training-set sizes")
    num_samples: int = Field(625, ge=100, le=5000, description="MNIST-1D signals generated (5000 = the standard set)")
    criterion: float = Field(0.05, gt=0, description="training cross-entropy every model is trained to")
    max_steps: int = Field(1500, ge=1, description="optimizer steps before a model is given up (left out)")
    draws: int = Field(4, ge=1, le=64, description="noise draws per σ of the PAC-Bayes search")
    ascent_steps: int = Field(5, ge=1, le=100, description="sign-ascent steps of the sharpness search")
    bootstrap: int = Field(200, ge=10, le=5000, description="bootstrap resamples of every interval")
    cmi_bootstrap: int = Field(50, ge=10, le=1000, description="bootstrap resamples of the CMI score K (costly: pairs × conditioning sets)")
    zoo: str = Field("", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
                     description="read the zoo from this zoo-model sweep in the store instead of training it (a sweep id: letters, digits, . _ -; empty: train it here)")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        return {"quick": dict(QUICK_ZOO), "full": dict(FULL_ZOO)}


def _axes_of(config: ZooConfig) -> dict[str, list[Any]]:
    return {"width": config.widths, "depth": config.depths, "lr": config.lrs, "batch_size": config.batch_sizes,
            "weight_decay": config.weight_decays, "dropout": config.dropouts, "n_train": config.n_trains}


@lru_cache(maxsize=4)
def _trained_rows(key: str) -> tuple[dict[str, Any], ...]:
    c = json.loads(key)
    if c["zoo"]:
        from genlab.store import Store

        members = members_from_store(Store(c["home"] or None, create=False), c["zoo"])
        data = None
    else:
        data = zoo_data(c["num_samples"])
        members = [train_member(spec, data, c["criterion"], c["max_steps"], c["seed"] + 1000 * i)
                   for i, spec in enumerate(grid(c["axes"]))]
    want = measure_settings(c["seed"], c["draws"], c["ascent_steps"])
    rows = []
    for m in members:
        row: dict[str, Any] = {"spec": m.spec, "metrics": m.metrics, "measures": {}}
        if m.reached:
            # measures stored with the member (computed in the sweep's workers) are used when they
            # were computed with this run's settings; otherwise they are computed here
            got = m.stored if m.stored.get("settings") == want else \
                member_measures(m, data or zoo_data(int(m.spec.get("num_samples", c["num_samples"]))), **want)
            row["measures"] = dict(got["values"])
            row["dist_all_sq"] = float(got["dist_all_sq"])
        rows.append(row)
    return tuple(rows)


def zoo_rows(config: ZooConfig, recorder: Any = None) -> list[dict[str, Any]]:
    """One row per member: ``spec`` (axis values), ``metrics`` (train/test numbers, ``reached``) and
    ``measures`` (empty for a model that missed the criterion: left out, as in Jiang et al.)."""
    home = str(getattr(getattr(recorder, "store", None), "home", "") or "")
    key = json.dumps({"axes": _axes_of(config), "num_samples": config.num_samples, "criterion": config.criterion,
                      "max_steps": config.max_steps, "seed": config.seed, "draws": config.draws,
                      "ascent_steps": config.ascent_steps, "zoo": config.zoo, "home": home}, sort_keys=True)
    return [json.loads(json.dumps(r, allow_nan=True)) for r in _trained_rows(key)]


def figure_style() -> Any:
    """matplotlib's pyplot with the Agg backend (figures are drawn off-screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(rows: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, list[Any]]]:
    """(measures by name, gap, test error, axes with ≥ 2 values) over the members that reached the criterion."""
    ok = [r for r in rows if r["measures"]]
    names = list(ok[0]["measures"]) if ok else []
    meas = {k: np.array([r["measures"][k] for r in ok], float) for k in names}
    gap = np.array([r["metrics"]["gap"] for r in ok], float)
    err = np.array([r["metrics"]["test_error"] for r in ok], float)
    axes = {a: [r["spec"][a] for r in ok] for a in AXES if len({r["spec"][a] for r in ok}) > 1}
    return meas, gap, err, axes
