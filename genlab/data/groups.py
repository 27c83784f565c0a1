"""Group-arithmetic tasks a∘b for grokking (Tian 2025, "Provable scaling laws of feature emergence
from learning dynamics of grokking" (Li₂), arXiv 2509.21519, §5: modular addition Z_M, products of
cyclic groups Z_{m₁}×…×Z_{m_k} and non-abelian groups such as the symmetric group S_n).

A group is given by its Cayley table ``table[a, b] = a∘b`` over element indices 0..M−1. For
products of cyclic groups the index of (a₁, …, a_k) is ``numpy.ravel_multi_index`` over
``shape = (m₁, …, m_k)``, so a per-element vector reshaped to ``shape`` is a function on the group
whose n-dimensional DFT is its Fourier transform (used by the Fourier-concentration probe).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from genlab.errors import InputError


@dataclass(frozen=True)
class Group:
    """A finite group: its name, Cayley table (M, M) int64 and, when abelian, ``shape`` (the
    cyclic factors; None for a non-abelian group)."""

    name: str
    table: np.ndarray
    shape: tuple[int, ...] | None

    @property
    def order(self) -> int:
        return int(self.table.shape[0])


def cyclic_product(*moduli: int) -> Group:
    """Z_{m₁}×…×Z_{m_k} under componentwise addition (one modulus: modular addition mod m)."""
    if not moduli or any(int(m) < 2 for m in moduli):
        raise InputError(f"moduli must be one or more integers >= 2, got {list(moduli)}")
    shape = tuple(int(m) for m in moduli)
    coords = np.array(np.unravel_index(np.arange(int(np.prod(shape))), shape))  # (k, M)
    s = (coords[:, :, None] + coords[:, None, :]) % np.array(shape)[:, None, None]
    table = np.ravel_multi_index(tuple(s), shape).astype(np.int64)
    return Group("Z_" + "xZ_".join(map(str, shape)), table, shape)


def symmetric_group(n: int) -> Group:
    """S_n (permutations of n items, composition (a∘b)(i) = a(b(i))), non-abelian for n ≥ 3."""
    if not 2 <= n <= 5:
        raise InputError(f"n of the symmetric group must be in 2..5, got {n}")
    perms = list(itertools.permutations(range(n)))
    index = {p: i for i, p in enumerate(perms)}
    table = np.array([[index[tuple(a[b[i]] for i in range(n))] for b in perms] for a in perms], dtype=np.int64)
    return Group(f"S_{n}", table, None)


GROUPS = {"cyclic": cyclic_product, "symmetric": symmetric_group}


def make_group(kind: str, size: list[int] | int) -> Group:
    """``kind`` "cyclic" with ``size`` a modulus or a list of moduli, or "symmetric" with ``size`` = n."""
    if kind == "cyclic":
        return cyclic_product(*(size if isinstance(size, (list, tuple)) else [size]))
    if kind == "symmetric":
        return symmetric_group(int(size if not isinstance(size, (list, tuple)) else size[0]))
    raise InputError(f"group kind must be one of {sorted(GROUPS)}, got {kind!r}")


@dataclass(frozen=True)
class GroupTask:
    """All M² pairs (a, b) with labels a∘b, split into train and test index sets."""

    group: Group
    pairs: torch.Tensor  # (M², 2) int64
    labels: torch.Tensor  # (M²,) int64
    train: torch.Tensor  # indices into pairs
    test: torch.Tensor

    def onehot(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(M², 2, M) one-hot codes of a and b."""
        return torch.nn.functional.one_hot(self.pairs, self.group.order).to(dtype)


def group_task(group: Group, train_fraction: float, seed: int = 0) -> GroupTask:
    """The task a∘b on ``group`` with a random ``train_fraction`` of the M² pairs for training."""
    if not 0.0 < train_fraction < 1.0:
        raise InputError(f"train_fraction must be in (0, 1), got {train_fraction}")
    M = group.order
    pairs = torch.cartesian_prod(torch.arange(M), torch.arange(M))
    labels = torch.as_tensor(group.table[pairs[:, 0].numpy(), pairs[:, 1].numpy()], dtype=torch.int64)
    perm = torch.randperm(M * M, generator=torch.Generator().manual_seed(seed))
    n_train = max(1, int(train_fraction * M * M))
    return GroupTask(group, pairs, labels, perm[:n_train], perm[n_train:])
