"""Datasets, generated locally (never downloaded)."""

from genlab.data.synthetic import GROUND_TRUTHS, univariate_regression

__all__ = ["GROUND_TRUTHS", "univariate_regression"]
