"""Per-example gradient statistics against a naive loop over examples (float64).

Reference: for each example i, ``torch.autograd.grad`` of ``loss_fn`` on the batch of one
(x_i, y_i) gives g_i exactly; every statistic is then computed from the N×P matrix of g_i.
Tolerance: relative error 1e-8 (both sides are float64 computations of the same sums in a
different order; rounding is ~1e-15 relative), with an absolute floor of 1e-10 × the largest
entry for entries that cancel to ~0 (Gram off-diagonals, means of opposite-sign gradients).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.probes.data_importance import average_over_seeds, el2n_scores, grand_scores
from genlab.probes.distance import distance_from_init
from genlab.probes.gradient_stats import gradient_coherence, gradient_snr
from genlab.probes.per_example import per_example_stats

RTOL = 1e-8


class Scale(nn.Module):
    """Elementwise learned scale: a parameterized layer the fast path does not know (fallback)."""

    def __init__(self, d: int):
        super().__init__()
        self.s = nn.Parameter(torch.linspace(0.5, 1.5, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s


class SeqNet(nn.Module):
    """A Linear layer applied at T = 4 positions (3-D input), then a classifier."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(6, 7)
        self.head = nn.Linear(28, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.emb(x)).flatten(1))


class Norms(nn.Module):
    """BatchNorm2d (eval, running statistics), GroupNorm, InstanceNorm (affine), BatchNorm1d,
    LayerNorm over two axes, RMSNorm and a LayerNorm without bias: every affine fast path."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.fc = nn.Linear(4 * 5 * 5, 6)
        self.bn1 = nn.BatchNorm1d(6)
        self.ln2 = nn.LayerNorm((2, 3))
        self.rms = nn.RMSNorm(3)
        self.ln_nobias = nn.LayerNorm(6, bias=False)
        self.head = nn.Linear(6, 3)
        with torch.no_grad():  # running statistics that are not the identity, affines that are not 1, 0
            for bn in (self.bn, self.bn1):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
            for m in (self.bn, self.gn, self.inorm, self.bn1, self.ln2, self.rms, self.ln_nobias):
                m.weight.uniform_(0.5, 1.5)
                if getattr(m, "bias", None) is not None:
                    m.bias.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inorm(torch.tanh(self.gn(self.bn(self.conv(x))))))  # (every affine matters)
        h = torch.tanh(self.bn1(self.fc(h.flatten(1))))
        h = self.rms(self.ln2(h.reshape(-1, 2, 3))).flatten(1)
        return self.head(torch.tanh(self.ln_nobias(h)))


class Tokens(nn.Module):
    """An Embedding with a padding index (tokens repeat within an example), mean pooled."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 4, padding_idx=0)
        self.head = nn.Linear(4, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.emb(tokens)).mean(1))


class Attention(nn.Module):
    """Self-attention (packed in-projection, batch_first), attention with a different key/value
    input (q ≠ k = v: split in-projection) and with kdim/vdim (separate q, k, v weights, time-major)."""

    def __init__(self):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.cross = nn.MultiheadAttention(4, 2, batch_first=True)
        self.kv = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, bias=False)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.self_attn(x, x, x)
        h, _ = self.cross(h, torch.tanh(x), torch.tanh(x))
        t = h.transpose(0, 1)  # (L, N, E)
        h, _ = self.kv(t, t[..., :3], torch.cat([t, t[..., :1]], -1), need_weights=False)
        return self.head(h.mean(0))


class Shared(nn.Module):
    """One Linear layer used twice (weights shared): must go to the fallback."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 5)
        self.b = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(torch.tanh(self.a(x)))))


def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out - y) ** 2).mean()


def make(kind: str):
    """(model, loss_fn, x, y) of one test case, float64, seeded."""
    torch.manual_seed({"mlp": 0, "seq": 1, "conv1d": 2, "conv2d": 3, "fallback": 4, "shared": 5, "norms": 6, "tokens": 7,
                       "attention": 8}[kind])
    n = 9
    if kind == "norms":
        model, x = Norms().eval(), torch.randn(n, 1, 5, 5)
    elif kind == "tokens":
        model, x = Tokens(), torch.randint(0, 5, (n, 6))
        x[0, :] = 2  # one token six times; example 1 all padding but one token
        x[1, 1:] = 0
        return model.double(), ce, x, torch.randint(0, 3, (n,))
    elif kind == "attention":
        model, x = Attention(), torch.randn(n, 3, 4)
    elif kind == "mlp":
        model = nn.Sequential(
            nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 5, bias=False), nn.ReLU(inplace=True), nn.Linear(5, 3)
        )
        x = torch.randn(n, 6)
    elif kind == "seq":
        model = SeqNet()
        x = torch.randn(n, 4, 6)
    elif kind == "conv1d":
        model = nn.Sequential(
            nn.Conv1d(2, 4, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(4, 3, 2, dilation=2, bias=False),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(3 * 4, 3),
        )
        x = torch.randn(n, 2, 11)
    elif kind == "conv2d":
        model = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(3, 2, (2, 3), stride=2, dilation=(1, 1)),
            nn.Flatten(),
            nn.Linear(2 * 3 * 2, 3),
        )
        x = torch.randn(n, 1, 7, 6)
    elif kind == "fallback":
        model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), Scale(8), nn.Tanh(), nn.Linear(8, 2))
        x = torch.randn(n, 6)
        model = model.double()
        return model, mse, x.double(), torch.randn(n, 2, dtype=torch.float64)
    elif kind == "shared":
        model = Shared()
        x = torch.randn(n, 5)
    model = model.double()
    y = torch.randint(0, 3, (n,))
    return model, ce, x.double(), y


def naive(model, loss_fn, x, y) -> torch.Tensor:
    """N×P matrix of per-example gradients by a loop over batches of one."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(x.shape[0]):
        loss = loss_fn(model(x[i : i + 1]), y[i : i + 1])
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    return torch.stack(rows)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    atol = 1e-10 * float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=atol)


KINDS = ["mlp", "seq", "conv1d", "conv2d", "fallback", "shared", "norms", "tokens", "attention"]


@pytest.mark.parametrize("method", ["auto", "gram", "materialize"])
@pytest.mark.parametrize("kind", KINDS)
def test_engine_matches_naive_loop(kind: str, method: str) -> None:
    model, loss_fn, x, y = make(kind)
    G = naive(model, loss_fn, x, y)
    # a small chunk bound forces several chunks in every chunked code path
    st = per_example_stats(model, loss_fn, (x, y), gram=True, second_moment=True, method=method, chunk_elements=50)
    close(st.sq_norms, G.pow(2).sum(1))
    close(st.mean_grad_flat(), G.mean(0))
    close(st.gram, G @ G.T)
    close(torch.cat([s.reshape(-1) for s in st.second_moment.values()]), G.pow(2).mean(0))
    offset = 0
    for name, p in model.named_parameters():
        close(st.param_sq_norms[name], G[:, offset : offset + p.numel()].pow(2).sum(1))
        offset += p.numel()
    if kind == "fallback":
        assert set(st.fallback) == {"2.s"}  # the LayerNorm takes the affine fast path
    elif kind == "shared":
        assert set(st.fallback) == {"a.weight", "a.bias"}
    else:
        assert st.fallback == []
    for p in model.parameters():
        assert p.grad is None  # the model is left untouched


@pytest.mark.parametrize("kind", KINDS)
def test_fallback_everywhere_matches_naive_loop(kind: str) -> None:
    model, loss_fn, x, y = make(kind)
    G = naive(model, loss_fn, x, y)
    names = tuple(n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False)))
    st = per_example_stats(model, loss_fn, (x, y), gram=True, second_moment=True, force_fallback=names, chunk_elements=40)
    assert len(st.fallback) == len(list(model.parameters()))
    close(st.sq_norms, G.pow(2).sum(1))
    close(st.gram, G @ G.T)
    close(torch.cat([s.reshape(-1) for s in st.second_moment.values()]), G.pow(2).mean(0))


def test_several_batches_match_one() -> None:
    model, loss_fn, x, y = make("conv1d")
    G = naive(model, loss_fn, x, y)
    parts = [(x[:4], y[:4]), (x[4:], y[4:])]
    st = per_example_stats(model, loss_fn, parts, second_moment=True)
    close(st.sq_norms, G.pow(2).sum(1))
    close(st.mean_grad_flat(), G.mean(0))
    close(torch.cat([s.reshape(-1) for s in st.second_moment.values()]), G.pow(2).mean(0))
    # a Gram matrix over several batches pools them first (all examples)
    close(per_example_stats(model, loss_fn, parts, gram=True).gram, G @ G.T)


@pytest.mark.parametrize("kind", KINDS)
def test_coherence_snr_grand_match_naive(kind: str) -> None:
    model, loss_fn, x, y = make(kind)
    G = naive(model, loss_fn, x, y)
    m = G.shape[0]
    alpha = float(G.mean(0).pow(2).sum() / G.pow(2).sum(1).mean())
    c = gradient_coherence(model, loss_fn, (x, y))
    assert c.alpha == pytest.approx(alpha, rel=RTOL)
    assert c.m_coherence == pytest.approx(m * alpha, rel=RTOL)
    assert c.alpha_orthogonal == pytest.approx(1 / m)
    close(grand_scores(model, loss_fn, (x, y)), G.norm(dim=1))

    mu = G.mean(0)
    var = G.var(0, unbiased=False)
    snr = gradient_snr(model, loss_fn, (x, y))
    got = torch.cat([s.reshape(-1) for s in snr.per_parameter.values()])
    second = G.pow(2).mean(0)
    # entries whose second moment is at rounding level relative to their layer count as gradient-free
    # (gradient_snr's rule; the key bias of attention, which softmax makes exactly gradient-free)
    layer_max, offset = torch.empty_like(second), 0
    for name, p in model.named_parameters():
        layer_max[offset : offset + p.numel()] = max(
            float(second[o : o + q.numel()].max()) for o, (n2, q) in zip(
                torch.tensor([0] + [q.numel() for q in model.parameters()]).cumsum(0).tolist(), model.named_parameters())
            if n2.rsplit(".", 1)[0] == name.rsplit(".", 1)[0])
        offset += p.numel()
    ok = (var > 1e-12 * second) & (second > (100 * torch.finfo(second.dtype).eps) ** 2 * layer_max)
    close(got[ok], mu[ok].pow(2) / var[ok])
    assert torch.isnan(got[~ok]).all()
    assert snr.overall.pooled_snr == pytest.approx(float(mu.pow(2).sum() / var.sum()), rel=1e-7)
    assert snr.overall.mean_snr == pytest.approx(float((mu[ok].pow(2) / var[ok]).mean()), rel=1e-7)
    offset = 0
    for name, p in model.named_parameters():
        layer = name.rsplit(".", 1)[0]
        assert layer in snr.layers
        offset += p.numel()


def test_coherence_extremes() -> None:
    """Identical per-example gradients: α = 1, m·α = m; orthogonal ones: α = 1/m, m·α = 1."""
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    # loss (w·x − y)²: at w = 0 the gradient is −2·y·x; rows of the identity are orthogonal
    x = torch.eye(4, dtype=torch.float64)
    y = torch.ones(4, 1, dtype=torch.float64)
    c = gradient_coherence(model, mse, (x, y))
    assert c.alpha == pytest.approx(0.25, rel=1e-12) and c.m_coherence == pytest.approx(1.0, rel=1e-12)
    x_same = torch.ones(4, 4, dtype=torch.float64)
    c = gradient_coherence(model, mse, (x_same, y))
    assert c.alpha == pytest.approx(1.0, rel=1e-12) and c.m_coherence == pytest.approx(4.0, rel=1e-12)


def test_el2n_against_direct_formula() -> None:
    model, _, x, y = make("mlp")
    scores = el2n_scores(model, (x, y))
    for i in range(x.shape[0]):
        logits = model(x[i]).detach()
        p = torch.exp(logits - logits.logsumexp(0))
        e = torch.zeros(3, dtype=torch.float64)
        e[y[i]] = 1.0
        assert float(scores[i]) == pytest.approx(math.sqrt(float(((p - e) ** 2).sum())), rel=1e-12)


def test_average_over_seeds() -> None:
    def train(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Linear(3, 2).double()

    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    avg = average_over_seeds(train, [0, 1, 2], lambda m: el2n_scores(m, (x, y)))
    ref = sum(el2n_scores(train(s), (x, y)) for s in [0, 1, 2]) / 3
    close(avg, ref)


def test_distance_from_init() -> None:
    model, loss_fn, x, y = make("conv2d")
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.add_(0.1 * (i + 1))
    d = distance_from_init(model, init)
    per = {}
    for name, p in model.named_parameters():
        layer = name.rsplit(".", 1)[0]
        per[layer] = per.get(layer, 0.0) + float((p.detach() - init[name]).pow(2).sum())
    assert d.total == pytest.approx(math.sqrt(sum(per.values())), rel=1e-12)
    for k, v in per.items():
        assert d.layers[k] == pytest.approx(math.sqrt(v), rel=1e-12)


class Tied(nn.Module):
    """The first layer's weight is used again, transposed, outside its module (tied weights)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(6, 4)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.enc(x))
        return self.head(torch.tanh(nn.functional.linear(h, self.enc.weight.T)))


def test_tied_weights_go_to_the_fallback() -> None:
    torch.manual_seed(6)
    model = Tied().double()
    x = torch.randn(7, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (7,))
    G = naive(model, ce, x, y)
    st = per_example_stats(model, ce, (x, y), gram=True, second_moment=True)
    assert set(st.fallback) == {"enc.weight", "enc.bias"}
    close(st.sq_norms, G.pow(2).sum(1))
    close(st.gram, G @ G.T)


def test_frozen_weight_trainable_bias() -> None:
    model, loss_fn, x, y = make("mlp")
    model[0].weight.requires_grad_(False)
    G = naive(model, loss_fn, x, y)
    st = per_example_stats(model, loss_fn, (x, y), gram=True)
    close(st.sq_norms, G.pow(2).sum(1))
    close(st.gram, G @ G.T)
    assert "0.weight" not in st.param_sq_norms


@pytest.mark.parametrize("name, fallback", [
    ("resnet", set()),  # BatchNorm in eval mode: the affine fast path
    ("encoder", set()),  # LayerNorm and MultiheadAttention (eval: dropout off)
    ("prelnt", set()),
    ("tied", {"emb.weight"}),  # tied to the output layer: the fallback
])
def test_zoo_fast_paths_match_a_loop(name: str, fallback: set) -> None:
    """Zoo models (tests/_model_zoo.py) in eval mode: per-example norms, Gram and second moments
    against a loop over examples (same tolerance), and which parameters fall back."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _model_zoo import case

    c = case(name, n=5)
    model = c.model.eval()
    x, y = c.data
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(c.n):
        loss = c.loss_fn(model(x[i : i + 1]), y[i : i + 1])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, gs)]))
    G = torch.stack(rows)
    st = per_example_stats(model, c.loss_fn, (x, y), gram=True, second_moment=True, chunk_elements=200)
    assert set(st.fallback) == fallback
    close(st.sq_norms, G.pow(2).sum(1))
    close(st.gram, G @ G.T)
    close(torch.cat([s.reshape(-1) for s in st.second_moment.values()]), G.pow(2).mean(0))


def test_snr_pooled_values_without_the_per_parameter_map() -> None:
    """The pooled SNR is there at once; the per-parameter map, means and medians are formed when
    first read (and agree with the loop)."""
    model, loss_fn, x, y = make("mlp")
    G = naive(model, loss_fn, x, y)
    snr = gradient_snr(model, loss_fn, (x, y))
    mu, var = G.mean(0), G.var(0, unbiased=False)
    assert snr.overall.pooled_snr == pytest.approx(float(mu.pow(2).sum() / var.sum()), rel=1e-7)
    assert "per_parameter" not in snr.__dict__ and "median_snr" not in snr.overall.__dict__
    ok = var > 1e-12 * G.pow(2).mean(0)
    assert snr.overall.median_snr == pytest.approx(float((mu[ok].pow(2) / var[ok]).median()), rel=1e-7)
    assert "per_parameter" in snr.__dict__


def test_attention_tap_is_removed_and_thread_safe() -> None:
    """The F.linear tap of the attention fast path is gone after the call, also when two threads
    run the probe at once: on copies of the model, each thread's results equal a single-threaded
    call's; on one shared model the module is left as it was (its values are not checked: the
    threads' hooks see both passes and ``functional_call`` swaps the shared module's tensors, so
    concurrent calls on one model are not supported)."""
    import copy
    import threading

    model, loss_fn, x, y = make("attention")
    ref = per_example_stats(model, loss_fn, (x, y), second_moment=True)
    assert nn.functional.linear is torch._C._nn.linear
    for shared in (False, True):
        out: list = [None, None]
        models = [model, model] if shared else [copy.deepcopy(model), copy.deepcopy(model)]

        def work(k: int) -> None:
            out[k] = per_example_stats(models[k], loss_fn, (x, y), second_moment=True)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert nn.functional.linear is torch._C._nn.linear
        for m in models:
            assert not m.self_attn._forward_hooks and not m.self_attn._forward_pre_hooks
        if not shared:
            for st in out:
                close(st.sq_norms, ref.sq_norms)
                assert st.fallback == []
