"""The Lightning callback: a tiny LightningModule trained on CPU records the same Monitor series as
the same training written as a plain PyTorch loop with the Monitor, and its run is in the store."""

from __future__ import annotations

import pytest

pytest.importorskip("lightning", reason="Lightning not installed (optional extra genlab[lightning])")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from genlab.integrations.lightning_callback import MonitorCallback  # noqa: E402
from genlab.monitor import Monitor  # noqa: E402
from genlab.store import Store  # noqa: E402

LR, STEPS = 0.2, 12


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _loader():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)


def test_callback_records_what_the_plain_loop_records(tmp_path):
    cb = MonitorCallback(F.cross_entropy, probes=["economy", "curvature"], every=4, store=tmp_path, name="pl")
    trainer = pl.Trainer(callbacks=[cb], accelerator="cpu", devices=1, max_steps=STEPS, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), _loader())

    model = Tiny()  # the same training as a plain loop
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    mon = Monitor(model, F.cross_entropy, opt, probes=["economy", "curvature"], every=4)
    batches = [b for _ in range(2) for b in _loader()]  # two epochs of 6 batches
    for x, y in batches[:STEPS]:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        mon.step((x, y), loss=loss)

    got = cb.monitor.history
    assert set(got) == set(mon.history) and "sharpness" in got and "threshold" in got
    for name, series in mon.history.items():
        assert [t for t, _ in got[name]] == [t for t, _ in series] == [4, 8, 12]
        # Lightning's automatic optimization runs zero_grad, forward, backward, step as the loop does,
        # on the same batches from the same init: the same floats, bit for bit
        assert [v for _, v in got[name]] == [v for _, v in series], name
    assert got["threshold"][0][1] == pytest.approx(2 * (1 + 0.9) / LR)  # heavy ball: 2(1+β)/η
    with Store(tmp_path) as st:
        (run,) = st.runs()
        assert run["experiment"] == "monitor:pl" and run["status"] == "finished"
        assert run["config"]["optimizer"] == "SGD"
        assert len(st.checks(run["id"])) == len(cb.verdicts) == 2
