"""Imported once by the local executor's fork server, so every worker starts with torch, the
experiment registry and matplotlib (Agg) already loaded instead of importing them per worker."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot  # noqa: E402,F401
import torch  # noqa: E402,F401

from genlab.experiments import registry  # noqa: E402

registry()


# torch.func imports much of torch on first use (several seconds): do it once, here.
torch.func.hessian(lambda t: (t**3).sum())(torch.ones(2, dtype=torch.float64))
