"""The README's example is the examples/ script and it runs; every example runs; the theme pages
of the docs are generated from the registry. (`make docs` builds the site with warnings as errors.)"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(path: Path, *argv: str) -> tuple[dict, str]:
    buf = io.StringIO()
    old = sys.argv
    sys.argv = [str(path), *argv]
    try:
        with contextlib.redirect_stdout(buf):
            ns = runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = old
    return ns, buf.getvalue()


def test_readme_example_is_the_example_script_and_measures_right():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- example: probes_on_your_model.py -->\n```python\n(.*?)```", readme, re.S).group(1)
    script = (ROOT / "examples" / "probes_on_your_model.py").read_text(encoding="utf-8")
    assert block.strip() in script and len(block.strip().splitlines()) <= 16
    ns, out = _run(ROOT / "examples" / "probes_on_your_model.py")
    lines = out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["step 0", "step 50", "step 100"]
    # the last sharpness printed is that of the final model: check it against the dense Hessian
    from genlab.probes import dense_top_eigenvalue

    exact = dense_top_eigenvalue(ns["model"], ns["loss_fn"], (ns["x"], ns["y"]))
    assert float(ns["sharpness"]) == pytest.approx(exact, rel=1e-4)  # Lanczos stopped at residual 1e-6·|λ|
    assert f"λ_max = {exact:.3f}" in lines[-1]


def test_record_and_query_example_reads_back_the_closed_form(tmp_path):
    _, out = _run(ROOT / "examples" / "record_and_query.py", str(tmp_path / "store"))
    rows = re.findall(r"step\s+(\d+): loss (\S+)", out)
    assert [int(s) for s, _ in rows] == [0, 10, 20, 30, 40]
    for step, loss in rows:  # GD on w²/2 from w = 5: loss_t = 12.5·(1 − η)^(2t)
        assert float(loss) == pytest.approx(12.5 * 0.9 ** (2 * int(step)), rel=1e-3)
    assert (tmp_path / "store" / "genlab.sqlite").exists()


def test_every_example_is_tested_here():
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert scripts == ["diagnose_trained_model.py", "monitor_adamw_loop.py", "monitor_lightning.py", "monitor_mnist1d_cnn.py",
                       "monitor_transformer_adamw.py", "probes_on_your_model.py", "record_and_query.py"]
    # the Monitor and diagnose examples are run by tests/test_monitor_examples.py


def test_theme_pages_are_generated_from_the_registry(tmp_path):
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_themes
    finally:
        sys.path.pop(0)
    from genlab.experiments import themes

    gen_themes.main(tmp_path)
    index = (tmp_path / "index.md").read_text(encoding="utf-8")
    for key, theme in themes().items():
        pages = list(tmp_path.glob(f"*-{key}.md"))
        assert len(pages) == 1 and theme.title in index
        text = pages[0].read_text(encoding="utf-8")
        for name in theme.experiments:
            assert f"## `{name}`" in text


def test_the_sql_of_the_store_page_runs_and_answers(tmp_path):
    """Each SQL block of docs/store.md runs on a real store and gives what its text says."""
    import sqlite3

    from genlab.store import Store, Verdict

    s = Store(tmp_path)
    a = s.create_run("exp-a", {}, "h1", 0)
    s.log_metrics(a, [(0, "train/loss", 2.0), (5, "train/loss", 0.5), (5, "acc", 0.9)])
    s.add_checks(a, [Verdict("c1", "", "", "", True), Verdict("c2", "", "", "", False),
                     Verdict("p", "", "", "", True, kind="precondition")])
    s.finish_run(a, "finished")
    b = s.create_run("exp-b", {}, "h2", 0)
    s.log_metrics(b, [(0, "loss", 1.0)])
    s.finish_run(b, "failed", error="x")
    blocks = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "store.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    db = sqlite3.connect(tmp_path / "genlab.sqlite")
    assert db.execute(blocks[0]).fetchall() == [(a, "exp-a", "train/loss", 0.5)]  # last loss of finished runs
    assert db.execute(blocks[1]).fetchall() == [("exp-a", 1, 2)]  # claims only, preconditions left out
