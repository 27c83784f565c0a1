"""Theme: when a network behaves like its tangent kernel and when it learns features."""

TITLE = "Kernels and the lazy/rich regime"
ORDER = 30
