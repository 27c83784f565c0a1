"""genlab: measure, reproduce and check the phenomena of generalization theory.

The layers (see the README's design picture): ``theory`` (closed forms, numpy/scipy only),
``probes`` (measurements on any ``torch.nn.Module``), ``data`` and ``models``, ``train``
(Trainer and measurement hooks), ``experiments`` (one module per phenomenon), ``store``
(SQLite run store), ``report`` (figures and one HTML page) and ``cli``.
"""

__version__ = "0.1.0"
