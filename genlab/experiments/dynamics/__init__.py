"""Theme: learning curves with exact solutions — deep linear networks, double descent, spectral bias."""

TITLE = "Dynamics and closed forms"
ORDER = 50
