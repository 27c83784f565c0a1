"""The figures of a diagnosis: Hessian spectral density with the top-k eigenvalues, the margin
distributions (train and test), the EL2N histogram with the hardest examples marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genlab.report.dashboard import DIAGNOSE_CAPTIONS as CAPTIONS



def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from genlab.report.figures import SAVE_DPI, legible

    legible(fig)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=SAVE_DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def save_figures(d: Any, folder: Path) -> dict[str, Path]:
    """Draw the diagnosis ``d`` (a :class:`genlab.diagnosis.Diagnosis`) into ``folder``; name → path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    grid, dens = d.density
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(grid, np.maximum(dens, 1e-12), color="C0", label="SLQ density")
    for i, v in enumerate(d.top_eigenvalues):
        ax.axvline(v, color="C3", linestyle="--", alpha=0.7, label="top-k eigenvalues" if i == 0 else None)
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(float(np.max(dens)), 1e-12) * 1e-6)  # six decades: the bulk and its outliers
    ax.set_xlabel("eigenvalue of the Hessian")
    ax.set_ylabel("density")
    ax.set_title(f"Hessian spectrum: λ_max = {d.scalars['sharpness']:.4g}, trace = {d.scalars['trace']:.4g} "
                 f"± {d.scalars['trace_se']:.2g}")
    ax.legend()
    fig.tight_layout()
    out["spectrum.png"] = _save(fig, folder / "spectrum.png")
    if d.margins:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for part, m in d.margins.items():
            ax.hist(m, bins=40, alpha=0.6, label=f"{part} ({len(m)})")
        ax.axvline(0, color="C3")
        ax.set_xlabel("margin f_y − max_{j≠y} f_j")
        ax.set_ylabel("examples")
        ax.set_title("output margins")
        ax.legend()
        fig.tight_layout()
        out["margins.png"] = _save(fig, folder / "margins.png")
    if np.isfinite(d.el2n).any():
        fig, ax = plt.subplots(figsize=(6, 3.4))
        ax.hist(d.el2n, bins=40, color="C0")
        if d.hardest:
            cut = np.sort(d.el2n)[-len(d.hardest)]
            ax.axvline(cut, color="C3", linestyle="--", label=f"the {len(d.hardest)} hardest (listed in the findings)")
            ax.legend()
        ax.set_xlabel("EL2N score")
        ax.set_ylabel("examples")
        ax.set_title("EL2N scores of the training examples")
        fig.tight_layout()
        out["el2n.png"] = _save(fig, folder / "el2n.png")
    return out


__all__ = ["CAPTIONS", "save_figures"]
