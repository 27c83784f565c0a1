"""Every public probe on every zoo model (tests/_model_zoo.py), in eval and train mode.

Each cell either matches an independent reference at a stated tolerance (tests/_probe_table.py
says which and why) or raises the documented one-line InputError; and in every cell — matched,
refused, or interrupted by an error — the model is left bit-identical: parameters, buffers,
every submodule's train/eval flag, requires_grad, existing .grad tensors, hooks, and the global
random stream. The default run covers every per-example probe and the curvature probes on the
models where they have failed before (attention, RNNs, tied weights, dict inputs, weight_norm);
``pytest -m slow`` runs the whole table.
"""

from __future__ import annotations

import pytest
import torch

from _model_zoo import NAMES, case
from _probe_table import CELLS, MODES, run_cell

PER_EXAMPLE = {"per_example_stats", "gradient_coherence", "gradient_snr", "grand_scores", "el2n_scores", "empirical_ntk"}
HESSIAN = {"hessian_eigenvalues", "hessian_top_eigenvalue", "minibatch_sharpness", "directional_sharpness", "hessian_trace", "hessian_spectrum",
           "gfs_sharpness", "dense_hessian", "hessian_diagonal"}


def expected(probe: str, model: str, mode: str) -> str:
    """The documented outcome of a cell."""
    if probe in PER_EXAMPLE and model == "resnet" and mode == "train":
        return "refused"  # per-example quantities under train-mode BatchNorm: ill-defined
    if probe in HESSIAN and model == "weightnorm":
        return "refused"  # torch's double backward through weight_norm is wrong: asymmetric operator
    return "match"


FAST = [(p, m) for p in sorted(PER_EXAMPLE | {"minibatch_gradient_noise"}) for m in ("resnet", "encoder", "tied", "dict", "lstm", "frozen")
        if (p, m) != ("empirical_ntk", "resnet")] + [
    ("hessian_eigenvalues", m) for m in ("encoder", "prelnt", "lstm", "tied", "weightnorm")
] + [("ggn_eigenvalues", m) for m in ("lstm", "dict")]
SLOW = [(p, m) for p in CELLS for m in NAMES if (p, m) not in FAST]


def snapshot(model: torch.nn.Module) -> dict:
    hooks = {}
    for n, m in model.named_modules():
        hooks[n] = tuple(len(getattr(m, a)) for a in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                                                       "_backward_pre_hooks", "_state_dict_hooks"))
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grad": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "tensor_hooks": {n: len(p._backward_hooks or {}) for n, p in model.named_parameters()},
        "hooks": hooks,
        "rng": torch.get_rng_state(),
    }


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k in ("params", "buffers", "grad"):
            assert a[k].keys() == b[k].keys()
            for n in a[k]:
                x, y = a[k][n], b[k][n]
                assert (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)), (k, n)
        elif k == "rng":
            assert torch.equal(a[k], b[k]), "the global random stream was consumed"
        else:
            assert a[k] == b[k], k


def _dress(model: torch.nn.Module) -> None:
    """A model as a user holds it mid-training: mixed modes, a .grad, a user hook."""
    model.train()
    children = list(model.children())
    children[-1].eval()
    p = next(q for q in model.parameters() if q.requires_grad)
    p.grad = torch.full_like(p, 0.25)
    model.register_forward_hook(lambda *a: None)


def _check_cell(probe: str, model: str, mode: str, monkeypatch) -> None:
    import _probe_table

    made = {}

    def dressed(name, *a, **k):
        c = case(name, *a, **k)
        _dress(c.model)
        made["c"] = c
        made["before"] = snapshot(c.model)
        return c

    monkeypatch.setattr(_probe_table, "case", dressed)
    status, detail = run_cell(probe, model, mode)
    assert_same(made["before"], snapshot(made["c"].model))
    assert status == expected(probe, model, mode), detail


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("probe,model", FAST)
def test_cell(probe: str, model: str, mode: str, monkeypatch) -> None:
    _check_cell(probe, model, mode, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("probe,model", SLOW)
def test_cell_slow(probe: str, model: str, mode: str, monkeypatch) -> None:
    _check_cell(probe, model, mode, monkeypatch)


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("probe", sorted(set(CELLS) - {"el2n_scores", "empirical_ntk", "dense_hessian"}))
@pytest.mark.parametrize("mode", ["train", "as-is"])
def test_model_unchanged_when_the_probe_raises(probe: str, mode: str, monkeypatch) -> None:
    """A loss that fails on its 6th call (after the checks, inside the measurement)."""
    import _probe_table

    c = case("encoder")
    _dress(c.model)
    before = snapshot(c.model)
    calls = {"n": 0}

    def failing(out, y):
        calls["n"] += 1
        if calls["n"] > 5:
            raise Boom("loss failed")
        return torch.nn.functional.cross_entropy(out, y)

    c.loss_fn = failing
    monkeypatch.setattr(_probe_table, "case", lambda *a, **k: c)
    monkeypatch.setattr(_probe_table, "_copy", lambda c_, m: (_ for _ in ()).throw(Boom("no reference")))
    status, detail = run_cell(probe, "encoder", mode if mode != "as-is" else "as-is")
    assert status == "CRASH" and "Boom" in detail, detail
    assert_same(before, snapshot(c.model))
