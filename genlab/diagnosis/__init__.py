"""``genlab.diagnose``: genlab's probes once on a trained model, into the store and the report."""

from genlab.diagnosis.core import Diagnosis, diagnose, findings, output_margins

__all__ = ["Diagnosis", "diagnose", "findings", "output_margins"]
