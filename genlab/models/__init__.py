"""Small models used by the experiments."""

from genlab.models.relu1d import TwoLayerReLU1D

__all__ = ["TwoLayerReLU1D"]
