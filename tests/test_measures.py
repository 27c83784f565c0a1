"""Generalization measures (genlab.probes.measures*) against independent references on tiny models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.errors import InputError
from genlab.probes.measures import margins, norm_measures, path_norm
from genlab.probes.measures_alpha import esd, fit_power_law, layer_alphas
from genlab.probes.measures_flatness import bisect_scale, box_ascent, pac_bayes_sigma, perturbation, sharpness_alpha
from genlab.probes.measures_pathways import pathway_distance
from genlab.probes.measures_suite import ALL, all_measures


def _net(seed: int = 0, widths=(5, 4), d_in: int = 3, d_out: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    dims = [d_in, *widths]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], d_out))
    return nn.Sequential(*layers).double()


def _data(n: int = 30, d_in: int = 3, classes: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _trained(seed: int = 0, steps: int = 300, widths=(5, 4), d_in: int = 3):
    net = _net(seed, widths, d_in)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = _data(d_in=d_in)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net, init, x, y


def test_norm_measures_match_hand_computation():
    net, init, x, y = _trained()
    got = norm_measures(net, x, y, init)
    ws = [m.weight.detach().numpy() for m in net if isinstance(m, nn.Linear)]
    w0 = [init[f"{i}.weight"].numpy() for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    fro2 = [sum(v * v for v in w.ravel()) for w in ws]  # python loop
    spec2 = [max(np.linalg.eigvalsh(w.T @ w)) for w in ws]  # eigenvalues of WᵀW, not an SVD
    # margins by a loop over examples
    f = net(x).detach().numpy()
    mg = np.array([f[i, y[i]] - max(f[i, j] for j in range(f.shape[1]) if j != y[i]) for i in range(len(y))])
    assert np.allclose(margins(net, x, y).numpy(), mg)
    gamma = np.quantile(mg, 0.1)  # numpy's linear interpolation = torch.quantile's default
    d = len(ws)
    assert gamma > 0
    ref = {
        "log_prod_fro": math.log(np.prod(fro2)),
        "log_sum_fro": math.log(d * np.prod(fro2) ** (1 / d)),
        "log_prod_spec": math.log(np.prod(spec2)),
        "log_sum_spec": math.log(d * np.prod(spec2) ** (1 / d)),
        "log_fro_over_margin": math.log(np.prod(fro2) / gamma**2),
        "log_spec_over_margin": math.log(np.prod(spec2) / gamma**2),
        "log_spec_orig": math.log(np.prod(spec2) * sum(a / b for a, b in zip(fro2, spec2)) / gamma**2),
        "inverse_margin": 1 / gamma**2,
        "param_norm": sum(float((p.detach() ** 2).sum()) for p in net.parameters()),
        "params": 3 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3,
        "dist_fro": sum(((w - v) ** 2).sum() for w, v in zip(ws, w0)),
        "dist_spec": sum(max(np.linalg.eigvalsh((w - v).T @ (w - v))) for w, v in zip(ws, w0)),
    }
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k  # float64 throughout: rounding only


def test_path_norm_equals_the_sum_over_paths():
    net = _net(3)
    (l1, _, l2, _, l3) = net
    W1, b1, W2, b2, W3, b3 = (t.detach().numpy() for t in (l1.weight, l1.bias, l2.weight, l2.bias, l3.weight, l3.bias))
    total = 0.0
    for o in range(3):  # every path input→h1→h2→output, and the paths starting at a bias
        total += b3[o] ** 2
        for h2 in range(4):
            total += b2[h2] ** 2 * W3[o, h2] ** 2
            for h1 in range(5):
                total += b1[h1] ** 2 * W2[h2, h1] ** 2 * W3[o, h2] ** 2
                for i in range(3):
                    total += W1[h1, i] ** 2 * W2[h2, h1] ** 2 * W3[o, h2] ** 2
    assert path_norm(net, (3,)) == pytest.approx(total, rel=1e-12)
    with pytest.raises(InputError, match="model"):
        path_norm(nn.Sequential(nn.Linear(3, 2), nn.Tanh()), (3,))


def test_perturbation_std_is_sigma_not_sigma_squared():
    # the slip of a public reimplementation: noise of std σ² instead of σ
    w = torch.randn(200_000, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for sigma in (0.3, 0.05):
        u = perturbation([w], sigma, g)[0]
        # the sample std of n Gaussians has relative sd 1/sqrt(2n) = 0.0016: 1% is > 6 sd
        assert float(u.std()) == pytest.approx(sigma, rel=0.01)
    u = perturbation([w], 0.3, g, magnitude_aware=True, eps=1e-3)[0]
    z = u / torch.sqrt(0.09 * w**2 + 1e-6)
    assert float(z.std()) == pytest.approx(1.0, rel=0.01)


def test_bisection_finds_the_crossing_of_a_monotone_drop():
    s, up, _ = bisect_scale(lambda t: t**2, 0.1, 1e-5, 10.0, rtol=0.01)
    assert s <= math.sqrt(0.1) < up and up / s <= 1.01


def test_pac_bayes_sigma_against_an_independent_drop():
    net, _, x, y = _trained()
    r = pac_bayes_sigma(net, x, y, target=0.1, draws=4, seed=5)
    params = [p.detach().clone() for p in net.parameters()]
    acc0 = float((net(x).argmax(-1) == y).double().mean())
    g = torch.Generator().manual_seed(5)
    zs = [[torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params] for _ in range(4)]

    def drop(sigma):  # a second implementation: functional_call on the noisy parameters
        names = [n for n, _ in net.named_parameters()]
        accs = [float((torch.func.functional_call(net, {n: p + sigma * zi for n, p, zi in zip(names, params, z)}, (x,))
                       .argmax(-1) == y).double().mean()) for z in zs]
        return acc0 - np.mean(accs)

    assert r.scale < r.upper <= r.scale * 1.02 + 1e-15
    assert drop(r.scale) <= 0.1 < drop(r.upper)
    assert all(torch.equal(a, b.detach()) for a, b in zip(params, net.parameters()))  # model unchanged


def test_box_ascent_reaches_the_best_corner_of_a_convex_loss():
    # a linear model with squared loss is convex in its parameters: the max over a box is at a corner
    torch.manual_seed(0)
    lin = nn.Linear(3, 1).double()
    x = torch.randn(12, 3, dtype=torch.float64)
    t = torch.randn(12, 1, dtype=torch.float64)
    loss = lambda out, tgt: ((out - tgt) ** 2).mean()
    r = 0.3
    w0 = torch.cat([lin.weight.detach().ravel(), lin.bias.detach()])
    best = -math.inf
    for signs in itertools.product((-1.0, 1.0), repeat=4):
        w = w0 + r * torch.tensor(signs, dtype=torch.float64)
        best = max(best, float(((x @ w[:3] + w[3]).unsqueeze(1) - t).pow(2).mean()))
    found, u = box_ascent(lin, loss, x, t, r, steps=20, restarts=3, seed=0)
    assert found <= best + 1e-12  # a value attained inside the box
    assert found >= best - 1e-9  # sign ascent on a convex quadratic reaches the best corner here
    assert all(float(ui.abs().max()) <= r + 1e-12 for ui in u)


def test_sharpness_alpha_keeps_the_bisection_invariant():
    net, _, x, y = _trained()
    ce = nn.functional.cross_entropy
    r = sharpness_alpha(net, ce, x, y, steps=5, seed=0)
    acc0 = float((net(x).argmax(-1) == y).double().mean())

    def drop(a):
        _, u = box_ascent(net, ce, x, y, a, 5, 1, seed=0)
        names = [n for n, _ in net.named_parameters()]
        moved = {n: p.detach() + ui for (n, p), ui in zip(net.named_parameters(), u)}
        return acc0 - float((torch.func.functional_call(net, moved, (x,)).argmax(-1) == y).double().mean())

    assert drop(r.scale) <= 0.1 < drop(r.upper)


def test_power_law_fit_recovers_a_known_exponent_and_layer_alpha_reads_the_spectrum():
    rng = np.random.default_rng(0)
    alpha, n = 2.5, 3000
    tail = (1 - rng.random(n)) ** (-1 / (alpha - 1))  # Pareto on [1, ∞) with density ∝ λ^{-α}
    bulk = rng.uniform(0.05, 0.9, 1000)  # below λ_min: must be cut off by the KS choice
    fit = fit_power_law(np.concatenate([bulk, tail]))
    # MLE sd ≈ (α − 1)/sqrt(n) = 0.027; 0.12 allows the λ_min choice to move a few points (≈ 4 sd)
    assert fit.alpha == pytest.approx(alpha, abs=0.12)
    assert 0.8 <= fit.xmin <= 1.5
    # a weight matrix whose ESD is exactly that spectrum: W = U diag(sqrt(N λ)) Vᵀ, N = 4000 ≥ M
    lam = np.sort(tail[:400])
    N, M = 500, 400
    U = np.linalg.qr(rng.standard_normal((N, M)))[0]
    V = np.linalg.qr(rng.standard_normal((M, M)))[0]
    W = torch.tensor(U @ np.diag(np.sqrt(N * lam)) @ V.T)
    assert np.allclose(np.sort(esd(W)), lam, rtol=1e-8)
    lin = nn.Linear(M, N, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(W)
    got = layer_alphas(nn.Sequential(lin))["0"]
    assert got.alpha == pytest.approx(fit_power_law(lam).alpha, rel=1e-9)
    assert got.alpha == pytest.approx(alpha, abs=0.35)  # 400 eigenvalues: sd ≈ 0.08, and λ_min chosen


def test_pathway_distance_matches_a_loop_over_pairs():
    net, _, x, y = _trained()
    h1 = net[1](net[0](x)) > 0
    h2 = net[3](net[2](net[1](net[0](x)))) > 0
    pats = torch.cat([h1, h2], 1).numpy()
    per_class = []
    for c in np.unique(y.numpy()):
        idx = np.flatnonzero(y.numpy() == c)
        ds = [np.mean(pats[i] != pats[j]) for i in idx for j in idx if i != j]
        per_class.append(np.mean(ds))
    assert pathway_distance(net, x, y) == pytest.approx(float(np.mean(per_class)), rel=1e-12)


def test_suite_wraps_the_existing_probes_and_leaves_the_model_alone():
    from genlab.probes import gradient_coherence, hessian_eigenvalues

    net, init, x, y = _trained(widths=(8, 8), d_in=8)  # layers with ≥ 6 eigenvalues for α
    before = {k: v.clone() for k, v in net.state_dict().items()}
    m = all_measures(net, x, y, init, draws=2, ascent_steps=3)
    assert set(m) == set(ALL) and len(ALL) >= 15
    assert all(np.isfinite(v) for v in m.values()), m
    ce = nn.functional.cross_entropy
    assert m["coherence"] == pytest.approx(gradient_coherence(net, ce, (x, y)).alpha, rel=1e-9)
    lam = hessian_eigenvalues(net, ce, (x, y), tol=1e-3, max_iter=30).top
    assert m["lambda_max"] == pytest.approx(lam, rel=1e-9)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
