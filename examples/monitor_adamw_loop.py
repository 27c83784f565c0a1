"""A user's own AdamW + DataLoader loop with genlab's Monitor: the lines marked ``# monitor`` are
all that is added. It records loss, the preconditioned sharpness λ_max(P⁻¹H) against Adam's
threshold 38/η, the Hessian trace with its standard error, and the edge-of-stability /
progressive-sharpening findings into the store, and writes the HTML dashboard
(``python examples/monitor_adamw_loop.py HOME``; then ``genlab runs --home HOME``).
"""

import sys
import tempfile

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(512, 10)
y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()

# --8<-- [start:loop]
import genlab  # monitor  # noqa: E402
monitor = genlab.Monitor(model, F.cross_entropy, opt, probes="curvature", every=8, store=home, name="adamw")  # monitor
for epoch in range(3):
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        monitor.step((xb, yb), loss=loss)  # monitor
verdicts = monitor.close()  # monitor
page = monitor.report()  # monitor
# --8<-- [end:loop]

# -- what the Monitor recorded (printing only; not part of the loop)
for name in ("preconditioned_sharpness", "threshold", "trace", "trace_se"):
    print(f"{name}: {monitor.history[name][-1][1]:.4g} (step {monitor.history[name][-1][0]})")
for v in verdicts:
    print(f"{v.claim.split(':')[0]}: {v.measured}")
print(f"run {monitor.run_id} in {home}; dashboard: {page}")
