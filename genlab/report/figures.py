"""Figure hygiene applied when a figure is saved: no text below a legible size.

Experiments draw dense multi-panel figures; titles and legends set to 6–7 pt are unreadable
once the PNG is scaled into the page. Raising them here keeps every experiment's figure legible
without touching how each one draws.
"""

from __future__ import annotations

from typing import Any

MIN_FONT_PT = 8.0


def legible(fig: Any, min_size: float = MIN_FONT_PT) -> Any:
    """Raise every text of ``fig`` (titles, labels, ticks, legends) to at least ``min_size`` points."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < min_size:
            text.set_fontsize(min_size)
    return fig


__all__ = ["MIN_FONT_PT", "legible"]
