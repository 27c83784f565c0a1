"""Theme: what low-precision arithmetic costs and how clipping recovers it."""

TITLE = "Quantization and precision"
ORDER = 70
