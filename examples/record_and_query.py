"""Record your own loop into a genlab store, then read it back with plain SQL.

The store is one SQLite file (``HOME/genlab.sqlite``): tables ``runs``, ``metrics`` (run, step,
name, value), ``checks`` (the verdicts) and ``artifacts``. Anything that reads SQLite reads it;
``genlab runs``, ``genlab metrics RUN --csv`` and ``genlab report RUN`` work on this run too.
"""
import sqlite3
import sys
import tempfile

from genlab.store import Store

home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="genlab-example-")
store = Store(home)
run = store.create_run("my-loop", {"lr": 0.1, "seed": 0}, config_hash="my-loop-lr0.1", seed=0)
w, lr = 5.0, 0.1
for step in range(50):  # gradient descent on L(w) = w²/2: w ← (1 − η) w
    store.log_metrics(run, [(step, "loss", w * w / 2), (step, "w", w)])
    w -= lr * w
store.finish_run(run, "finished")

db = sqlite3.connect(f"{home}/genlab.sqlite")
rows = db.execute(
    "SELECT step, value FROM metrics WHERE run = ? AND name = 'loss' AND step % 10 = 0 ORDER BY step", (run,)
).fetchall()
for step, loss in rows:
    print(f"step {step:2d}: loss {loss:.3e}  (closed form {12.5 * 0.81 ** step:.3e})")
print(f"store: {home}  (try: genlab metrics {run} --home {home})")
