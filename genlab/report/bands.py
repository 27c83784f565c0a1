"""Drawing a claim's prediction with its tolerance band (and a threshold) against the measurement.

A verdict says "predicted P, tolerance T"; its figure should show the same: the prediction as a
dashed line, the interval the tolerance allows as a shaded band, and where a claim is an inequality,
the threshold as a dotted line. Every experiment draws these the same way through this module, and
each artist carries a ``gid`` (``prediction``, ``tolerance-band``, ``threshold``) so tests — and the
SVG of a figure — can find them.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

BAND_GID = "tolerance-band"
PREDICTION_GID = "prediction"
THRESHOLD_GID = "threshold"


def relative_band(predicted: Any, rel: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of a relative tolerance ±``rel`` around ``predicted`` (scalar or array)."""
    p = np.asarray(predicted, dtype=float)
    return p - rel * np.abs(p), p + rel * np.abs(p)


def draw_prediction(
    ax: Any,
    predicted: Any,
    low: Any,
    high: Any,
    x: Sequence[float] | None = None,
    *,
    label: str = "prediction",
    band_label: str | None = "tolerance",
    color: str = "tab:green",
    vertical: bool = False,
) -> Any:
    """Draw ``predicted`` (dashed) and the band [``low``, ``high``] (shaded) on ``ax``; return the band.

    Scalars with ``x=None`` span the whole axis (a horizontal band, or a vertical one with
    ``vertical``); scalars with ``x = (x0, x1)`` span that range only; arrays are curves over ``x``."""
    p, lo, hi = (np.asarray(v, dtype=float) for v in (predicted, low, high))
    if p.ndim == 0 and x is None:
        if vertical:
            line = ax.axvline(float(p), color="k", ls="--", lw=0.9, label=label)
            band = ax.axvspan(float(lo), float(hi), color=color, alpha=0.18, lw=0, label=band_label)
        else:
            line = ax.axhline(float(p), color="k", ls="--", lw=0.9, label=label)
            band = ax.axhspan(float(lo), float(hi), color=color, alpha=0.18, lw=0, label=band_label)
    else:
        xs = np.asarray(x, dtype=float)
        if p.ndim == 0:
            xs = np.array([xs.min(), xs.max()])
        p, lo, hi = (np.broadcast_to(v, xs.shape) for v in (p, lo, hi))
        (line,) = ax.plot(xs, p, color="k", ls="--", lw=0.9, label=label)
        band = ax.fill_between(xs, lo, hi, color=color, alpha=0.18, lw=0, label=band_label)
    line.set_gid(PREDICTION_GID)
    band.set_gid(BAND_GID)
    return band


def draw_slope_band(ax: Any, x: Sequence[float], y: Sequence[float], slope: float, low: float, high: float,
                    *, label: str, band_label: str | None = None) -> Any | None:
    """A log-log slope claim: the line of the predicted ``slope`` and the fan of slopes [``low``,
    ``high``] the tolerance allows, both through the geometric centre of the measured points (where
    a least-squares fit in log-log passes), so the fitted line lies in the band iff its slope is
    allowed. None (nothing drawn) when a value is not positive and finite."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.size < 2 or not (np.all(np.isfinite(ys)) and np.all(ys > 0) and np.all(xs > 0)):
        return None
    cx, cy = np.exp(np.mean(np.log(xs))), np.exp(np.mean(np.log(ys)))
    ends = [cy * (xs / cx) ** s for s in (low, high)]
    band = draw_prediction(ax, cy * (xs / cx) ** slope, np.minimum(*ends), np.maximum(*ends), x=xs, label=label,
                           band_label=band_label or f"slopes {low:g}…{high:g} (tolerance)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return band


def draw_threshold(ax: Any, value: float, label: str, *, vertical: bool = False, color: str = "tab:red") -> Any:
    """A dotted line at the threshold ``value`` of an inequality claim (y, or x with ``vertical``)."""
    line = (ax.axvline if vertical else ax.axhline)(float(value), color=color, ls=":", lw=1.1, label=label)
    line.set_gid(THRESHOLD_GID)
    return line


def band_limits(ax: Any) -> list[tuple[float, float, float, float]]:
    """(x_low, x_high, y_low, y_high) in data coordinates of every tolerance band drawn on ``ax``
    (from the drawn extent, so a band spanning the axis reports the axis' limits along it)."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    inv = ax.transData.inverted()
    out = []
    for artist in list(ax.patches) + list(ax.collections):
        if artist.get_gid() == BAND_GID:
            (x0, y0), (x1, y1) = inv.transform(artist.get_window_extent(renderer).get_points())
            out.append((float(x0), float(x1), float(y0), float(y1)))
    return out


__all__ = ["BAND_GID", "PREDICTION_GID", "THRESHOLD_GID", "band_limits", "draw_prediction", "draw_slope_band", "draw_threshold",
           "relative_band"]
