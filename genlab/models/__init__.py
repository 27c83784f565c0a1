"""Small models used by the experiments."""

from genlab.models.centered import Centered
from genlab.models.init import aligned_low_rank_weight, effective_rank, low_rank_weight, task_directions
from genlab.models.mlp import mlp
from genlab.models.ntk_mlp import NTKMLP
from genlab.models.relu1d import TwoLayerReLU1D
from genlab.models.scalar import ScalarNetwork
from genlab.models.shallow import ShallowReLU

__all__ = ["TwoLayerReLU1D", "ScalarNetwork", "mlp", "NTKMLP", "Centered", "ShallowReLU",
           "low_rank_weight", "aligned_low_rank_weight", "task_directions", "effective_rank"]
