"""Issue 21 part B experiments end to end at small configs: results JSON-able, figures render,
verdicts computed from the run."""

from __future__ import annotations

from conftest import run_experiment


def test_boosted_units_small():
    res, verdicts = run_experiment("boosted-units", groups=3, group_size=4, steps=20)
    assert len(res["curves"]["boosted"][0]) == 4 and res["removed_units"][-1] == 12
    assert len(verdicts) == 3 and all(isinstance(v.passed, bool) for v in verdicts)


def test_xor_overparameterization_small():
    res, verdicts = run_experiment("xor-overparameterization", widths=[2, 16], seeds=3, max_steps=300, d=3, n_train=20)
    assert [r["k"] for r in res["runs"]] == [2, 16]
    kinds = [v.kind for v in verdicts]
    assert kinds.count("precondition") == 1 and kinds.count("claim") == 2
    for r in res["runs"]:  # exact test errors are probabilities
        assert all(0.0 <= e <= 1.0 for e in r["test_error"])


def test_xor_net_matches_a_loop():
    import torch

    from genlab.experiments.dynamics.xor_overparameterization import xor_net

    g = torch.Generator().manual_seed(0)
    W, U = torch.randn(2, 3, 2, generator=g), torch.randn(2, 3, 2, generator=g)
    x = torch.randn(5, 4, 2, generator=g)
    got = xor_net(W, U, x)
    for s in range(2):
        for n in range(5):
            want = sum(max(max(0.0, float(W[s, i] @ x[n, j])) for j in range(4)) for i in range(3))
            want -= sum(max(max(0.0, float(U[s, i] @ x[n, j])) for j in range(4)) for i in range(3))
            assert abs(float(got[s, n]) - want) < 1e-5
