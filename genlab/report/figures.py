"""Figure hygiene applied when a figure is saved: no text below a legible size on the page.

Experiments draw dense multi-panel figures; titles and legends set to 6–7 pt are unreadable,
and a wide figure is scaled down to the report's width (about 1100 px), shrinking its text
further. Raising small text here — more for wider figures — keeps every experiment's figure
legible without touching how each one draws.
"""

from __future__ import annotations

import warnings
from typing import Any

MIN_FONT_PT = 8.0
PAGE_WIDTH_PX = 1100  # the width a figure is shown at in the report (wider ones are scaled down)
SAVE_DPI = 110


def min_font_size(fig: Any, min_size: float = MIN_FONT_PT, dpi: float = SAVE_DPI) -> float:
    """The least font size (points) that shows as ``min_size`` once the figure is scaled to the page."""
    width_px = fig.get_figwidth() * dpi
    return min_size * max(1.0, width_px / PAGE_WIDTH_PX)


def legible(fig: Any, min_size: float = MIN_FONT_PT, dpi: float = SAVE_DPI) -> Any:
    """Raise every text of ``fig`` (titles, labels, ticks, legends) to at least :func:`min_font_size`
    and lay the figure out again so the larger text does not overlap."""
    from matplotlib.text import Text

    floor = min_font_size(fig, min_size, dpi)
    raised = False
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < floor:
            text.set_fontsize(floor)
            raised = True
    engine = fig.get_layout_engine()
    if raised and (engine is None or type(engine).__name__ == "TightLayoutEngine"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fig.tight_layout()
            except Exception:  # a layout that tight_layout cannot handle keeps its own
                pass
    return fig


__all__ = ["MIN_FONT_PT", "legible", "min_font_size"]
