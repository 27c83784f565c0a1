"""Classification datasets, all generated locally or shipped inside a package (never downloaded).

- MNIST-1D (Greydanus 2020, "Scaling down deep learning", arXiv 2011.14439): the PyPI package
  ``mnist1d`` generates it deterministically (``make_dataset(get_dataset_args())``, seed 42):
  4000 training and 1000 test signals of length 40, 10 classes.
- scikit-learn's ``load_digits``: 1797 8×8 images shipped with the package, 10 classes.
- Gaussian clusters: C classes in d dimensions, from a seed.
Label corruption (random labels, a fraction of noisy labels) works on any of them, from a seed
(Zhang, Bengio, Hardt, Recht & Vinyals 2017, arXiv 1611.03530).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class ClassificationData:
    """Train and test splits as float tensors ``x`` (N, ...) and int64 labels ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test, self.y_test

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "ClassificationData":
        """The first ``n_train`` / ``n_test`` examples (the splits are already shuffled)."""
        return replace(
            self,
            x=self.x[:n_train],
            y=self.y[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
        )

    def to(self, dtype: torch.dtype) -> "ClassificationData":
        return replace(self, x=self.x.to(dtype), x_test=self.x_test.to(dtype))


def _tensors(x, y, xt, yt, c: int, name: str) -> ClassificationData:
    return ClassificationData(
        torch.as_tensor(np.asarray(x), dtype=torch.float32),
        torch.as_tensor(np.asarray(y), dtype=torch.int64),
        torch.as_tensor(np.asarray(xt), dtype=torch.float32),
        torch.as_tensor(np.asarray(yt), dtype=torch.int64),
        c,
        name,
    )


def mnist1d() -> ClassificationData:
    """MNIST-1D with the package's default arguments (deterministic: its seed is 42)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("MNIST-1D needs the 'mnist1d' package: pip install 'genlab[data]'") from exc
    d = make_dataset(get_dataset_args())
    return _tensors(d["x"], d["y"], d["x_test"], d["y_test"], 10, "mnist1d")


def digits(test_fraction: float = 0.25, seed: int = 0) -> ClassificationData:
    """scikit-learn's 8×8 digits, pixels scaled to [0, 1], flattened to 64 features, split by seed."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover
        raise ImportError("digits needs scikit-learn: pip install 'genlab[data]'") from exc
    bunch = load_digits()
    x = bunch.data.astype(np.float64) / 16.0
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    return _tensors(x[tr], y[tr], x[te], y[te], 10, "digits")


def gaussian_clusters(
    num_classes: int = 4,
    dim: int = 10,
    n_train: int = 400,
    n_test: int = 400,
    separation: float = 3.0,
    seed: int = 0,
) -> ClassificationData:
    """C isotropic unit-variance Gaussian clusters whose means are drawn with norm ``separation``."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((num_classes, dim))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)

    def draw(n: int):
        y = rng.integers(0, num_classes, size=n)
        return means[y] + rng.standard_normal((n, dim)), y

    x, y = draw(n_train)
    xt, yt = draw(n_test)
    return _tensors(x, y, xt, yt, num_classes, f"gaussian-{num_classes}")


def corrupt_labels(data: ClassificationData, fraction: float, seed: int = 0) -> ClassificationData:
    """Replace the training labels of a random ``fraction`` of examples by uniformly random labels
    (``fraction=1``: random labels); the test set is untouched."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    g = torch.Generator().manual_seed(seed)
    n = data.y.shape[0]
    chosen = torch.rand(n, generator=g) < fraction
    random = torch.randint(0, data.num_classes, (n,), generator=g)
    return replace(data, y=torch.where(chosen, random, data.y), name=f"{data.name}-noise{fraction:g}")


DATASETS = {"mnist1d": mnist1d, "digits": digits, "gaussian": gaussian_clusters}
