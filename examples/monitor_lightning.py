"""genlab's Monitor in a Lightning training, as a callback (``pip install 'genlab[lightning]'``):
one added line, ``callbacks=[MonitorCallback(...)]``. The callback builds the Monitor on the
LightningModule and the trainer's optimizer, steps it after every optimizer step with the batch
and the loss ``training_step`` returned, and closes the run when fitting ends.
(``python examples/monitor_lightning.py HOME``)
"""

import sys
import tempfile

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from genlab.integrations.lightning_callback import MonitorCallback  # monitor


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


torch.manual_seed(0)
x = torch.randn(512, 10)
y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
# --8<-- [start:callback]
callback = MonitorCallback(F.cross_entropy, probes=["economy", "curvature"], every=8, store=home, name="lightning")  # monitor
trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])  # monitor (callbacks=)
trainer.fit(Classifier(), DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True))
# --8<-- [end:callback]

# -- what the Monitor recorded (printing only; not part of the loop)
history = callback.monitor.history
print(f"sharpness {history['sharpness'][-1][1]:.4g} vs threshold 2/η = {history['threshold'][-1][1]:.4g}")
for v in callback.verdicts:
    print(f"{v.claim.split(':')[0]}: {v.measured}")
print(f"run {callback.monitor.run_id} in {home}")
