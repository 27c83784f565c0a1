"""The probes on your own model, inside your own plain training loop (the README's example).

Runs in a few seconds on a CPU: a small CNN on random 8×8 images, full-batch SGD; every 50
steps the sharpness λ_max (Lanczos on Hessian-vector products) against the stability
threshold 2/η, and the m-coherence of per-example gradients.
"""
import torch
from torch import nn
from genlab.probes import gradient_coherence, hessian_eigenvalues

torch.manual_seed(0)
x, y = torch.randn(256, 1, 8, 8), torch.randint(0, 3, (256,))  # your data
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))  # your model
loss_fn, lr = nn.CrossEntropyLoss(), 0.1
opt = torch.optim.SGD(model.parameters(), lr=lr)
for step in range(101):
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
    if step % 50 == 0:  # probes never modify the model, its buffers or its .grad
        sharpness = hessian_eigenvalues(model, loss_fn, (x, y)).eigenvalues[0]
        coherence = gradient_coherence(model, loss_fn, (x[:64], y[:64])).m_coherence
        print(f"step {step}: λ_max = {sharpness:.3f} (2/η = {2 / lr:g}), m-coherence = {coherence:.2f}")
