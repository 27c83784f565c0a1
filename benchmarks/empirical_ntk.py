"""Benchmark: genlab.probes.kernels.empirical_ntk against a per-output autograd baseline.

Baseline (measured in the same run): the Jacobian built row by row with torch.autograd.grad, one
backward pass per (example, output), then J Jᵀ — what one writes without torch.func. Reports the
time ratio baseline / genlab and the largest relative difference of the kernels, for a scalar-output
and a 10-output MLP, with all Jacobians held at once and with a memory bound forcing chunks of 16 examples
(4 row blocks; column blocks recomputed, so about 2.5× the Jacobian work).
Prints JSON. Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/empirical_ntk.py
"""

from __future__ import annotations

import json
import time

import torch

from genlab.models.ntk_mlp import NTKMLP
from genlab.probes.kernels import empirical_ntk


def baseline_ntk(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    out = model(x).reshape(x.shape[0], -1)
    rows = []
    for a in range(out.shape[0]):
        for k in range(out.shape[1]):
            g = torch.autograd.grad(out[a, k], params, retain_graph=True)
            rows.append(torch.cat([t.reshape(-1) for t in g]))
    j = torch.stack(rows).reshape(out.shape[0], out.shape[1], -1)
    return torch.einsum("akp,bkp->ab", j, j)


def timed(fn, repeat: int = 3) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    x = torch.randn(64, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for c in (1, 10):
        net = NTKMLP(10, 256, 2, d_out=c, sigma_b2=0.1, generator=torch.Generator().manual_seed(1))
        n_params = sum(p.numel() for p in net.parameters())
        t_base, k_base = timed(lambda: baseline_ntk(net, x), repeat=2)
        for label, budget in (("all at once", 2**26), ("chunks of 16 examples", 32 * c * n_params)):
            t_ours, k_ours = timed(lambda: empirical_ntk(net, x, outputs="trace", max_elements=budget))
            rows.append(
                {
                    "outputs": c,
                    "params": n_params,
                    "n": x.shape[0],
                    "mode": label,
                    "genlab_s": round(t_ours, 4),
                    "baseline_s": round(t_base, 4),
                    "speedup": round(t_base / t_ours, 2),
                    "max_rel_diff": float((k_ours - k_base).abs().max() / k_base.abs().max()),
                }
            )
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
