"""The Monitor on a CUDA device gives the CPU's numbers (run where CUDA is present; skipped here)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlab.monitor import Monitor

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is False)")]


def _history(device: str, opt_name: str) -> dict[str, list[tuple[int, float]]]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.BatchNorm1d(10), torch.nn.Tanh(),
                                torch.nn.Linear(10, 3)).double().to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 6, generator=g, dtype=torch.float64).to(device)
    y = torch.randint(0, 3, (64,), generator=g).to(device)
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "sgd"
           else torch.optim.AdamW(model.parameters(), lr=1e-2))
    mon = Monitor(model, F.cross_entropy, opt, probes=["economy", "curvature"], every=3, per_layer=True)
    for i in range(9):
        xb, yb = x[(i % 4) * 16:(i % 4 + 1) * 16], y[(i % 4) * 16:(i % 4 + 1) * 16]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        mon.step((xb, yb), loss=loss)
    for p in model.parameters():  # everything stayed on the model's device
        assert p.device.type == torch.device(device).type
    mon.close()
    return mon.history


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_monitor_numbers_on_gpu_equal_cpu(opt_name):
    cpu, gpu = _history("cpu", opt_name), _history("cuda", opt_name)
    assert set(cpu) == set(gpu)
    for name in cpu:
        assert [t for t, _ in gpu[name]] == [t for t, _ in cpu[name]], name
        # float64 on both devices; kernels sum in other orders (~1e-15 relative per step, grown over
        # 9 training steps), and Lanczos stops at a relative residual of 1e-6: agreement to 1e-6
        assert [v for _, v in gpu[name]] == pytest.approx([v for _, v in cpu[name]], rel=1e-6, abs=1e-9), name
