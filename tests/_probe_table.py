"""The probe × model table: every public probe on every zoo model, in train and eval mode.

Each cell runs the probe on a float64 zoo model and compares it with a reference computed another
way on a deep copy of the model put in the same mode (the model itself is only ever passed to the
probe): a Hessian built row by row by double backward through ``model(x)``, a Gauss-Newton matrix
from the explicit Jacobian, a python loop over examples, explicit per-example Jacobians. A cell is
``match`` (error ≤ tolerance), ``refused`` (the documented one-line :class:`InputError`) or
``MISMATCH``/``CRASH`` (a bug). Random operations in train mode are drawn the way the probes
document it (batch b of a curvature call under ``seeded(seed, b)``, example i of a per-example
call under ``seeded(seed, i)``), so the reference sees the same dropout masks.

Tolerances (float64): dense Hessians 1e-9 relative to the largest entry (rounding of different
summation orders); Lanczos eigenvalues at tol 1e-10: 1e-7 relative (error ≤ tol·|λ|max, plus
rounding); per-example quantities 1e-8 relative (float64 sums in another order); the Hutch++
trace within 5 standard errors of its own estimate (a statistical estimator, seeded); the XDiag
diagonal (40 products) equal to XDiag on the dense Hessian with the same draws (1e-9 of its largest
entry) and 85% of its entries within 3 standard errors of the exact diagonal;
SLQ with as many steps as parameters (≤ 60): its largest node is λ_max to 1e-7.

Run ``python tests/_probe_table.py`` to print the table as markdown.
"""

from __future__ import annotations

import copy
import math
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).parent))
from _model_zoo import NAMES, Case, case  # noqa: E402

from genlab.errors import InputError  # noqa: E402
from genlab import probes as P  # noqa: E402
from genlab.probes._setup import as_args, seeded, take  # noqa: E402
from genlab.probes.trace import operator_diagonal  # noqa: E402
from test_xtrace import Dense  # noqa: E402

SEED = 3


# ---------------------------------------------------------------------------------------------
# references, on a copy of the model in the probe's mode


def _copy(c: Case, mode: str) -> torch.nn.Module:
    m = copy.deepcopy(c.model)
    m.train(mode == "train")
    return m


def _out(c: Case, m: torch.nn.Module, x: Any) -> torch.Tensor:
    out = m(*as_args(x))
    return c.output_fn(out) if c.output_fn else out


def _params(m: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in m.parameters() if p.requires_grad]


def _random(c: Case, mode: str) -> bool:
    return mode == "train" and "dropout" in c.traits


def _full_loss(c: Case, mode: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The mean loss on a copy of the model (dropout masks from (seed, 0)) and the copy's parameters."""
    m = _copy(c, mode)
    ps = _params(m)
    x, y = c.data
    with seeded(SEED, 0):
        return c.loss_fn(_out(c, m, x), y), ps


def ref_hessian(c: Case, mode: str) -> torch.Tensor:
    loss, ps = _full_loss(c, mode)
    gs = torch.autograd.grad(loss, ps, create_graph=True, allow_unused=True)
    g = torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(ps, gs)])
    rows = []
    for i in range(g.numel()):
        if not g[i].requires_grad:
            rows.append(torch.zeros_like(g))
            continue
        r = torch.autograd.grad(g[i], ps, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(ps, r)]))
    return torch.stack(rows).detach()


def ref_ggn(c: Case, mode: str) -> torch.Tensor:
    m = _copy(c, mode)
    ps = _params(m)
    x, y = c.data
    with seeded(SEED, 0):
        out = _out(c, m, x)
    flat = out.reshape(-1)
    rows = []
    for i in range(flat.numel()):
        r = torch.autograd.grad(flat[i], ps, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(ps, r)]))
    J = torch.stack(rows)
    H = torch.func.hessian(lambda o: c.loss_fn(o.reshape(out.shape), y))(flat.detach())
    return (J.T @ H @ J).detach()


def ref_per_example(c: Case, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """N × P per-example gradients and per-example losses by a loop over batches of one."""
    m = _copy(c, mode)
    ps = _params(m)
    x, y = c.data
    rows, losses = [], []
    for i in range(c.n):
        with seeded(SEED, i):
            loss = c.loss_fn(_out(c, m, take(x, i)), y[i : i + 1])
        gs = torch.autograd.grad(loss, ps, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(ps, gs)]))
        losses.append(float(loss.detach()))
    return torch.stack(rows), torch.tensor(losses)


def ref_el2n(c: Case, mode: str) -> torch.Tensor:
    m = _copy(c, mode)
    x, y = c.data
    with torch.no_grad(), seeded(SEED, 0):
        p = torch.softmax(_out(c, m, x), -1)
    return torch.stack([torch.linalg.vector_norm(p[i] - torch.eye(p.shape[1], dtype=p.dtype)[y[i]]) for i in range(c.n)])


def ref_noise(c: Case, mode: str, b: int) -> torch.Tensor:
    m = _copy(c, mode)
    ps = _params(m)
    x, y = c.data
    perm = torch.randperm(c.n, generator=torch.Generator().manual_seed(SEED))
    rows = []
    for k, i in enumerate(range(0, c.n - b + 1, b)):
        idx = perm[i : i + b]
        with seeded(SEED, k):
            loss = c.loss_fn(_out(c, m, take(x, idx)), y[idx])
        gs = torch.autograd.grad(loss, ps, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(ps, gs)]))
    G = torch.stack(rows)
    return G - G.mean(0, keepdim=True)


def ref_ntk(c: Case, mode: str) -> torch.Tensor:
    m = _copy(c, mode)
    ps = _params(m)
    x, _ = c.data
    J = []
    for i in range(c.n):
        with seeded(SEED, i):
            o = _out(c, m, take(x, i)).reshape(-1)
        J.append(torch.stack([
            torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1)
                       for p, t in zip(ps, torch.autograd.grad(o[k], ps, retain_graph=True, allow_unused=True))])
            for k in range(o.numel())
        ]))
    J = torch.stack(J)  # (n, c, P)
    return torch.einsum("akp,bkp->ab", J, J)


# ---------------------------------------------------------------------------------------------
# the cells: (measured error, tolerance) or an InputError


def _rel(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-300))


def _kw(c: Case, mode: str) -> dict:
    return {"mode": mode, "output_fn": c.output_fn}


def _top(H: torch.Tensor) -> float:
    return float(torch.linalg.eigvalsh(0.5 * (H + H.T))[-1])


def cell_hessian_eigenvalues(c, mode):
    r = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, k=2, tol=1e-10, seed=SEED, **_kw(c, mode))
    ev = torch.linalg.eigvalsh(ref_hessian(c, mode)).flip(0)[:2]
    return _rel(r.eigenvalues, ev), 1e-7


def cell_hessian_top_eigenvalue(c, mode):
    top = P.hessian_top_eigenvalue(c.model, c.loss_fn, c.data, tol=1e-10, seed=SEED, **_kw(c, mode))
    return _rel(top, _top(ref_hessian(c, mode))), 1e-7


def cell_ggn_eigenvalues(c, mode):
    r = P.hessian_eigenvalues(c.model, c.loss_fn, c.data, tol=1e-10, curvature="ggn", seed=SEED, **_kw(c, mode))
    return _rel(r.top, _top(ref_ggn(c, mode))), 1e-7


def ref_grad(c: Case, mode: str) -> torch.Tensor:
    """The gradient of the mean loss, drawn like ref_hessian's (dropout masks from (seed, 0))."""
    loss, ps = _full_loss(c, mode)
    gs = torch.autograd.grad(loss, ps, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for p, t in zip(ps, gs)]).detach()


def cell_directional_sharpness(c, mode):
    r = P.directional_sharpness(c.model, c.loss_fn, c.data, seed=SEED, **_kw(c, mode))
    H, g = ref_hessian(c, mode), ref_grad(c, mode)
    return _rel(r.value, float(g @ H @ g) / float(g @ g)), 1e-7


def cell_minibatch_sharpness(c, mode):
    r = P.minibatch_sharpness(c.model, c.loss_fn, c.data, batch_size=c.n, num_batches=1, tol=1e-10, seed=SEED, **_kw(c, mode))
    # with batch_size = N the one minibatch is every example (permuted; seeded draw (seed+0, 0))
    return _rel(r.full_batch, _top(ref_hessian(c, mode))), 1e-7


def cell_hessian_trace(c, mode):
    r = P.hessian_trace(c.model, c.loss_fn, c.data, num_matvecs=30, seed=SEED, **_kw(c, mode))
    exact = float(torch.trace(ref_hessian(c, mode)))
    return abs(r.estimate - exact), 5 * r.stderr + 1e-9 * abs(exact)


def cell_hessian_diagonal(c, mode):
    """Two checks as one ratio (≤ 1 both hold): the probe equals XDiag run on the dense reference
    Hessian with the same random vectors, to 1e-9 of the largest diagonal entry (rounding; measured
    ≤ 2e-15), so its products are this model's Hessian; and at least 85% of the entries lie within
    3 of their standard errors (+ rounding) of the exact diagonal (the rule of tests/test_xtrace.py,
    where the estimator's calibration is tested on dense matrices; measured 95–99% here)."""
    r = P.hessian_diagonal(c.model, c.loss_fn, c.data, num_matvecs=40, seed=SEED, **_kw(c, mode))
    H = ref_hessian(c, mode)
    exact, scale = torch.diagonal(H), float(torch.diagonal(H).abs().max())
    same = operator_diagonal(Dense(0.5 * (H + H.T)), "xdiag", 40, seed=SEED).diagonal
    same_err = float((r.diagonal - same).abs().max()) / (1e-9 * scale)
    outside = float(((r.diagonal - exact).abs() > 3 * r.stderr + 1e-9 * scale).double().mean())
    return max(same_err, outside / 0.15), 1.0


def cell_hessian_spectrum(c, mode):
    H = ref_hessian(c, mode)
    steps = min(H.shape[0], 60)
    r = P.hessian_spectrum(c.model, c.loss_fn, c.data, num_probes=1, lanczos_steps=steps, seed=SEED, **_kw(c, mode))
    top_node = float(r.nodes[0].max())
    return _rel(top_node, _top(H)), 1e-7


def cell_gfs_sharpness(c, mode):
    r = P.gfs_sharpness(c.model, c.loss_fn, c.data, max_steps=3, eig_tol=1e-10, seed=SEED, **_kw(c, mode))
    assert r.budget_hit == "steps" or r.converged
    m = copy.deepcopy(c.model)
    torch.nn.utils.vector_to_parameters(r.theta, _params(m))
    ref = _top(ref_hessian(Case(c.name, m, c.loss_fn, c.data, c.output_fn, c.traits), mode))
    return _rel(r.sharpness, ref), 1e-7


def cell_dense_hessian(c, mode):
    H = P.dense_hessian(c.model, c.loss_fn, c.data, seed=SEED, **_kw(c, mode))
    return _rel(H, ref_hessian(c, mode)), 1e-9


def cell_per_example_stats(c, mode):
    st = P.per_example_stats(c.model, c.loss_fn, c.data, gram=True, second_moment=True, seed=SEED, **_kw(c, mode))
    G, _ = ref_per_example(c, mode)
    sec = torch.cat([s.reshape(-1) for s in st.second_moment.values()])
    err = max(_rel(st.sq_norms, G.pow(2).sum(1)), _rel(st.mean_grad_flat(), G.mean(0)), _rel(st.gram, G @ G.T),
              _rel(sec, G.pow(2).mean(0)))
    return err, 1e-8


def cell_gradient_coherence(c, mode):
    r = P.gradient_coherence(c.model, c.loss_fn, c.data, seed=SEED, **_kw(c, mode))
    G, _ = ref_per_example(c, mode)
    alpha = float(G.mean(0).pow(2).sum() / G.pow(2).sum(1).mean())
    return _rel(r.alpha, alpha), 1e-8


def cell_gradient_snr(c, mode):
    r = P.gradient_snr(c.model, c.loss_fn, c.data, seed=SEED, **_kw(c, mode))
    G, _ = ref_per_example(c, mode)
    got = torch.cat([v.reshape(-1) for v in r.per_parameter.values()])
    mu2, var = G.mean(0).pow(2), G.pow(2).mean(0) - G.mean(0).pow(2)
    ok = ~torch.isnan(got)  # entries the probe reports as signal: compare them to the loop
    return _rel(got[ok], (mu2 / var)[ok]) if ok.any() else 0.0, 1e-6


def cell_grand_scores(c, mode):
    s = P.grand_scores(c.model, c.loss_fn, c.data, seed=SEED, **_kw(c, mode))
    G, _ = ref_per_example(c, mode)
    return _rel(s, G.pow(2).sum(1).sqrt()), 1e-8


def cell_el2n_scores(c, mode):
    s = P.el2n_scores(c.model, c.data, seed=SEED, **_kw(c, mode))
    return _rel(s, ref_el2n(c, mode)), 1e-12


def cell_minibatch_gradient_noise(c, mode):
    z = P.minibatch_gradient_noise(c.model, c.loss_fn, c.data, 2, seed=SEED, **_kw(c, mode))
    return _rel(z, ref_noise(c, mode, 2)), 1e-8


def cell_gradient_noise_tail_index(c, mode):
    a = P.gradient_noise_tail_index(c.model, c.loss_fn, c.data, 2, seed=SEED, **_kw(c, mode))
    return _rel(a, P.tail_index(ref_noise(c, mode, 2))), 1e-6


def cell_empirical_ntk(c, mode):
    K = P.empirical_ntk(c.model, c.data[0], seed=SEED, max_elements=2000, **_kw(c, mode))
    return _rel(K, ref_ntk(c, mode)), 1e-8


CELLS: dict[str, Callable] = {
    name[len("cell_"):]: fn for name, fn in globals().items() if name.startswith("cell_") and callable(fn)
}
MODES = ("eval", "train")


def run_cell(probe: str, model: str, mode: str) -> tuple[str, str]:
    """(status, detail) of one cell: status match | refused | MISMATCH | CRASH."""
    c = case(model)
    try:
        # the references differentiate attention twice too: the math kernel (torch's own API)
        with sdpa_kernel(SDPBackend.MATH):
            err, tol = CELLS[probe](c, mode)
    except InputError as e:
        return "refused", str(e)
    except Exception as e:  # noqa: BLE001 — a crash is what the table reports
        return "CRASH", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    if not (math.isfinite(err) and err <= tol):
        return "MISMATCH", f"error {err:.2e} > tolerance {tol:.1e}"
    return "match", f"{err:.1e} ≤ {tol:.0e}"


def table() -> str:
    lines = ["| probe | " + " | ".join(NAMES) + " |", "|---" * (len(NAMES) + 1) + "|"]
    notes: dict[str, int] = {}
    for probe in CELLS:
        row = []
        for model in NAMES:
            cells = []
            for mode in MODES:
                status, detail = run_cell(probe, model, mode)
                if status == "match":
                    cells.append("✓")
                else:
                    k = notes.setdefault(f"{status}: {detail}", len(notes) + 1)
                    cells.append(f"{'R' if status == 'refused' else '✗'}{k}")
            row.append("/".join(cells))
        lines.append(f"| {probe} | " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Each cell: eval/train. ✓ matches the reference within the tolerance; R*n*: refused, with message *n*; ✗*n*: a failure.")
    lines.append("")
    for text, k in notes.items():
        lines.append(f"{k}. {text}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        for probe in sys.argv[1:]:
            for model in NAMES:
                for mode in MODES:
                    print(probe, model, mode, *run_cell(probe, model, mode))
    else:
        print(table())
