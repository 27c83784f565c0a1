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
from genlab.data.feature_noise import FeatureNoiseData, feature_noise
from genlab.data.groups import Group, GroupTask, cyclic_product, group_task, make_group, symmetric_group
from genlab.data.xord import XORD_PATTERNS, xord_distribution, xord_sample

__all__ = [
    "chebyshev_regression",
    "GROUND_TRUTHS",
    "univariate_regression",
    "ClassificationData",
    "mnist1d",
    "digits",
    "gaussian_clusters",
    "corrupt_labels",
    "FeatureNoiseData",
    "feature_noise",
    "Group",
    "GroupTask",
    "cyclic_product",
    "group_task",
    "make_group",
    "symmetric_group",
    "XORD_PATTERNS",
    "xord_distribution",
    "xord_sample",
]
