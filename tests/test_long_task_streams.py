"""long-task-streams: the weighted pair sampler against its expected class frequencies, and a tiny run."""

import itertools

import numpy as np

from genlab.experiments import get_experiment
from genlab.experiments.continual.long_task_streams import pair_order
from genlab.recorder import MemoryRecorder


def test_pair_order_frequencies_follow_weights():
    # classes 0..3, weights (1, 1, 1, 0): class 3 never appears; the three pairs of 0..2 equally often
    pairs = list(itertools.combinations(range(4), 2))
    rng = np.random.default_rng(0)
    order = pair_order(np.array([1.0, 1.0, 1.0, 0.0]), 6000, rng, pairs)
    counts = np.bincount(order, minlength=len(pairs))
    used = [pairs.index(p) for p in [(0, 1), (0, 2), (1, 2)]]
    assert counts.sum() == counts[used].sum()
    # each of the three has probability 1/3: binomial SE ≈ 0.006, allow 4 SE
    np.testing.assert_allclose(counts[used] / 6000, 1 / 3, atol=0.025)


def test_tiny_run_gives_verdicts():
    exp = get_experiment("long-task-streams")
    cfg = exp.Config(stream_length=10, rare_weights=[0.2, 1.0], seeds=2, steps_per_task=3, width=8)
    res = exp.run(cfg, MemoryRecorder())
    verdicts = exp.checks(cfg, res)
    assert {v.kind for v in verdicts} == {"precondition", "claim", "finding"}
    assert len(res["runs"][0]["seeds"][0]["all"]) == 10
    assert "long_task_streams.png" in exp.figures(cfg, res)


def test_bad_rare_weights_rejected():
    import pytest
    from pydantic import ValidationError

    exp = get_experiment("long-task-streams")
    with pytest.raises(ValidationError, match="rare_weights"):
        exp.Config(rare_weights=[0.0, 1.0])
    with pytest.raises(ValidationError, match="rare_weights"):
        exp.Config(rare_weights=[1.0, 1.0])
