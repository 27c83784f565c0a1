"""genlab: measure, reproduce and check the phenomena of generalization theory.

The layers (see the README's design picture): ``theory`` (closed forms, numpy/scipy only),
``probes`` (measurements on any ``torch.nn.Module``), ``data`` and ``models``, ``train``
(Trainer and measurement hooks), ``experiments`` (one module per phenomenon), ``store``
(SQLite run store), ``report`` (figures and one HTML page) and ``cli``.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """Lazy top-level exports (importing genlab stays cheap: no torch until used)."""
    if name == "Monitor":
        from genlab.monitor import Monitor

        return Monitor
    if name == "diagnose":
        from genlab.diagnosis import diagnose

        return diagnose
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
