"""Per-block curvature (``params=``/``per_layer=``) against the Hessian of the loss as a function of
the block's parameters alone (torch.func.hessian over that block, the rest fixed): an independent
dense reference of H_BB on a tiny float64 model."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, hessian

from genlab.errors import InputError
from genlab.probes.blocks import PerBlock, layer_blocks, select_parameters
from genlab.probes.curvature import minibatch_sharpness, hessian_eigenvalues
from genlab.probes.spectrum import hessian_spectrum
from genlab.probes.trace import hessian_trace
from tests._curvature_models import mse, regression_data, tanh_mlp


def _model():
    # width 4 keeps every block ≤ 20 parameters, so Lanczos and Hutch++ are exact on a block
    return tanh_mlp(seed=1, d_in=3, width=4, d_out=2)


def _block_hessian(model, x, y, names):
    """∇² of the mean loss over the parameters ``names`` alone (the others fixed)."""
    fixed = {n: p.detach() for n, p in model.named_parameters()}
    shapes = [fixed[n].shape for n in names]
    sizes = [fixed[n].numel() for n in names]

    def f(flat):
        parts = dict(fixed)
        for n, t, s in zip(names, torch.split(flat, sizes), shapes):
            parts[n] = t.reshape(s)
        return mse(functional_call(model, parts, (x,)), y)

    theta = torch.cat([fixed[n].reshape(-1) for n in names])
    return hessian(f)(theta)


def test_selection_by_name_module_parameter_and_layers():
    m = _model()
    assert select_parameters(m, "2") == ["2.weight", "2.bias"]
    assert select_parameters(m, m[2]) == ["2.weight", "2.bias"]
    assert select_parameters(m, m[4].bias) == ["4.bias"]
    assert select_parameters(m, ["4.weight", m[0]]) == ["0.weight", "0.bias", "4.weight"]  # model order
    assert layer_blocks(m) == {"0": ["0.weight", "0.bias"], "2": ["2.weight", "2.bias"], "4": ["4.weight", "4.bias"]}
    m[2].bias.requires_grad_(False)
    assert layer_blocks(m)["2"] == ["2.weight"]


def test_block_top_eigenvalue_and_trace_equal_dense_block():
    m = _model()
    x, y = regression_data(n=30, d_in=3, d_out=2)
    names = ["2.weight", "2.bias"]
    h = _block_hessian(m, x, y, names)
    ev = torch.linalg.eigvalsh(h)
    r = hessian_eigenvalues(m, mse, (x, y), k=2, tol=1e-10, params=m[2])
    # Lanczos with full reorthogonalization on a 20-dim block: exact to rounding after ≤ 20 steps
    assert r.eigenvalues == pytest.approx(ev.flip(0)[:2].numpy(), rel=1e-8, abs=1e-10)
    # Hutch++ with 3 × 21 products: the sketch spans the whole 20-dim block, the trace is exact
    t = hessian_trace(m, mse, (x, y), method="hutch++", num_matvecs=63, params="2")
    assert t.estimate == pytest.approx(float(h.trace()), rel=1e-8)


def test_per_layer_results_match_each_dense_block_and_sum_to_full_trace():
    m = _model()
    x, y = regression_data(n=30, d_in=3, d_out=2)
    eig = hessian_eigenvalues(m, mse, (x, y), tol=1e-10, per_layer=True)
    tr = hessian_trace(m, mse, (x, y), method="hutch++", num_matvecs=63, per_layer=True)
    assert isinstance(eig, PerBlock) and list(eig) == ["0", "2", "4"]
    total = 0.0
    for block, names in eig.parameters.items():
        h = _block_hessian(m, x, y, names)
        assert eig[block].top == pytest.approx(float(torch.linalg.eigvalsh(h)[-1]), rel=1e-8)
        assert tr[block].estimate == pytest.approx(float(h.trace()), rel=1e-8)
        total += float(h.trace())
    full = hessian_trace(m, mse, (x, y), method="hutch++", num_matvecs=3 * 51)  # P = 50: exact
    assert sum(r.estimate for _, r in tr.items()) == pytest.approx(full.estimate, rel=1e-8)
    assert total == pytest.approx(full.estimate, rel=1e-8)
    # λ_max of a diagonal block never exceeds λ_max of the whole (Cauchy interlacing)
    top = hessian_eigenvalues(m, mse, (x, y), tol=1e-10).top
    assert max(r.top for _, r in eig.items()) <= top * (1 + 1e-9)
    s = eig.scalars()
    assert s["sharpness/4"] == eig["4"].top and "eig0/0" in s


def test_hutchinson_on_a_block_is_unbiased():
    """Hutchinson on H_BB: within 4 standard errors of the dense block trace (seeded, 400 probes)."""
    m = _model()
    x, y = regression_data(n=30, d_in=3, d_out=2)
    h = _block_hessian(m, x, y, ["0.weight", "0.bias"])
    t = hessian_trace(m, mse, (x, y), method="hutchinson", num_matvecs=400, params=m[0])
    assert abs(t.estimate - float(h.trace())) <= 4 * t.stderr


def test_minibatch_sharpness_and_spectrum_on_a_block():
    m = _model()
    x, y = regression_data(n=30, d_in=3, d_out=2)
    names = ["4.weight", "4.bias"]
    b = minibatch_sharpness(m, mse, (x, y), batch_size=30, num_batches=2, tol=1e-10, params="4")
    assert b.full_batch == pytest.approx(float(torch.linalg.eigvalsh(_block_hessian(m, x, y, names))[-1]), rel=1e-8)
    sp = hessian_spectrum(m, mse, (x, y), num_probes=2, lanczos_steps=10, params="4")
    assert sp.size == 10


def test_bad_params_name_the_argument():
    m = _model()
    x, y = regression_data(n=30, d_in=3, d_out=2)
    with pytest.raises(InputError, match="params: no parameter or module named '3'"):
        hessian_eigenvalues(m, mse, (x, y), params="3")
    with pytest.raises(InputError, match="params: module Linear is not a submodule"):
        hessian_trace(m, mse, (x, y), params=torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="per_layer: got 'yes'"):
        hessian_trace(m, mse, (x, y), per_layer="yes")
    m[4].bias.requires_grad_(False)
    with pytest.raises(InputError, match="params: 4.bias selects no trainable parameter"):
        hessian_eigenvalues(m, mse, (x, y), params="4.bias")
