"""The information experiments end to end on tiny configs: they run, results are JSON-able, every
verdict is computed (kinds as declared), figures render; and the shared task is the one described."""

import json

import matplotlib

matplotlib.use("Agg")
import numpy as np

from genlab.experiments import get_experiment, themes
from genlab.experiments.information._szt import compression, icosahedron, szt_net, szt_task
from genlab.recorder import MemoryRecorder


def run(name, **overrides):
    exp = get_experiment(name)
    config = exp.Config(**overrides)
    result = exp.run(config, MemoryRecorder())
    json.dumps(result)
    verdicts = exp.checks(config, result)
    figs = exp.figures(config, result)
    assert figs
    for fig in figs.values():
        fig.canvas.draw()
        matplotlib.pyplot.close(fig)
    return result, verdicts


def test_szt_task_and_network():
    x, y = szt_task()
    assert x.shape == (4096, 12) and len(np.unique(x, axis=0)) == 4096
    assert abs(y.mean() - 0.5) < 0.05
    v = icosahedron()  # 12 unit vertices, each with 5 nearest neighbours at the same distance
    d = np.linalg.norm(v[:, None] - v[None], axis=-1)
    assert np.allclose(np.linalg.norm(v, axis=1), 1) and all(np.sum(np.isclose(row, np.sort(row)[1])) == 5 for row in d)
    net = szt_net("tanh", 0)
    assert [m.out_features for m in net if hasattr(m, "out_features")] == [10, 7, 5, 4, 3, 2]


def test_compression_measure():
    ixt = np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 4.5], [1.5, 4.5]])
    c, k = compression(ixt, np.array([0.5, 0.96, 0.99, 1.0]), 0.95, 0.5)
    assert k == 1 and np.allclose(c, [3.0 - 1.75, 4.0 - 4.5])
    c, k = compression(ixt, np.array([0.5, 0.6, 0.7, 0.8]), 0.95, 0.5)
    assert k == -1 and np.all(np.isnan(c))


def test_information_plane_runs():
    result, verdicts = run("information-plane", steps=60, records=4, n_train=500, bins=10, fit_accuracy=0.6)
    assert {v.kind for v in verdicts} <= {"claim", "precondition", "finding"}
    assert sum(v.kind == "precondition" for v in verdicts) == 2
    assert len(result["tanh"]["ixt"]) == 4 and len(result["tanh"]["ixt"][0]) == 5
    # I(X;T) of the first tanh layer (10 units, 10 bins) can never exceed log2(4096) = 12 bits
    assert max(max(r) for r in result["tanh"]["ixt"]) <= 12 + 1e-9
