"""Theme: which measure predicts generalization — Jiang et al.'s protocol over a model zoo, WeightWatcher's α,
the impossibility of uniformly tight bounds, and posterior samplers (random interpolators, Bayesian mixtures)."""

TITLE = "Generalization measures and posteriors"
ORDER = 90
