"""What an experiment draws when every member run diverged: the step at which each one did.

A run whose every member diverged is a recorded result (status ``diverged``), so its figure
shows what was measured — where each member's loss stopped being finite — instead of the
curves that need a converged member."""

from __future__ import annotations

from typing import Any, Sequence


def diverged_figure(title: str, members: Sequence[tuple[str, Any]]) -> Any:
    """A bar per member (label, step at which it diverged or None if unknown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(members) + 2), 3.0))
    labels = [str(m[0]) for m in members]
    steps = [float(m[1]) if isinstance(m[1], (int, float)) else 0.0 for m in members]
    ax.bar(range(len(members)), steps, color="tab:red")
    ax.set_xticks(range(len(members)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("step at which the loss diverged")
    ax.set_title(f"{title}: every run diverged", fontsize=9)
    fig.tight_layout()
    return fig
