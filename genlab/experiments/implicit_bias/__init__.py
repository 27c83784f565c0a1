"""Theme: which solution gradient descent picks among many — max margin, min norm, the ℓ1/ℓ2 transition."""

TITLE = "Implicit bias and margins"
ORDER = 20
