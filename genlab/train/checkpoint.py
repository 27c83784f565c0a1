"""Checkpoints: a model's state dict written atomically, read back with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model.state_dict()`` to ``path`` through a temporary file and a rename."""
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, final)
    return final


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike[str]) -> torch.nn.Module:
    """Load a state dict saved by :func:`save_checkpoint` (tensors only: ``weights_only=True``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
