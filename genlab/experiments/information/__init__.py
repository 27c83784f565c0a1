"""Theme: what layers keep about their input — the information plane, MI estimators, the
information bottleneck and representation similarity."""

TITLE = "Information and representations"
ORDER = 80
