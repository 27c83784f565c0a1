"""Issue 21 part B experiments end to end at small configs: results JSON-able, figures render,
verdicts computed from the run."""

from __future__ import annotations

from conftest import run_experiment


def test_boosted_units_small():
    res, verdicts = run_experiment("boosted-units", groups=2, group_size=3, steps=5)
    assert len(res["curves"]["boosted"][0]) == 3 and res["removed_units"][-1] == 6
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


def test_benign_oscillation_small():
    res, verdicts = run_experiment("benign-oscillation", n_train=20, n_test=50, dim=20, epochs=3, osc_epochs=2, batch_size=5)
    for r in res["runs"].values():
        assert len(r["epoch_loss"]) == 3 and r["sharpness_epochs"] == [0, 1, 2]
        assert len(r["step_loss"]) == 2 * 4
    assert [v.kind for v in verdicts] == ["precondition", "claim", "claim"]


def test_patch_cnn_matches_a_loop():
    import torch

    from genlab.experiments.dynamics.benign_oscillation import PatchCNN

    net = PatchCNN(4, 3, 1.0, torch.Generator().manual_seed(0)).requires_grad_(False)
    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    got = net(x)
    for n in range(2):
        want = 0.0
        for sgn, s in ((1, 0), (-1, 1)):
            want += sgn * sum(max(0.0, float(net.w[s, r] @ x[n, p])) ** 2 for r in range(3) for p in range(3))
        assert abs(float(got[n]) - want) < 1e-5


def test_benign_oscillation_bad_input():
    import pytest

    from genlab.experiments.dynamics.benign_oscillation import BenignOscillationConfig

    with pytest.raises(ValueError, match="large_lr"):
        BenignOscillationConfig(small_lr=0.1, large_lr=0.05)


def test_grokking_stages_small():
    res, verdicts = run_experiment("grokking-stages", M=7, width=8, steps=30, measure_every=10, train_fraction=0.9, low_fraction=0.3)
    assert set(res["runs"]) == {"reference", "no_weight_decay", "small_n"}
    for r in res["runs"].values():
        assert len(r["final_concentration"]) == 16 and r["step"][0] == 0
    assert [v.kind for v in verdicts] == ["precondition", "claim", "claim", "claim", "claim"]


def test_neuron_features_are_the_effective_input_weights():
    import torch

    from genlab.experiments.kernels.grokking import _ModularMLP
    from genlab.experiments.kernels.grokking_stages import neuron_features

    torch.manual_seed(0)
    m = _ModularMLP(5, 3)
    f = neuron_features(m)
    # pre-activation of neuron j on (a, b) = feature_a[j, a] + feature_b[j, b] + bias_j
    codes = torch.nn.functional.one_hot(torch.tensor([[2, 4]]), 5).float()
    e = torch.cat([codes[:, 0] @ m.embed, codes[:, 1] @ m.embed], 1)
    pre = m.hidden(e)[0].detach().double().numpy()
    want = f[:3, 2] + f[3:, 4] + m.hidden.bias.detach().double().numpy()
    assert abs(pre - want).max() < 1e-5


def test_benign_oscillation_divergence_is_a_recorded_result():
    res, verdicts = run_experiment("benign-oscillation", n_train=20, n_test=50, dim=20, epochs=6, osc_epochs=2, batch_size=5, large_lr=50.0)
    assert res["runs"]["large"]["status"] == "diverged"
    assert verdicts[0].kind == "precondition" and not verdicts[0].passed
    assert not verdicts[2].passed  # a diverged run does not count as oscillating
