"""The Monitor's TensorBoard writer: every recorded scalar, read back from the event file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genlab.errors import InputError
from genlab.monitor import Monitor
from genlab.store import Store


def _loop(monitor, model, opt, steps=6):
    torch.manual_seed(1)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        monitor.step((x, y), loss=loss)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))


def test_every_recorded_scalar_is_in_the_event_file(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (optional extra genlab[tensorboard])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = Monitor(model, F.cross_entropy, opt, probes=["economy", "curvature"], every={"sharpness": 2, "trace": 3},
                  tensorboard=tmp_path / "tb")
    _loop(mon, model, opt)
    mon.close()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags == set(mon.history)  # sharpness, threshold, threshold_ratio, trace, trace_se, loss, ...
    for tag, hist in mon.history.items():
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [t for t, _ in hist]
        # event files hold float32: agreement to float32 rounding (relative 2^-23 ≈ 1.2e-7)
        np.testing.assert_allclose([e.value for e in events], [v for _, v in hist], rtol=2e-7, atol=0)


def test_bad_tensorboard_dir_is_one_error_and_nothing_written(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    model = _model()
    with pytest.raises(InputError, match="^tensorboard: .* is a file"):
        Monitor(model, F.cross_entropy, probes="economy", tensorboard=f, store=tmp_path / "home")
    assert not (tmp_path / "home" / "genlab.sqlite").exists() or Store(tmp_path / "home").runs() == []


def test_missing_tensorboard_package_is_named(tmp_path, monkeypatch):
    import genlab.integrations.tensorboard as tb

    monkeypatch.setattr(tb, "tensorboard_available", lambda: False)
    with pytest.raises(InputError, match=r"genlab\[tensorboard\]"):
        Monitor(_model(), F.cross_entropy, probes="economy", tensorboard=tmp_path / "tb")
    assert not (tmp_path / "tb").exists()
