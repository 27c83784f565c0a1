"""The Trainer's auxiliary loss and representation matching toward a guide: one GD step equals the
hand-computed step on task + λ(1 − CKA); the guide is untouched; matching raises the CKA."""

import pytest
import torch
from torch import nn

from genlab.errors import InputError
from genlab.probes.activations import layer_activations
from genlab.probes.similarity import linear_cka
from genlab.train import Trainer
from genlab.train.guidance import RepresentationMatching


def _nets():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    guide = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    x = torch.randn(20, 6, dtype=torch.float64)
    y = torch.randn(20, 2, dtype=torch.float64)
    return student, guide, x, y


def mse(out, y):
    return ((out - y) ** 2).mean()


def test_one_step_equals_the_hand_computed_step():
    student, guide, x, y = _nets()
    ref = [p.detach().clone() for p in student.parameters()]
    guide_before = {k: v.clone() for k, v in guide.state_dict().items()}
    lr, lam = 0.1, 0.7
    # by hand: gradient of mse + λ(1 − CKA(student hidden, guide hidden)), no hooks involved
    params = [p.detach().clone().requires_grad_(True) for p in student.parameters()]
    h = torch.relu(x @ params[0].T + params[1])
    out = h @ params[2].T + params[3]
    with torch.no_grad():
        g = torch.tanh(guide[0](x))
    total = mse(out, y) + lam * (1 - linear_cka(h, g))
    grads = torch.autograd.grad(total, params)
    expected = [p - lr * gr for p, gr in zip(ref, grads)]
    with RepresentationMatching(student, guide, [("1", "1")], weight=lam) as aux:
        res = Trainer(student, mse, (x, y), lr=lr, max_steps=1, aux_loss=aux).fit()
    for p, e in zip(student.parameters(), expected):
        torch.testing.assert_close(p.detach(), e.detach(), rtol=1e-12, atol=1e-12)
    for k, v in guide.state_dict().items():
        assert torch.equal(v, guide_before[k])
    assert all(len(m._forward_hooks) == 0 for m in student.modules())


def test_matching_raises_cka_toward_the_guide():
    student, guide, x, y = _nets()
    plain = nn.Sequential(*[m for m in _nets()[0]])  # same init
    plain.load_state_dict(student.state_dict())
    Trainer(plain, mse, (x, y), lr=0.05, max_steps=200).fit()
    with RepresentationMatching(student, guide, [("1", "1")], weight=1.0) as aux:
        Trainer(student, mse, (x, y), lr=0.05, max_steps=200, aux_loss=aux).fit()
    g = layer_activations(guide, x, ["1"])["1"]
    c_plain = float(linear_cka(layer_activations(plain, x, ["1"])["1"], g))
    c_guided = float(linear_cka(layer_activations(student, x, ["1"])["1"], g))
    assert c_guided > c_plain + 0.05


def test_bad_pairs():
    student, guide, *_ = _nets()
    with pytest.raises(InputError, match="unknown model submodule"):
        RepresentationMatching(student, guide, [("9", "1")])
    with pytest.raises(InputError, match="unknown guide submodule"):
        RepresentationMatching(student, guide, [("1", "9")])


def test_activation_measurement_on_the_trainers_schedule():
    from genlab.recorder import MemoryRecorder
    from genlab.train.activation_measurement import activation_measurement

    student, _, x, y = _nets()
    seen = []

    def summarize(step, acts):
        seen.append((step, acts["1"].clone()))
        return {"hidden_mean": float(acts["1"].mean())}

    rec = MemoryRecorder()
    Trainer(student, mse, (x, y), lr=0.05, max_steps=10, recorder=rec,
            measurements=[activation_measurement(5, x[:7], ["1"], summarize)]).fit()
    assert [s for s, _ in seen] == [0, 5, 10]
    assert rec.series("hidden_mean")[0] == [0, 5, 10]
    torch.testing.assert_close(seen[-1][1], torch.relu(student[0](x[:7])).detach())
