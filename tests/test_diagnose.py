"""genlab.diagnose: numbers against dense/loop references, the store run and its report section,
bad input (one line, nothing written), and the user's model left bit-identical."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genlab
from genlab.diagnosis import output_margins
from genlab.errors import InputError
from genlab.probes.dense import dense_hessian
from genlab.store import Store


def _model(bn: bool = False):
    torch.manual_seed(0)
    mid = [torch.nn.BatchNorm1d(6)] if bn else []
    return torch.nn.Sequential(torch.nn.Linear(4, 6), *mid, torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()


def _data(n=48, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = ((x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())
    return x, y


def _trained():
    model = _model()
    init = copy.deepcopy(model.state_dict())
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model, init, (x, y)


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    home = tmp_path_factory.mktemp("diag")
    model, init, train = _trained()
    test = _data(32, seed=2)
    d = genlab.diagnose(model, F.cross_entropy, train, test, init, store=home, name="tiny", k=3, hardest=5,
                        trace_matvecs=60, lanczos_steps=30)
    return home, model, init, train, test, d


def test_numbers_match_dense_and_loop_references(diagnosed):
    _, model, init, (x, y), (tx, ty), d = diagnosed
    H = dense_hessian(model, F.cross_entropy, (x, y))
    ev = torch.linalg.eigvalsh(H).flip(0).numpy()
    # Lanczos to tol 1e-6 relative residual: eigenvalues agree to ~1e-6·|λ|max (P = 45, float64)
    np.testing.assert_allclose(d.top_eigenvalues, ev[:3], rtol=1e-5, atol=1e-8)
    # Hutchinson: unbiased, a fixed seed; within 4 of its own standard errors of the exact trace
    assert abs(d.scalars["trace"] - float(H.trace())) < 4 * d.scalars["trace_se"]
    # per-layer sharpness: top eigenvalue of the dense diagonal block of each Linear layer
    sizes = [p.numel() for p in model.parameters()]
    bounds = np.cumsum([0] + sizes)
    blocks = {"0": (bounds[0], bounds[2]), "2": (bounds[2], bounds[4])}
    for name, (a, b) in blocks.items():
        assert d.per_layer_sharpness[name] == pytest.approx(float(torch.linalg.eigvalsh(H[a:b, a:b])[-1]), rel=1e-5)
    # margins and EL2N: a python loop over examples
    with torch.no_grad():
        out = model(x)
    loop = [float(out[i, y[i]] - max(out[i, j] for j in range(3) if j != y[i])) for i in range(len(y))]
    np.testing.assert_allclose(d.margins["train"], loop, rtol=1e-12)
    el2n = [float(torch.linalg.vector_norm(torch.softmax(out[i], 0) - F.one_hot(y[i], 3).double())) for i in range(len(y))]
    np.testing.assert_allclose(d.el2n, el2n, rtol=1e-10)
    assert d.hardest == sorted(range(len(y)), key=lambda i: -el2n[i])[:5]
    assert d.scalars["margin_train.error"] == pytest.approx(np.mean([m <= 0 for m in loop]))
    # distance from init: the norm of the flattened difference
    diff = torch.cat([(p.detach() - init[n]).reshape(-1) for n, p in model.named_parameters()])
    assert d.scalars["distance"] == pytest.approx(float(diff.norm()), rel=1e-12)
    with torch.no_grad():
        assert d.scalars["test_loss"] == pytest.approx(float(F.cross_entropy(model(tx), ty)), rel=1e-12)


def test_heavy_tail_finding_fires_on_cauchy_noise_not_on_gaussian():
    """The finding compares α̂ with a Gaussian control of the same per-coordinate scale: on noise
    that *is* such a Gaussian it must not fire (pooling coordinates of different scales drives α̂
    itself well below 2), on Cauchy noise (α = 1) of the same scales it must. (A control scaled by
    the sample std fails the second half: see robust_gaussian_control.)"""
    from genlab.diagnosis.core import tail_scalars
    from genlab.monitor.verdicts import tail_verdict

    g = torch.Generator().manual_seed(5)
    scale = torch.rand(1, 400, generator=g, dtype=torch.float64) * 3 + 0.1
    gauss = torch.randn(16, 400, generator=g, dtype=torch.float64) * scale
    cauchy = torch.tan(torch.pi * (torch.rand(16, 400, generator=g, dtype=torch.float64) - 0.5)) * scale
    sg, sc = tail_scalars(gauss - gauss.mean(0), 0), tail_scalars(cauchy - cauchy.mean(0), 0)
    assert sg["tail_index"] < 2  # the estimator alone would call this Gaussian noise heavy-tailed
    assert not tail_verdict({k: [(0, v)] for k, v in sg.items()})[0].passed
    assert tail_verdict({k: [(0, v)] for k, v in sc.items()})[0].passed
    assert sc["tail_index_low"] <= sc["tail_index"] <= sc["tail_index_high"]


def test_store_run_and_report_section(diagnosed, tmp_path):
    from genlab.report.html import render_report

    home, *_, d = diagnosed
    with Store(home) as st:
        run = st.get_run(d.run_id)
        assert run["experiment"] == "diagnose:tiny" and run["status"] == "finished"
        assert run["config"]["parameters"] == 51  # 4·6 + 6 + 6·3 + 3
        final = st.final_metrics(d.run_id)
        assert final["sharpness"] == pytest.approx(d.scalars["sharpness"])
        names = {a["name"] for a in st.artifacts(d.run_id, kind="figure")}
        assert names == {"spectrum.png", "margins.png", "el2n.png"}
        assert [v.claim for v in st.checks(d.run_id)] == [v.claim for v in d.verdicts]
        html = render_report(st, [d.run_id])
    assert "Hessian spectral density by SLQ" in html and html.count("data:image/png;base64,") == 3
    assert "monitoring run" in html and "hardest training examples by EL2N" in html
    assert ", ".join(map(str, d.hardest)) in html


def test_model_is_left_bit_identical():
    """Parameters, buffers, train/eval modes, requires_grad flags, .grad and the global RNG."""
    model = _model(bn=True).train()
    model[0].bias.requires_grad_(False)
    x, y = _data(32)
    F.cross_entropy(model(x), y).backward()
    state = copy.deepcopy(model.state_dict())
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    genlab.diagnose(model, F.cross_entropy, (x, y), k=2, trace_matvecs=10, lanczos_steps=10)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all((a is None and p.grad is None) or torch.equal(a, p.grad) for a, p in zip(grads, model.parameters()))
    assert flags == [p.requires_grad for p in model.parameters()]
    assert modes == [m.training for m in model.modules()]
    assert torch.equal(rng, torch.get_rng_state())


@pytest.mark.parametrize("kwargs, match", [
    ({"train_data": (torch.randn(8, 5, dtype=torch.float64), torch.zeros(8, dtype=torch.long))}, "^train_data: the model cannot take this data"),
    ({"train_data": torch.randn(8, 4)}, "^train_data: got a Tensor"),
    ({"test_data": (torch.randn(8, 7, dtype=torch.float64), torch.zeros(8, dtype=torch.long))}, "^test_data: the model cannot"),
    ({"init_state": {"0.weight": torch.zeros(6, 4)}}, "^init_state: has no entry '0.bias'"),
    ({"k": 0}, "^k: got 0; must be an integer >= 1"),
    ({"max_examples": 2}, "^max_examples: got 2"),
    ({"loss_fn": lambda out, y: F.cross_entropy(out, y, reduction="none")}, "^loss_fn: returned Tensor of shape \\(2,\\)"),
])
def test_bad_input_is_one_line_and_nothing_written(tmp_path, kwargs, match):
    model = _model()
    args = {"loss_fn": F.cross_entropy, "train_data": _data(16)} | kwargs
    with pytest.raises(InputError, match=match) as e:
        genlab.diagnose(model, store=tmp_path / "home", **args)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "home").exists()


def test_output_margins_closed_form():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    assert output_margins(logits, torch.tensor([0, 2])).tolist() == [1.5, -2.0]
    assert math.isfinite(output_margins(logits, torch.tensor([1, 1]))[0])
