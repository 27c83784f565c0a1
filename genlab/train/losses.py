"""Losses shared by the experiments."""

from __future__ import annotations

import torch


def half_squared_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L = (1/n) Σ_j ½‖f(x_j) − y_j‖², summed over outputs and averaged over examples — the
    normalization of minima-stability theory (Mulayoff, Michaeli & Soudry 2021, §3) and of
    Cohen et al. 2021 (arXiv 2103.00065, §2). Scalar outputs of shape (n,) or (n, 1) alike."""
    out = output.reshape(output.shape[0], -1)
    return 0.5 * ((out - target.reshape(out.shape)) ** 2).sum(dim=1).mean()
