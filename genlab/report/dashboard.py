"""The dashboard of a monitored training: one figure of panels drawn from the run's stored series.

Panels (each only when its series is in the run): loss; λ_max (or Adam's preconditioned
λ_max(P⁻¹H)) with the optimizer's stability threshold as a line; Hessian trace with its ±1 SE
band; per-layer sharpness (``sharpness/<block>`` series); the per-example gradient-norm distribution over time (quantile fan when quantiles were
stored, else mean ± std and max, with the mini-batch gradient norm); gradient SNR and coherence;
the gradient-noise tail index α̂ with its interval and the Gaussian level 2; distance from
initialization; kernel distance. Torch-free: reads the store only.
"""

from __future__ import annotations

import fnmatch
import io
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

Series = Mapping[str, tuple[Sequence[int], Sequence[float]]]

MONITOR_PREFIX = "monitor:"

DIAGNOSE_CAPTIONS = {  # the figures of genlab.diagnose, by artifact name
    "spectrum.png": "Hessian spectral density by SLQ (Gaussian broadening; log scale) with the top-k eigenvalues "
                    "found by Lanczos as dashed lines: outliers to the right of the bulk are the sharp directions.",
    "margins.png": "Output margins f_y − max_{j≠y} f_j of the training (and test) examples; left of the red line "
                   "(margin ≤ 0) are the misclassified ones.",
    "el2n.png": "EL2N scores ‖softmax(f(x)) − onehot(y)‖ of the training examples; the hardest examples (highest "
                "scores) are listed by index in the findings.",
}


@dataclass(frozen=True)
class Panel:
    """One panel: its title, the series it needs (any one of ``names``) and how to draw it."""

    title: str
    names: tuple[str, ...]
    draw: Callable[[Any, Series, str], None]


def _band_of(data: Series, name: str) -> tuple[list[float], list[float], str] | None:
    """(low, high, label) of ``name``'s error band from its stored companion series: a standard
    error (``name_se``, ``name.se``, ``name_stderr``; drawn ±1 SE) or an interval (``name_low``/
    ``name_high``, ``name_lo``/``name_hi``, ``name.low``/``name.high``). None when the run stored no band or steps differ."""
    steps, vals = data[name]
    for se_name in (f"{name}_se", f"{name}.se", f"{name}_stderr", f"{name}.stderr"):
        if se_name in data and list(data[se_name][0]) == list(steps):
            se = data[se_name][1]
            return [v - s for v, s in zip(vals, se)], [v + s for v, s in zip(vals, se)], "±1 SE"
    for lo, hi in ((f"{name}_low", f"{name}_high"), (f"{name}_lo", f"{name}_hi"), (f"{name}.low", f"{name}.high")):
        if lo in data and hi in data and list(data[lo][0]) == list(steps) == list(data[hi][0]):
            return list(data[lo][1]), list(data[hi][1]), "interval"
    return None


def _line(ax: Any, data: Series, name: str, label: str | None = None, **kw: Any) -> None:
    steps, vals = data[name]
    ax.plot(steps, vals, marker="." if len(steps) < 40 else None, label=label or name, **kw)
    band = _band_of(data, name)
    if band is not None:
        lo, hi, what = band
        ax.fill_between(steps, lo, hi, alpha=0.25, label=f"{label or name} {what}", **{k: v for k, v in kw.items() if k == "color"})


def _plain(text: str) -> str:
    """A stored string (run or block name) as literal text: matplotlib would parse ``$...$`` as math."""
    return str(text).replace("$", r"\$")


def _has(data: Series, name: str) -> str | None:
    """``name`` if the run has it; for a glob (``sharpness/*``) the first series it matches."""
    if name in data:
        return name
    if "*" in name:
        return next((k for k in data if fnmatch.fnmatchcase(k, name)), None)
    return None


def _draw_blocks(ax: Any, data: Series, name: str) -> None:
    """Every block's series (``sharpness/<block>``), the whole model's sharpness dashed for scale."""
    prefix = name.split("/")[0] + "/"
    for k in sorted(k for k in data if k.startswith(prefix)):
        ax.plot(*data[k], label=_plain(k[len(prefix):]))
    whole = next((n for n in ("sharpness", "preconditioned_sharpness") if n in data and prefix == "sharpness/"), None)
    if whole == "sharpness":
        ax.plot(*data[whole], color="k", linestyle="--", label="whole model")
    ax.legend(fontsize=8)


def _draw_simple(ax: Any, data: Series, name: str) -> None:
    _line(ax, data, name)
    if _band_of(data, name) is not None:
        ax.legend(fontsize=8)


def _draw_loss(ax: Any, data: Series, name: str) -> None:
    _line(ax, data, name, color="C0")
    steps, vals = data[name]
    if vals and all(v > 0 for v in vals if math.isfinite(v)) and max(vals) > 20 * min(vals):
        ax.set_yscale("log")


def _draw_sharpness(ax: Any, data: Series, name: str) -> None:
    label = "λ_max(P⁻¹H)" if name == "preconditioned_sharpness" else "λ_max(H)"
    _line(ax, data, name, label=label, color="C0")
    if "batch_sharpness" in data and name != "batch_sharpness":
        _line(ax, data, "batch_sharpness", label="batch sharpness", color="C2")
    if "batch_sharpness_threshold" in data and "batch_sharpness" in data:
        bs, bv = data["batch_sharpness_threshold"]
        ax.step(bs, bv, where="post", color="C2", linestyle=":", label="batch-sharpness threshold")
    if "threshold" in data:
        ts, tv = data["threshold"]
        ax.step(ts, tv, where="post", color="C3", linestyle="--", label=f"stability threshold (last {tv[-1]:.4g})")
        lam = [v for v in data[name][1] if math.isfinite(v) and v > 0]
        if lam and max(tv) > 20 * max(lam):  # far below the threshold: a log axis shows both
            ax.set_yscale("log")
    ax.legend(fontsize=8)


_QUANTILE = re.compile(r"^per_example\.norm_q(\d+)$")


def _draw_grad_norms(ax: Any, data: Series, name: str) -> None:
    qs = sorted((int(m.group(1)), k) for k in data if (m := _QUANTILE.match(k)))
    if len(qs) >= 2:  # a fan: the outer quantile pair lightest, inner pairs darker
        for i in range(len(qs) // 2):
            (pl, lo), (ph, hi) = qs[i], qs[-1 - i]
            steps = data[lo][0]
            ax.fill_between(steps, data[lo][1], data[hi][1], color="C0", alpha=0.15 + 0.15 * i,
                            label=f"per-example q{pl}–q{ph}")
    elif "per_example.norm_mean" in data:
        steps, mean = data["per_example.norm_mean"]
        if "per_example.norm_std" in data and list(data["per_example.norm_std"][0]) == list(steps):
            std = data["per_example.norm_std"][1]
            ax.fill_between(steps, [max(m - s, 0.0) for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color="C0", alpha=0.25, label="per-example mean ± std (≥ 0)")
        ax.plot(steps, mean, color="C0", label="per-example mean")
    if "per_example.norm_max" in data:
        ax.plot(*data["per_example.norm_max"], color="C1", linestyle=":", label="per-example max")
    if "grad_norm" in data:
        ax.plot(*data["grad_norm"], color="k", label="mini-batch gradient norm")
    ax.legend(fontsize=8)


def _draw_snr(ax: Any, data: Series, name: str) -> None:
    if "snr" in data:
        _line(ax, data, "snr", label="SNR", color="C0")
        ax.legend(fontsize=8, loc="upper left")
    tw = ax.twinx() if "snr" in data else ax
    if "coherence" in data and "coherence_random" in data:  # α against its level on random labels
        tw.plot(*data["coherence"], color="C1", label="coherence α")
        tw.plot(*data["coherence_random"], color="C1", linestyle="--", label="α on random labels")
        tw.set_ylabel("coherence α")
        tw.legend(fontsize=8, loc="upper right")
    elif "m_coherence" in data:
        tw.plot(*data["m_coherence"], color="C1", label="m-coherence")
        tw.set_ylabel("m-coherence")
        tw.legend(fontsize=8, loc="upper right")


def _draw_tail(ax: Any, data: Series, name: str) -> None:
    _line(ax, data, name, label="α̂ (gradient noise)", color="C0")
    for ctrl in ("tail_index_control",):
        if ctrl in data:
            _line(ax, data, ctrl, label="α̂ Gaussian control", color="C7")
    ax.axhline(2.0, color="C3", linestyle="--", label="α = 2 (Gaussian)")
    ax.legend(fontsize=8)


PANELS: tuple[Panel, ...] = (
    Panel("loss", ("loss",), _draw_loss),
    Panel("sharpness and stability threshold", ("preconditioned_sharpness", "sharpness", "batch_sharpness"), _draw_sharpness),
    Panel("Hessian trace", ("trace",), _draw_simple),
    Panel("per-layer sharpness λ_max(H_BB)", ("sharpness/*",), _draw_blocks),
    Panel("gradient norms over time", ("per_example.norm_mean", "grad_norm"), _draw_grad_norms),
    Panel("gradient SNR and coherence", ("snr", "m_coherence"), _draw_snr),
    Panel("gradient-noise tail index α̂", ("tail_index", "alpha_hat"), _draw_tail),
    Panel("distance from initialization", ("distance",), _draw_simple),
    Panel("kernel distance from initialization", ("kernel_distance",), _draw_simple),
)


def present_panels(data: Series) -> list[tuple[Panel, str]]:
    """The panels whose series the run has, each with the series it draws."""
    out = []
    for p in PANELS:
        hit = next((h for n in p.names if (h := _has(data, n)) is not None), None)
        if hit is not None:
            out.append((p, hit))
    return out


def dashboard_figure(data: Series, title: str = "") -> Any | None:
    """One matplotlib figure with a panel per quantity present in ``data`` (None when none is)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = present_panels(data)
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (panel, name) in zip(axes.flat, panels):
        panel.draw(ax, data, name)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(_plain(title), fontsize=11)
    fig.tight_layout()
    return fig


def dashboard_png(data: Series, title: str = "") -> bytes | None:
    """The dashboard as PNG bytes (None when the run has no series the dashboard draws)."""
    import matplotlib.pyplot as plt

    from genlab.report.figures import SAVE_DPI, legible

    fig = dashboard_figure(data, title)
    if fig is None:
        return None
    legible(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=SAVE_DPI)
    plt.close(fig)
    return buf.getvalue()


__all__ = ["DIAGNOSE_CAPTIONS", "MONITOR_PREFIX", "PANELS", "Panel", "dashboard_figure", "dashboard_png", "present_panels"]
