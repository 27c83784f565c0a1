"""The checks and layouts every probe shares (genlab.probes._setup): each mistake refused in one
line naming the argument, each accepted layout giving the same numbers as the plain tensor pair."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from _model_zoo import case
from genlab import probes as P
from genlab.errors import InputError


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def data(n: int = 12, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


ce = nn.functional.cross_entropy

# every probe taking (model, loss_fn, data), with small budgets
PROBES = {
    "hessian_eigenvalues": lambda m, l, d, **k: P.hessian_eigenvalues(m, l, d, tol=1e-10, **k),
    "hessian_trace": lambda m, l, d, **k: P.hessian_trace(m, l, d, num_matvecs=9, **k),
    "hessian_spectrum": lambda m, l, d, **k: P.hessian_spectrum(m, l, d, num_probes=1, lanczos_steps=5, **k),
    "minibatch_sharpness": lambda m, l, d, **k: P.minibatch_sharpness(m, l, d, batch_size=2, num_batches=2, **k),
    "directional_sharpness": lambda m, l, d, **k: P.directional_sharpness(m, l, d, **k),
    "gfs_sharpness": lambda m, l, d, **k: P.gfs_sharpness(m, l, d, max_steps=2, **k),
    "dense_hessian": lambda m, l, d, **k: P.dense_hessian(m, l, d, **k),
    "per_example_stats": lambda m, l, d, **k: P.per_example_stats(m, l, d, **k),
    "gradient_coherence": lambda m, l, d, **k: P.gradient_coherence(m, l, d, **k),
    "gradient_snr": lambda m, l, d, **k: P.gradient_snr(m, l, d, **k),
    "grand_scores": lambda m, l, d, **k: P.grand_scores(m, l, d, **k),
    "minibatch_gradient_noise": lambda m, l, d, **k: P.minibatch_gradient_noise(m, l, d, 2, **k),
    "gradient_noise_tail_index": lambda m, l, d, **k: P.gradient_noise_tail_index(m, l, d, 2, **k),
}


def one_line(err: pytest.ExceptionInfo, *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and isinstance(err.value, InputError), msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("name", PROBES)
def test_common_mistakes_are_refused_in_one_line(name: str) -> None:
    probe = PROBES[name]
    model, (x, y) = mlp(), data()
    with pytest.raises(InputError) as e:  # reduction='sum' gives N× the curvature/gradients
        probe(model, lambda o, t: ce(o, t, reduction="sum"), (x, y))
    one_line(e, "loss_fn", "reduction='mean'")
    with pytest.raises(InputError) as e:
        probe(model, ce, (x[:0], y[:0]))
    one_line(e, "data", "no examples")
    with pytest.raises(InputError) as e:
        probe(model, lambda o, t: ce(o, t, reduction="none"), (x, y))
    one_line(e, "loss_fn", "not a scalar")
    frozen = mlp().requires_grad_(False)
    with pytest.raises(InputError) as e:
        probe(frozen, ce, (x, y))
    one_line(e, "model", "no trainable parameters")
    with pytest.raises(InputError) as e:  # swapped arguments
        probe(model, (x, y), ce)
    one_line(e, "loss_fn")
    with pytest.raises(InputError) as e:
        probe(model, ce, "digits")
    one_line(e, "data", "allowed")
    with pytest.raises(InputError) as e:
        probe(model, ce, (x, y), mode="inference")
    one_line(e, "mode", "'eval'")


def test_el2n_and_ntk_checks() -> None:
    model, (x, y) = mlp(), data()
    with pytest.raises(InputError) as e:
        P.el2n_scores(model, (x[:0], y[:0]))
    one_line(e, "data")
    with pytest.raises(InputError) as e:
        P.empirical_ntk(model, "x")
    one_line(e, "x1")
    with pytest.raises(InputError) as e:  # a tuple output without output_fn
        P.el2n_scores(case("dict").model, case("dict").data)
    one_line(e, "output_fn")


def test_mean_loss_is_not_flagged_with_train_mode_batchnorm() -> None:
    """BatchNorm statistics differ between a batch and its halves, a mean loss still passes."""
    c = case("resnet", n=8)
    r = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, mode="train", tol=1e-6)
    assert r.info.mode == "train" and r.info.n == 8


class Indexed(Dataset):
    """A map-style dataset that counts how often its examples are read."""

    def __init__(self, x, y):
        self.x, self.y, self.reads = x, y, 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        self.reads += 1
        return self.x[i], self.y[i]


def test_shuffled_dataloader_is_read_once_and_scores_come_back_in_dataset_order() -> None:
    model, (x, y) = mlp(), data(10)
    ds = Indexed(x, y)
    loader = DataLoader(ds, batch_size=3, shuffle=True, num_workers=2)
    before = torch.get_rng_state()
    r = P.hessian_eigenvalues(model, ce, loader, tol=1e-10)
    assert ds.reads == 10  # one pass for the call, not one per Hessian-vector product
    assert torch.equal(before, torch.get_rng_state())  # the user's random stream untouched
    assert r.info.n == 10 and r.top == pytest.approx(P.hessian_eigenvalues(model, ce, (x, y), tol=1e-10).top, rel=1e-8)
    # EL2N/GraNd over a shuffled loader: the same tensor as over the dataset in order
    for probe in (lambda d: P.el2n_scores(model, d), lambda d: P.grand_scores(model, ce, d)):
        torch.testing.assert_close(probe(loader), probe((x, y)), rtol=1e-12, atol=0)
    s = P.el2n_scores(model, loader, with_indices=True)
    assert s.indices.tolist() == list(range(10))
    # explicit indices: scores sorted by them
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    s = P.grand_scores(model, ce, (x[perm], y[perm]), indices=perm, with_indices=True)
    torch.testing.assert_close(s.scores, P.grand_scores(model, ce, (x, y)), rtol=1e-12, atol=0)
    # a list of batches and a TensorDataset loader: all examples used
    assert P.gradient_coherence(model, ce, DataLoader(TensorDataset(x, y), batch_size=4)).m == 10
    tail_loader = P.gradient_noise_tail_index(model, ce, DataLoader(TensorDataset(x, y), batch_size=4), 2)
    assert tail_loader == P.gradient_noise_tail_index(model, ce, (x, y), 2)


def test_tuple_and_mapping_inputs_give_the_same_numbers() -> None:
    torch.manual_seed(0)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(2, 4)
            self.head = nn.Linear(4, 3)

        def forward(self, a, b=None):
            if isinstance(a, dict):
                a, b = a["a"], a["b"]
            return {"logits": self.head(torch.tanh(self.a(a) + self.b(b)))}

    m = Two().double()
    g = torch.Generator().manual_seed(0)
    xa, xb = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    pick = lambda out: out["logits"]  # noqa: E731
    t = P.hessian_eigenvalues(m, ce, ((xa, xb), y), output_fn=pick, tol=1e-10).top
    d = P.hessian_eigenvalues(m, ce, ({"a": xa, "b": xb}, y), output_fn=pick, tol=1e-10).top
    assert t == pytest.approx(d, rel=1e-10)
    ga = P.grand_scores(m, ce, ((xa, xb), y), output_fn=pick)
    gd = P.grand_scores(m, ce, ({"a": xa, "b": xb}, y), output_fn=pick, batch_size_fn=lambda inp: inp["b"].shape[0])
    torch.testing.assert_close(ga, gd, rtol=1e-12, atol=0)
    K = P.empirical_ntk(m, {"a": xa, "b": xb}, output_fn=pick)
    assert K.shape == (8, 8)


def test_compiled_model_is_measured_through_its_original_module() -> None:
    model, (x, y) = mlp(), data()
    compiled = torch.compile(model)
    r = P.hessian_eigenvalues(compiled, ce, (x, y), tol=1e-10)
    assert r.top == pytest.approx(P.hessian_eigenvalues(model, ce, (x, y), tol=1e-10).top, rel=1e-12)
    assert any("compile" in n for n in r.info.notes)


def test_result_states_mode_dtype_device_examples() -> None:
    model, (x, y) = mlp(), data()
    for r in (P.hessian_trace(model, ce, (x, y), num_matvecs=9), P.gradient_snr(model, ce, (x, y), mode="train"),
              P.gradient_coherence(model, ce, (x, y), mode="as-is")):
        assert (r.info.dtype, r.info.device, r.info.n) == ("float64", "cpu", 12)
    assert r.info.mode == "train"  # as-is on a freshly built (train-mode) model


def test_train_mode_dropout_fixed_within_a_call() -> None:
    """With dropout in train mode every Hessian-vector product is of one fixed matrix: Lanczos
    converges, the same seed gives the same number, and a shuffled DataLoader changes nothing
    but the order of batches (masks follow the batch: compare with the same batches in order)."""
    c = case("encoder", n=8)
    a = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, mode="train", tol=1e-9, seed=5)
    b = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, mode="train", tol=1e-9, seed=5)
    e = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, mode="eval", tol=1e-9)
    assert a.converged and a.top == b.top
    assert a.top != e.top and any("dropout" in n for n in a.info.notes)


def test_gfs_refuses_cross_entropy_without_finite_minimum_and_reports_its_budget() -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 2).double()
    x = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [2.0, 1.0], [-2.0, -1.0]], dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        model.bias.zero_()
    y = (x[:, 0] < 0).long()  # separated by the current model
    with pytest.raises(InputError) as e:
        P.gfs_sharpness(model, ce, (x, y))
    one_line(e, "loss_fn", "no finite minimum", "loss_tol")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = P.gfs_sharpness(model, ce, (x, y), loss_tol=1e-12, max_steps=3)
    assert any("no finite minimum" in str(m.message) for m in w)
    assert r.budget_hit == "steps" and not r.converged and r.steps == 3
    # a squared loss has a minimum: no refusal
    r = P.gfs_sharpness(model, lambda o, t: 0.5 * ((o - t) ** 2).sum(1).mean(), (x, torch.zeros(4, 2, dtype=torch.float64)),
                        max_steps=2)
    assert r.budget_hit == "steps"


def test_asymmetric_operator_warns_when_asked() -> None:
    c = case("weightnorm")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, symmetry="warn", max_iter=5)
    assert any("weight" in str(m.message).lower() and "not symmetric" in str(m.message) for m in w)
    assert any("not symmetric" in n for n in r.info.notes) and not r.converged


def test_float32_lstm_ggn_falls_back_to_reverse_mode() -> None:
    """Forward-mode AD has no rule for the float32 CPU LSTM kernel: J v by reverse-over-reverse,
    checked against the float64 GGN of the same model (float32 rounding: 1e-4 relative)."""
    c64 = case("lstm", n=5)
    c32 = case("lstm", dtype=torch.float32, n=5)
    r32 = P.hessian_eigenvalues(c32.model, c32.loss_fn, c32.data, curvature="ggn", tol=1e-5)
    r64 = P.hessian_eigenvalues(c64.model, c64.loss_fn, c64.data, curvature="ggn", tol=1e-10)
    assert r32.top == pytest.approx(r64.top, rel=1e-4)
    assert any("reverse-over-reverse" in n for n in r32.info.notes)


def test_snr_rounding_level_entries_are_zero_variance() -> None:
    """The key bias of nn.MultiheadAttention has zero gradient in exact arithmetic (softmax is
    shift-invariant); its rounding-level entries are reported as zero-variance, not as signal."""
    torch.manual_seed(0)

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(4, 2, batch_first=True)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(self.mha(x, x, x, need_weights=False)[0].mean(1))

    m = Attn().double()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 3, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (10,), generator=g)
    r = P.gradient_snr(m, ce, (x, y))
    key_bias = r.per_parameter["mha.in_proj_bias"][4:8]
    assert torch.isnan(key_bias).all()
    assert not torch.isnan(r.per_parameter["mha.in_proj_bias"][8:]).any()  # value bias: real signal


def test_data_beyond_the_memory_limit_is_refused(monkeypatch) -> None:
    import genlab.probes._setup as setup

    model, (x, y) = mlp(), data()
    monkeypatch.setattr(setup, "MAX_DATA_BYTES", 100)
    with pytest.raises(InputError) as e:
        P.hessian_trace(model, ce, [(x[:6], y[:6]), (x[6:], y[6:])], num_matvecs=9)
    one_line(e, "data", "bytes")


def _loop_grads(model, loss_fn, x, y):
    ps = [p for p in model.parameters() if p.requires_grad]
    return torch.stack([
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_fn(model(x[i : i + 1]), y[i : i + 1]), ps)])
        for i in range(len(y))
    ])


class GroupedNet(nn.Module):
    """Grouped and depthwise convolutions, GroupNorm, an embedding of a token: all off the fast path."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1, groups=2)
        self.gn = nn.GroupNorm(2, 4)
        self.dw = nn.Conv2d(4, 4, 3, groups=4, padding="same")
        self.emb = nn.Embedding(5, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        img, tok = x[:, :2], x[:, 2, 0, 0].long()
        h = torch.tanh(self.dw(torch.tanh(self.gn(self.c1(img))))).mean((2, 3))
        return self.head(h + self.emb(tok))


@pytest.mark.parametrize("kind", ["grouped", "gru32"])
def test_per_example_engine_on_more_modules_matches_a_loop(kind: str) -> None:
    """Per-example squared norms and mean gradient against a python loop (float64: 1e-8
    relative; the float32 GRU runs through the per-example loop fallback: 1e-5, float32 rounding)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    if kind == "grouped":
        model, rtol = GroupedNet().double(), 1e-8
        x = torch.randn(7, 3, 5, 5, generator=g, dtype=torch.float64)
        x[:, 2] = torch.randint(0, 5, (7, 1, 1), generator=g).double()
    else:
        c = case("gru", dtype=torch.float32, n=7)
        model, x, rtol = c.model, c.data[0], 1e-5
    y = torch.randint(0, 3, (7,), generator=g)
    G = _loop_grads(model, ce, x, y)
    st = P.per_example_stats(model, ce, (x, y), gram=True)
    torch.testing.assert_close(st.sq_norms, G.pow(2).sum(1), rtol=rtol, atol=rtol * float(G.pow(2).sum(1).max()))
    torch.testing.assert_close(st.gram, G @ G.T, rtol=rtol, atol=rtol * float((G @ G.T).abs().max()))


def test_ntk_with_train_mode_dropout_does_not_depend_on_the_memory_setting() -> None:
    c = case("encoder", n=5)
    a = P.empirical_ntk(c.model, c.data[0], mode="train", max_elements=10**8)
    b = P.empirical_ntk(c.model, c.data[0], mode="train", max_elements=50)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    e = P.empirical_ntk(c.model, c.data[0], mode="eval")
    assert not torch.allclose(a, e)
