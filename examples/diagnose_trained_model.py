"""Diagnose a trained model once with ``genlab.diagnose``: top-k Hessian spectrum and its density,
trace ± SE, per-layer sharpness, gradient coherence and SNR, the gradient-noise tail index against a
Gaussian control, margins, the hardest examples by EL2N, the distance from initialization; one run
in the store and its report page (``python examples/diagnose_trained_model.py HOME``). From the
command line, on a saved state_dict: ``genlab diagnose weights.pt --model mypkg.models:build
--train mypkg.data:train --test mypkg.data:test --init init.pt``.
"""

import copy
import sys
import tempfile

import torch
from torch import nn

import genlab
from genlab.report.html import write_run_page

torch.manual_seed(0)
x = torch.randn(600, 12)
y = (x[:, :4].sum(1) > 0).long() + (x[:, 4] > 0.8).long()  # 3 classes
train, test = (x[:400], y[:400]), (x[400:], y[400:])
model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
init = copy.deepcopy(model.state_dict())
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step in range(300):  # the user's training
    i = torch.randint(0, 400, (32,))
    opt.zero_grad()
    nn.functional.cross_entropy(model(train[0][i]), train[1][i]).backward()
    opt.step()

home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
# --8<-- [start:diagnose]
d = genlab.diagnose(model, nn.functional.cross_entropy, train, test, init_state=init, store=home, name="mlp", k=5)
# --8<-- [end:diagnose]
print("top eigenvalues:", ", ".join(f"{v:.4g}" for v in d.top_eigenvalues))
print(f"trace {d.scalars['trace']:.4g} ± {d.scalars['trace_se']:.2g}; per layer λ_max:",
      ", ".join(f"{b}: {v:.3g}" for b, v in d.per_layer_sharpness.items()))
s = d.scalars
print(f"tail index α̂ = {s['tail_index']:.3f} [{s['tail_index_low']:.3f}, {s['tail_index_high']:.3f}], "
      f"Gaussian control {s['tail_index_control']:.3f} [{s['tail_index_control_low']:.3f}, {s['tail_index_control_high']:.3f}]")
print(f"train error {d.scalars['margin_train.error']:.3f}, test error {d.scalars['margin_test.error']:.3f}; "
      f"hardest examples {d.hardest}")
print(f"report: {write_run_page(home, d.run_id, f'{home}/diagnose-mlp.html')}")
