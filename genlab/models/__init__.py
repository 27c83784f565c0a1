"""Small models used by the experiments."""

from genlab.models.centered import Centered
from genlab.models.mlp import mlp
from genlab.models.ntk_mlp import NTKMLP
from genlab.models.relu1d import TwoLayerReLU1D
from genlab.models.scalar import ScalarNetwork
from genlab.models.shallow import ShallowReLU

__all__ = ["TwoLayerReLU1D", "ScalarNetwork", "mlp", "NTKMLP", "Centered", "ShallowReLU"]
