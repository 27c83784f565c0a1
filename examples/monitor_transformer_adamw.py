"""A tiny transformer trained with AdamW in a user's own loop, with genlab's Monitor (the lines
marked ``# monitor``). For Adam the stability threshold is on the preconditioned sharpness
λ_max(P⁻¹H), P from Adam's second-moment state (with ε): (2+2β₁)/((1−β₁)η) = 38/η for β₁ = 0.9
(Cohen et al. 2022, "Adaptive gradient methods at the edge of stability", arXiv 2207.14484).
The Monitor reads η and β₁ from the optimizer at each measurement and records the ratio.
(``python examples/monitor_transformer_adamw.py HOME``)
"""

import sys
import tempfile

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import genlab  # monitor

torch.manual_seed(0)
tokens = torch.randint(0, 8, (512, 10))  # sequences of 10 tokens from a vocabulary of 8
labels = (tokens[:, 0] == tokens[:, -1]).long() + 2 * (tokens[:, :5].sum(1) > 17).long()  # 4 classes


class TinyTransformer(nn.Module):
    def __init__(self, vocab=8, length=10, width=16, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(0.1 * torch.randn(length, width))
        self.block = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.block(self.embed(x) + self.position).mean(1))


model = TinyTransformer()
loss_fn = nn.CrossEntropyLoss()
lr = 3e-3
opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=0.01)
loader = DataLoader(TensorDataset(tokens, labels), batch_size=64, shuffle=True)
home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()

monitor = genlab.Monitor(model, loss_fn, opt, probes="curvature", every=8, store=home, name="tiny-transformer")  # monitor
for epoch in range(5):
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        monitor.step((xb, yb), loss=loss)  # monitor
monitor.close()  # monitor
page = monitor.report()  # monitor

# -- what the Monitor recorded (printing only; not part of the loop)
(t, lam), (_, thr) = monitor.history["preconditioned_sharpness"][-1], monitor.history["threshold"][-1]
print(f"step {t}: λ_max(P⁻¹H) = {lam:.4g}, threshold 38/η = {thr:.4g} (η = {lr:g}), ratio {lam / thr:.3g}")
print(f"loss {monitor.history['loss'][-1][1]:.4g}; trace {monitor.history['trace'][-1][1]:.4g} ± {monitor.history['trace_se'][-1][1]:.2g}")
print(f"dashboard: {page}")
