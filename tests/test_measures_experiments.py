"""The measures theme's experiments end to end on the quick zoo, the zoo's storage, and the
no-uniform-tightness linear program against the Chebyshev three-point theorem."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from conftest import run_experiment
from genlab.config import build_config


def test_zoo_experiments_on_the_quick_zoo():
    from genlab.experiments import get_experiment
    from genlab.experiments.measures._suite import table, zoo_rows

    quick = build_config(get_experiment("measures-ranking").Config, "quick").model_dump()
    result, verdicts = run_experiment("measures-ranking", **quick)
    kinds = {v.kind for v in verdicts}
    assert kinds == {"precondition", "claim", "finding"}
    assert len(result["measures"]) >= 15
    # τ recomputed from the zoo's table by scipy (the rows are cached: the same models)
    meas, gap, _, _ = table(zoo_rows(build_config(get_experiment("measures-ranking").Config, "quick")))
    from genlab.probes.measures_suite import EXPECTED_SIGN

    for k in ("log_spec_orig", "pacbayes_flatness", "coherence"):
        assert result["measures"][k]["tau"][0] == pytest.approx(EXPECTED_SIGN[k] * kendalltau(meas[k], gap).statistic, abs=1e-12)
    for name in ("weight-alpha", "no-uniform-tightness"):
        res, vs = run_experiment(name, **quick)
        assert any(v.kind == "claim" for v in vs) and any(v.kind == "precondition" for v in vs)
    res, _ = run_experiment("weight-alpha", **quick)
    assert len(res["alpha"]) == result["n_reached"]


def test_minimax_affine_fit_equals_the_worst_three_point_fit():
    from genlab.experiments.measures.no_uniform_tightness import minimax_affine

    rng = np.random.default_rng(0)
    mu, err = rng.standard_normal(9), rng.random(9)
    t, a, b = minimax_affine(mu, err)
    assert np.max(np.abs(a * mu + b - err)) == pytest.approx(t, abs=1e-7)
    # Chebyshev: the best uniform line over n points is the worst best line over any 3 points;
    # for μ1 < μ2 < μ3 that line leaves t = |e2 − chord(μ2)|/2
    worst = 0.0
    for i, j, k in itertools.combinations(np.argsort(mu), 3):
        chord = err[i] + (err[k] - err[i]) * (mu[j] - mu[i]) / (mu[k] - mu[i])
        worst = max(worst, abs(err[j] - chord) / 2)
    assert t == pytest.approx(worst, abs=1e-7)


def test_zoo_member_state_dicts_round_trip_through_the_store(tmp_path):
    from genlab.experiments.measures._zoo import members_from_store, zoo_data
    from genlab.store import Store
    from genlab.sweep.driver import _write_result
    from genlab.sweep.worker import run_point

    from genlab.experiments import get_experiment

    store = Store(tmp_path)
    cfg = build_config(get_experiment("zoo-model").Config, "quick", {"n_train": 60, "width": 8}).model_dump(mode="json")
    out = run_point("zoo-model", cfg)  # what a sweep worker returns: the state dicts ride along as files
    assert out["status"] == "finished" and set(out["files"]) == {"model.pt", "init.pt"}
    rid = store.create_run("zoo-model", cfg, "h", 0, sweep="s1")
    _write_result(store, rid, out)
    (m,) = members_from_store(store, "s1")
    d = zoo_data(625)
    with torch.no_grad():
        acc = float((m.model(d.x_test).argmax(-1) == d.y_test).double().mean())
    assert acc == pytest.approx(out["result"]["metrics"]["test_acc"], abs=1e-12)
    assert {a["kind"] for a in store.artifacts(rid)} >= {"state_dict", "result"}
    # the measures experiments read the stored zoo back (nothing retrained) with the member's own data
    from types import SimpleNamespace

    from genlab.experiments.measures._suite import ZooConfig, zoo_rows

    rows = zoo_rows(ZooConfig(zoo="s1"), SimpleNamespace(store=store))
    assert len(rows) == 1 and rows[0]["metrics"]["test_acc"] == out["result"]["metrics"]["test_acc"]
    assert rows[0]["measures"] and np.isfinite(rows[0]["measures"]["log_prod_spec"])


def test_random_interpolators_small_grid():
    result, verdicts = run_experiment("random-interpolators", d=4, teacher_widths=[1, 3], student_widths=[2, 3], ns=[2, 4],
                                      samples=4, max_draws=20_000, sgd_steps=20)
    cell = result["cells"][0]
    assert cell["accepts"] <= cell["draws"] and len(cell["errors"]) <= 4
    assert verdicts[0].kind == "precondition"


def test_mixture_regret_and_resolvability_by_direct_computation():
    import math

    from genlab.experiments.measures.bayes_mixture import mixture_regret, resolvability_bound

    th, pr, ts = np.array([0.3, 0.7, 0.5]), np.array([0.2, 0.5, 0.3]), 0.3
    got = mixture_regret(ts, th, pr, [5], 50, seed=4)[0]
    rng = np.random.default_rng(4)
    y = rng.random((50, 5)) < ts
    ref = []
    for seq in y:  # sequential predictive log-loss of the mixture, one symbol at a time
        post, loss_mix, loss_star = pr.copy(), 0.0, 0.0
        for b in seq:
            p1 = float(post @ th)
            loss_mix -= math.log(p1 if b else 1 - p1)
            loss_star -= math.log(ts if b else 1 - ts)
            post = post * (th if b else 1 - th)
            post /= post.sum()
        ref.append(loss_mix - loss_star)
    assert got == pytest.approx(np.mean(ref), rel=1e-10)
    kl = lambda q: ts * math.log(ts / q) + (1 - ts) * math.log((1 - ts) / (1 - q))
    n = 7
    brute = min(-math.log(sum(p for t, p in zip(th, pr) if kl(t) <= kl(e) + 1e-15)) + n * kl(e) for e in th)
    assert resolvability_bound(ts, th, pr, n) == pytest.approx(brute)


def test_bayes_mixture_quick():
    quick = build_config(__import__("genlab.experiments", fromlist=["get_experiment"]).get_experiment("bayes-mixture").Config, "quick").model_dump()
    quick.update(sequences=50, sgld_steps=800)
    result, verdicts = run_experiment("bayes-mixture", **quick)
    assert len(verdicts) == 5 and result["classes"]["B"]["size"] == 1000


def test_measures_stored_with_a_zoo_member_are_read_back_only_when_their_settings_match(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from genlab.experiments import get_experiment
    from genlab.experiments.measures import _suite
    from genlab.experiments.measures._suite import ZooConfig, zoo_rows
    from genlab.experiments.measures._zoo import member_measures, members_from_store, zoo_data
    from genlab.store import Store
    from genlab.sweep.driver import _write_result
    from genlab.sweep.worker import run_point

    store = Store(tmp_path)
    cfg = build_config(get_experiment("zoo-model").Config, "quick",
                       {"n_train": 60, "width": 8, "measures": True, "draws": 2, "ascent_steps": 2}).model_dump(mode="json")
    out = run_point("zoo-model", cfg)
    assert out["result"]["metrics"]["reached"] == 1.0, "precondition: the tiny member reaches the quick criterion"
    stored = out["result"]["measures"]
    assert stored["settings"] == {"seed": cfg["seed"], "draws": 2, "ascent_steps": 2} and len(stored["values"]) >= 15
    rid = store.create_run("zoo-model", cfg, "h", 0, sweep="s2")
    _write_result(store, rid, out)
    # reference: the measures recomputed on the member rebuilt from its stored weights
    (m,) = members_from_store(store, "s2")
    again = member_measures(m, zoo_data(625), cfg["seed"], 2, 2)
    for k, v in stored["values"].items():
        assert again["values"][k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), k
    calls: list[int] = []
    real = _suite.member_measures
    monkeypatch.setattr(_suite, "member_measures", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    rows = zoo_rows(ZooConfig(zoo="s2", draws=2, ascent_steps=2, seed=cfg["seed"]), SimpleNamespace(store=store))
    assert calls == [] and rows[0]["measures"] == stored["values"]  # same settings: read, not recomputed
    zoo_rows(ZooConfig(zoo="s2", draws=3, ascent_steps=2, seed=cfg["seed"]), SimpleNamespace(store=store))
    assert calls == [1]  # other settings: recomputed


@pytest.mark.parametrize("bad", ["a b", "../x", "x\x00", "-x", "a" * 65])
def test_zoo_name_is_a_sweep_id_or_empty(bad):
    from genlab.errors import InputError
    from genlab.experiments import get_experiment

    with pytest.raises(InputError, match="zoo"):
        build_config(get_experiment("measures-ranking").Config, "quick", {"zoo": bad})
    assert build_config(get_experiment("measures-ranking").Config, "quick", {"zoo": "mnist1d-zoo"}).zoo == "mnist1d-zoo"
