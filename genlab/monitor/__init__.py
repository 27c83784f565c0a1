"""The Monitor: genlab's probes, theory thresholds and store on a user's own training loop."""

from genlab.monitor.monitor import PROBE_SETS, Monitor
from genlab.monitor.thresholds import Threshold, optimizer_threshold

__all__ = ["Monitor", "PROBE_SETS", "Threshold", "optimizer_threshold"]
