"""Theme: what per-example gradients say — coherence, heavy-tailed noise, diffusion, data importance."""

TITLE = "Gradient noise and data"
ORDER = 40
