"""Generators of issue 21: the stated structure holds on the generated tensors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genlab.data.feature_noise import feature_noise
from genlab.data.groups import cyclic_product, group_task, make_group, symmetric_group
from genlab.data.xord import XORD_PATTERNS, xord_distribution, xord_sample
from genlab.errors import InputError


def test_feature_noise_structure():
    n, rho = 4000, 0.7
    d = feature_noise(n, patches=4, dim=12, weak_norm=0.3, strong_norm=2.0, strong_fraction=rho, noise_std=0.5, seed=3)
    assert d.x.shape == (n, 4, 12)
    # weak feature y·v in every example, exactly
    assert torch.equal(d.x[:, 0], d.y[:, None] * d.weak)
    assert math.isclose(float(d.weak.norm()), 0.3, rel_tol=1e-6) and math.isclose(float(d.strong_feature.norm()), 2.0, rel_tol=1e-6)
    assert float(d.weak @ d.strong_feature) == 0.0
    # strong feature exactly where flagged; its frequency within 4 binomial standard deviations of ρ
    assert torch.equal(d.x[d.strong, 1], d.y[d.strong, None] * d.strong_feature)
    sd = math.sqrt(rho * (1 - rho) / n)
    assert abs(float(d.strong.double().mean()) - rho) < 4 * sd
    # noise patches: orthogonal to both features, per-coordinate std near σ (relative error of a
    # sample std over ~N values is ≈ 1/sqrt(2N); 5 such standard errors allowed)
    noise = torch.cat([d.x[~d.strong, 1], d.x[:, 2:].reshape(-1, 12)])
    assert torch.all(noise[:, :2] == 0)
    vals = noise[:, 2:].reshape(-1)
    assert abs(float(vals.std()) / 0.5 - 1) < 5 / math.sqrt(2 * vals.numel())
    # labels balanced within 4 standard deviations
    assert abs(float((d.y > 0).double().mean()) - 0.5) < 4 * 0.5 / math.sqrt(n)
    # weak-only test inputs: no strong feature anywhere
    t = feature_noise(100, strong_fraction=0.0, seed=1)
    assert not t.strong.any() and torch.all(t.x[:, 1:, :2] == 0)


def test_feature_noise_bad_input():
    with pytest.raises(InputError, match="strong_fraction"):
        feature_noise(10, strong_fraction=1.5)
    with pytest.raises(InputError, match="patches"):
        feature_noise(10, patches=1)


def test_xord_labels_and_sampling():
    x, y, idx = xord_sample(500, d=3, seed=0)
    assert x.shape == (500, 3, 2)
    assert torch.equal(x, XORD_PATTERNS[idx])
    # label +1 iff some patch has x₁·x₂ = +1 (a positive pattern): checked on the raw signs
    has_pos = ((x[..., 0] * x[..., 1]) > 0).any(1)
    assert torch.equal(y > 0, has_pos)
    assert abs(float((y > 0).double().mean()) - 0.5) < 4 * 0.5 / math.sqrt(500)


def test_xord_distribution_enumerates_the_support():
    d = 3
    x, y, p = xord_distribution(d)
    assert x.shape == (4**d, d, 2) and math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    # brute force over all sign vectors of length 2d
    got = {tuple(row.reshape(-1).tolist()): lab for row, lab in zip(x, y.tolist())}
    for signs in itertools.product((-1.0, 1.0), repeat=2 * d):
        lab = 1.0 if any(signs[2 * i] == signs[2 * i + 1] for i in range(d)) else -1.0
        assert got[signs] == lab
    assert math.isclose(float(p[y > 0].sum()), 0.5) and int((y < 0).sum()) == 2**d


def _is_group(table: np.ndarray) -> bool:
    M = table.shape[0]
    assoc = all(table[table[a, b], c] == table[a, table[b, c]] for a in range(M) for b in range(M) for c in range(M))
    ids = [e for e in range(M) if all(table[e, a] == a and table[a, e] == a for a in range(M))]
    inverses = bool(ids) and all(any(table[a, b] == ids[0] for b in range(M)) for a in range(M))
    latin = all(sorted(table[a]) == list(range(M)) for a in range(M))
    return assoc and inverses and latin


def test_groups_are_groups():
    for g in (cyclic_product(7), cyclic_product(2, 3), cyclic_product(2, 2, 3), symmetric_group(3)):
        assert _is_group(g.table), g.name
    s3 = symmetric_group(3)
    assert s3.order == 6 and not np.array_equal(s3.table, s3.table.T)  # non-abelian
    z = cyclic_product(2, 3)
    assert np.array_equal(z.table, z.table.T)
    # Z_2 × Z_3 is cyclic (≅ Z_6): some element has order 6
    def order(a):
        k, x = 1, a
        while x != 0:
            x, k = z.table[x, a], k + 1
        return k
    assert max(order(a) for a in range(6)) == 6
    # modular addition: a + b mod p by hand
    p = 5
    t = cyclic_product(p).table
    assert all(t[a, b] == (a + b) % p for a in range(p) for b in range(p))


def test_group_task_split_and_labels():
    task = group_task(make_group("cyclic", [3, 4]), train_fraction=0.4, seed=2)
    M = 12
    assert len(task.train) + len(task.test) == M * M
    assert len(set(task.train.tolist()) & set(task.test.tolist())) == 0
    a, b = task.pairs[:, 0].numpy(), task.pairs[:, 1].numpy()
    ca, cb = np.unravel_index(a, (3, 4)), np.unravel_index(b, (3, 4))
    want = np.ravel_multi_index(((ca[0] + cb[0]) % 3, (ca[1] + cb[1]) % 4), (3, 4))
    assert np.array_equal(task.labels.numpy(), want)
    assert task.onehot().shape == (M * M, 2, M)
    with pytest.raises(InputError, match="kind"):
        make_group("dihedral", 4)
