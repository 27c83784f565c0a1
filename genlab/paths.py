"""Checks of the files and folders named on the command line, made before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

from genlab.errors import InputError


def check_out_path(path: str | os.PathLike[str] | None, option: str = "--out") -> None:
    """Refuse an output file that cannot be written: an existing folder, or a path whose nearest
    existing ancestor is not a writable folder (a path under a file, under ``/proc``, …)."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option}: {p} is a folder; give a file name")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option}: cannot create {p}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or str(parent.resolve()).startswith(("/proc", "/sys")):
        raise InputError(f"{option}: cannot create {p}: {parent} is not writable")
