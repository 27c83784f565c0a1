"""Training: the Trainer (GD / SGD and variants), step-size schedules, measurement hooks, checkpoints."""

from genlab.train.checkpoint import load_checkpoint, save_checkpoint
from genlab.train.monitor import Measurement
from genlab.train.probe_measurements import probe_measurement, sharpness_measurement
from genlab.train.schedules import constant, cosine, step_decay, warmup
from genlab.train.schedules import linear_decay, refined, refined_weights
from genlab.train.optimizers import OPTIMIZERS, make_optimizer
from genlab.train.stable_step import StableStep, largest_stable_step
from genlab.train.large_batch import Regime, adapt_regime, augmented_batch, shift_scale_noise
from genlab.train.trainer import Trainer, TrainResult
from genlab.train.task_stream import StreamResult, Task, run_stream, task_order
from genlab.train.boosting import BoostResult, GroupedNet, boosted_fit, pseudo_residuals

__all__ = [
    "probe_measurement",
    "sharpness_measurement",
    "Trainer",
    "TrainResult",
    "Measurement",
    "constant",
    "cosine",
    "step_decay",
    "warmup",
    "save_checkpoint",
    "load_checkpoint",
    "Task",
    "StreamResult",
    "run_stream",
    "task_order",
    "linear_decay",
    "refined",
    "refined_weights",
    "OPTIMIZERS",
    "make_optimizer",
    "StableStep",
    "largest_stable_step",
    "Regime",
    "adapt_regime",
    "augmented_batch",
    "shift_scale_noise",
    "BoostResult",
    "GroupedNet",
    "boosted_fit",
    "pseudo_residuals",
]
