"""Theme: optimizers beyond plain GD, large batches and asynchronous training — the stability
threshold of each optimizer, delays, batch-size scaling, sharpness-aware training, schedules."""

TITLE = "Optimizers and large batches"
ORDER = 15
