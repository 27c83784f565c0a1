"""A user's plain training loop on MNIST-1D (a small CNN with BatchNorm, SGD with momentum and a
DataLoader) with genlab's Monitor: the lines marked ``# monitor`` are all that is added. It records
the loss, gradient norms, coherence and SNR from the economy set and the sharpness
against heavy-ball momentum's threshold 2(1+β)/η and the Hessian trace every 6 steps, into the store,
and writes the HTML dashboard (``python examples/monitor_mnist1d_cnn.py HOME``).
"""

import sys
import tempfile

import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import genlab  # monitor

args = get_dataset_args()
args.num_samples = 1000  # a small MNIST-1D: 800 training signals of length 40, 10 classes
data = make_dataset(args)
x, y = torch.tensor(data["x"], dtype=torch.float32).unsqueeze(1), torch.tensor(data["y"])
torch.manual_seed(0)
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
model = nn.Sequential(
    nn.Conv1d(1, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
    nn.Conv1d(8, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.AdaptiveAvgPool1d(4),
    nn.Flatten(), nn.Linear(64, 10),
)
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()

monitor = genlab.Monitor(model, loss_fn, opt, probes=["economy", "curvature"], every=6, store=home, name="mnist1d-cnn")  # monitor
for epoch in range(6):
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        monitor.step((xb, yb), loss=loss)  # monitor
monitor.close()  # monitor
page = monitor.report()  # monitor

# -- what the Monitor recorded (printing only; not part of the loop)
for name in ("loss", "sharpness", "threshold", "trace", "m_coherence", "snr"):
    t, v = monitor.history[name][-1]
    print(f"{name}: {v:.4g} (step {t})")
print(f"dashboard: {page}")
