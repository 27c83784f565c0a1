"""The Lanczos iteration with full reorthogonalization, on any symmetric operator ``v ↦ A v``.

Lanczos (1950), in the form of Golub & Van Loan, "Matrix Computations" (4th ed., 2013),
Algorithm 10.1.1 with complete reorthogonalization (§10.3.1): after j steps,
A V_j = V_j T_j + β_j v_{j+1} e_jᵀ with T_j tridiagonal. A Ritz pair (θ_i, y_i = V_j s_i) of T_j
has residual ‖A y_i − θ_i y_i‖ = β_j |e_jᵀ s_i| (ibid., eq. 10.1.8), which needs no extra product:
it is the stopping rule. For symmetric A some eigenvalue of A lies within that residual of θ_i
(Parlett, "The Symmetric Eigenvalue Problem", 1998, Thm 4.5.1), and within residual²/gap when θ_i
is separated from the rest of the spectrum by ``gap`` (ibid., Thm 11.7.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

Which = Literal["largest", "smallest", "both", "magnitude"]
WHICH = ("largest", "smallest", "both", "magnitude")


@dataclass
class LanczosRun:
    """Output of :func:`lanczos`: the tridiagonal T (``alphas``, ``betas``), the basis V (columns),
    the last β (for residuals), and how many products were made."""

    alphas: np.ndarray
    betas: np.ndarray  # off-diagonal of T, length m−1
    basis_rows: torch.Tensor  # (m, n): the Lanczos vectors as rows

    @property
    def basis(self) -> torch.Tensor:
        """V (n × m), the Lanczos vectors as columns (a view)."""
        return self.basis_rows.T
    beta_last: float
    matvecs: int
    invariant: bool  # the Krylov space became invariant (β ≈ 0): the Ritz values are exact

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of T (columns)."""
        return tridiagonal_eigh(self.alphas, self.betas)

    def residuals(self, vectors: np.ndarray) -> np.ndarray:
        """‖A y − θ y‖ of each Ritz pair: β_m |last component of s|."""
        return 0.0 if self.invariant else self.beta_last * np.abs(vectors[-1, :])


def tridiagonal_eigh(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the symmetric tridiagonal matrix with diagonal ``alphas`` and
    off-diagonal ``betas``: LAPACK's tridiagonal solver (``scipy.linalg.eigh_tridiagonal``),
    O(m²) and without the BLAS threads a dense ``eigh`` of the m × m matrix would start."""
    a = np.asarray(alphas, dtype=np.float64)
    if len(a) == 1:
        return a.copy(), np.ones((1, 1))
    return eigh_tridiagonal(a, np.asarray(betas, dtype=np.float64)[: len(a) - 1])


def certified(theta: np.ndarray, res: np.ndarray, k: int, which: "Which", tol: float,
              eps: float = float(np.finfo(np.float64).eps)) -> bool:
    """The stopping rule of :func:`lanczos` (ascending Ritz values ``theta``, residuals ``res``).

    Each Ritz value θ_i is held to its own scale, tol_i = tol·max(|θ_i|, eps^(2/3)·|θ|_max), as in
    ARPACK's convergence test (``dsconv``: ‖r_i‖ ≤ tol·max(eps^(2/3), |θ_i|); here the floor is
    scaled by |θ|_max, the operator's norm as far as Lanczos has seen it, ``eps`` that of the
    products' dtype), and never below 10·eps·|θ|_max (the rounding of the products). True when
    (1) each of the k wanted Ritz values has residual ≤ tol_i, so an eigenvalue lies within tol_i
        of it (Parlett 1998, Thm 4.5.1) — relative to itself, not to λ_max: a small eigenvalue
        among the k is resolved at its own scale, where the spectrum's spacing is;
    (2) the next Ritz value inward (the (k+1)-th) has converged the same way, and
    (3) no other Ritz value's residual interval [θ_j − r_j, θ_j + r_j] (which holds an eigenvalue)
        reaches past the k-th wanted value by more than its tol_k.
    A residual alone certifies closeness to *an* eigenvalue: on a trained CNN (tol 1e-2, k = 10)
    the 10th Ritz value sat within tol·λ_max of λ₁₂ while λ₁₀ and λ₁₁ had not emerged yet; (1)–(3)
    make Lanczos continue until the spectrum around the k-th value is resolved at its scale."""
    idx = _wanted(theta, k, which)
    norm = max(float(np.max(np.abs(theta))), 1e-300)
    # never below 10·eps·|θ|max: residuals under the products' rounding cannot be certified
    bound = np.maximum(tol * np.maximum(np.abs(theta), eps ** (2 / 3) * norm), 10 * eps * norm)
    if not np.all(res[idx] <= bound[idx]):
        return False
    rest = np.setdiff1d(np.arange(len(theta)), idx)
    if rest.size == 0:
        return True
    nxt = _next_inward(theta, idx, which)
    if not np.all(res[nxt] <= bound[nxt]):
        return False
    t, r = theta[rest], res[rest]
    if which == "magnitude":
        edge = idx[np.argmin(np.abs(theta[idx]))]
        return bool(np.all(np.abs(t) + r <= abs(theta[edge]) + bound[edge]))
    ok = True
    if which in ("largest", "both"):
        top = idx[-min(k, len(idx)):] if which == "both" else idx
        edge = top[np.argmin(theta[top])]
        ok &= bool(np.all(t + r <= theta[edge] + bound[edge]))
    if which in ("smallest", "both"):
        low = idx[:min(k, len(idx))] if which == "both" else idx
        edge = low[np.argmax(theta[low])]
        ok &= bool(np.all(t - r >= theta[edge] - bound[edge]))
    return ok


def _wanted(theta: np.ndarray, k: int, which: Which) -> np.ndarray:
    """Indices (into ascending ``theta``) of the k wanted Ritz values."""
    m = len(theta)
    k = min(k, m)
    if which == "largest":
        return np.arange(m - k, m)
    if which == "smallest":
        return np.arange(0, k)
    if which == "magnitude":
        return np.sort(np.argsort(-np.abs(theta), kind="stable")[:k])
    # both: k largest and k smallest
    return np.unique(np.concatenate([np.arange(0, k), np.arange(max(m - k, 0), m)]))


def _next_inward(theta: np.ndarray, idx: np.ndarray, which: "Which") -> np.ndarray:
    """Indices of the Ritz values just inside the wanted ones (the (k+1)-th from each wanted end)."""
    rest = np.setdiff1d(np.arange(len(theta)), idx)
    if which == "magnitude":
        return rest[np.argsort(-np.abs(theta[rest]), kind="stable")[:1]]
    out = []
    if which in ("largest", "both"):
        out.append(rest.max())
    if which in ("smallest", "both"):
        out.append(rest.min())
    return np.unique(np.array(out, dtype=int))


def lanczos(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    v0: torch.Tensor,
    max_iter: int,
    k: int = 1,
    which: Which = "largest",
    tol: float | None = None,
    check_every: int = 1,
    min_iter: int = 0,
) -> LanczosRun:
    """Run up to ``max_iter`` Lanczos steps from ``v0`` with full reorthogonalization.

    With ``tol`` set, stop (after at least ``k + 1`` steps) as soon as :func:`certified` holds:
    the ``k`` wanted Ritz pairs and the next one inward have residuals ≤ tol·|θ_i| (floored at
    eps^(2/3)·|θ|_max), and no other Ritz value's residual interval reaches past the wanted ones. A non-finite
    product raises FloatingPointError. Without ``tol`` run all ``max_iter`` steps (used by
    stochastic Lanczos quadrature). Stops early if the Krylov space becomes invariant.
    """
    n = v0.numel()
    max_iter = max(1, min(int(max_iter), n))
    dtype, device = v0.dtype, v0.device
    # row-major and grown by doubling: contiguous rows keep the reorthogonalization fast, and
    # memory follows the steps taken rather than max_iter
    basis = torch.zeros(min(max_iter, 16), n, dtype=dtype, device=device)
    v = v0.reshape(-1) / torch.linalg.vector_norm(v0)
    basis[0] = v
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    invariant = False
    eps = torch.finfo(dtype).eps
    norm_est = 0.0
    for j in range(max_iter):
        w = matvec(basis[j])
        alpha = float(torch.dot(w, basis[j]))
        if not np.isfinite(alpha) or not bool(torch.isfinite(w).all()):
            raise FloatingPointError(f"non-finite matrix-vector product at Lanczos step {j} (diverged parameters?)")
        alphas.append(alpha)
        # full reorthogonalization against all previous vectors, twice ("twice is enough":
        # Giraud, Langou, Rozložník & van den Eshof 2005, Numer. Math. 101)
        v_j = basis[: j + 1]
        for _ in range(2):
            w = w - v_j.T @ (v_j @ w)
        beta = float(torch.linalg.vector_norm(w))
        norm_est = max(norm_est, abs(alpha) + beta + (betas[-1] if betas else 0.0))
        if beta <= 10 * eps * max(norm_est, 1e-300) * np.sqrt(n):
            invariant = True
            break
        if j + 1 < max_iter:
            if j + 1 >= basis.shape[0]:
                grown = torch.zeros(min(max_iter, 2 * basis.shape[0]), n, dtype=dtype, device=device)
                grown[: basis.shape[0]] = basis
                basis = grown
            basis[j + 1] = w / beta
            betas.append(beta)
        if tol is not None and j + 1 >= max(k + 1, min_iter) and ((j + 1) % check_every == 0):
            theta, s = tridiagonal_eigh(np.array(alphas), np.array(betas[:j]))
            if certified(theta, beta * np.abs(s[-1, :]), k, which, tol, float(eps)):
                break
    m = len(alphas)
    return LanczosRun(
        alphas=np.array(alphas),
        betas=np.array(betas[: m - 1]),
        basis_rows=basis[:m],
        beta_last=beta,
        matvecs=m,
        invariant=invariant,
    )
