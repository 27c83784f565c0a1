"""Theme: forgetting when tasks arrive one after another."""

TITLE = "Continual learning"
ORDER = 60
