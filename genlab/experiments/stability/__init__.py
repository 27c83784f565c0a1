"""Theme: which minima gradient descent can stay in — linear stability, the edge of stability, sharpness and the Hessian's spectrum."""

TITLE = "Stability and sharpness"
ORDER = 10
