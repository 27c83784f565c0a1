"""Datasets, generated locally or shipped inside a package (never downloaded)."""

from genlab.data.chebyshev import chebyshev_regression
from genlab.data.classification import (
    ClassificationData,
    corrupt_labels,
    digits,
    gaussian_clusters,
    mnist1d,
)
from genlab.data.synthetic import GROUND_TRUTHS, univariate_regression

__all__ = [
    "chebyshev_regression",
    "GROUND_TRUTHS",
    "univariate_regression",
    "ClassificationData",
    "mnist1d",
    "digits",
    "gaussian_clusters",
    "corrupt_labels",
]
