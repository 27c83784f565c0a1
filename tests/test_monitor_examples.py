"""The Monitor and diagnose examples run, and a user's loop needs at most 5 added lines.

The lines a script adds for the Monitor end in ``# monitor``; everything after the marker
``# -- what the Monitor recorded`` only prints. With the marked lines and the printing removed,
the AdamW + DataLoader loop must still run and train to the very same weights: so the marked lines
are all the Monitor needs, and the Monitor does not change the training.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from genlab.store import Store
from test_docs_examples import _run  # runs a script as __main__ with argv, capturing stdout

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PRINTING = "# -- what the Monitor recorded"


def _added_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if re.search(r"\s#\s?monitor(\s.*)?$", ln)]


def _check_dashboard(page: Path, run_id: int) -> None:
    text = Path(page).read_text(encoding="utf-8")
    assert f'alt="dashboard of run {run_id}"' in text and "monitoring run" in text


def test_adamw_loop_gets_sharpness_threshold_trace_verdicts_dashboard_in_five_lines(tmp_path):
    path = EXAMPLES / "monitor_adamw_loop.py"
    source = path.read_text(encoding="utf-8")
    added = _added_lines(path)
    assert 1 <= len(added) <= 5, added
    ns, out = _run(path, str(tmp_path / "with"))
    mon = ns["monitor"]
    steps = [t for t, _ in mon.history["preconditioned_sharpness"]]
    assert steps == [8, 16, 24]
    assert [v for _, v in mon.history["threshold"]] == pytest.approx([38 / 3e-3] * 3)  # (2+2β₁)/((1−β₁)η), β₁ = 0.9
    assert [t for t, _ in mon.history["trace_se"]] == steps and all(0 < v < float("inf") for _, v in mon.history["trace_se"])
    with Store(tmp_path / "with") as st:
        run = st.get_run(mon.run_id)
        assert run["status"] == "finished" and run["config"]["optimizer"] == "AdamW"
        assert len(st.checks(mon.run_id)) == 2
    _check_dashboard(ns["page"], mon.run_id)
    # the loop without the Monitor's lines (and without the printing) trains to the same weights
    plain = "\n".join(ln for ln in source.split(PRINTING)[0].splitlines() if ln not in added)
    assert "genlab" not in plain.split('"""', 2)[2]  # nothing of genlab is left in the code
    script = tmp_path / "plain.py"
    script.write_text(plain, encoding="utf-8")
    ns_plain, _ = _run(script, str(tmp_path / "without"))
    for (k, a), b in zip(ns["model"].state_dict().items(), ns_plain["model"].state_dict().values()):
        assert torch.equal(a, b), k
    assert not (tmp_path / "without").exists() or not any((tmp_path / "without").iterdir())


# MNIST-1D generation and 13 curvature measurements: ~15 s of CPU, in the default run (the issue: examples run by the suite)
def test_mnist1d_cnn_with_batchnorm_example(tmp_path):
    pytest.importorskip("mnist1d", reason="MNIST-1D needs the mnist1d package (extra genlab[data])")
    path = EXAMPLES / "monitor_mnist1d_cnn.py"
    assert 1 <= len(_added_lines(path)) <= 5
    ns, out = _run(path, str(tmp_path))
    mon = ns["monitor"]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in ns["model"].modules())
    for name in ("loss", "grad_norm", "per_example.norm_mean", "m_coherence", "snr", "distance", "sharpness", "trace"):
        assert len(mon.history[name]) == 13, name  # 6 epochs × 13 batches, every 6 steps
    assert mon.history["threshold"][0][1] == pytest.approx(2 * 1.9 / 0.05)  # heavy ball 2(1+β)/η
    _check_dashboard(ns["page"], mon.run_id)


def test_tiny_transformer_adamw_example(tmp_path):
    path = EXAMPLES / "monitor_transformer_adamw.py"
    assert 1 <= len(_added_lines(path)) <= 5
    ns, out = _run(path, str(tmp_path))
    mon = ns["monitor"]
    lam = mon.history["preconditioned_sharpness"]
    assert [t for t, _ in lam] == [8, 16, 24, 32, 40] and all(v > 0 for _, v in lam)
    assert mon.history["threshold"][-1][1] == pytest.approx(38 / 3e-3)
    assert f"threshold 38/η = {38 / 3e-3:.4g}" in out
    _check_dashboard(ns["page"], mon.run_id)


# importing Lightning takes ~7 s of CPU (shared with test_lightning_callback.py in one process)
def test_lightning_example(tmp_path):
    pytest.importorskip("lightning", reason="Lightning not installed (optional extra genlab[lightning])")
    path = EXAMPLES / "monitor_lightning.py"
    assert 1 <= len(_added_lines(path)) <= 5
    ns, out = _run(path, str(tmp_path))
    cb = ns["callback"]
    assert [t for t, _ in cb.monitor.history["sharpness"]] == [8, 16, 24]  # 3 epochs × 8 batches
    assert cb.monitor.history["threshold"][0][1] == pytest.approx(2 / 0.1)
    with Store(tmp_path) as st:
        (run,) = st.runs()
        assert run["experiment"] == "monitor:lightning" and run["status"] == "finished"


def test_diagnose_example(tmp_path):
    ns, out = _run(EXAMPLES / "diagnose_trained_model.py", str(tmp_path))
    d = ns["d"]
    assert len(d.top_eigenvalues) == 5 and list(d.top_eigenvalues) == sorted(d.top_eigenvalues, reverse=True)
    assert set(d.per_layer_sharpness) == {"0", "2", "4"}
    assert max(d.per_layer_sharpness.values()) <= d.top_eigenvalues[0] * (1 + 1e-4)  # interlacing
    assert len(d.hardest) == 10 and f"hardest examples {d.hardest}" in out
    text = (tmp_path / "diagnose-mlp.html").read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 3


def test_readme_shows_the_five_line_monitor_loop_after_make_run_and_make_test():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).splitlines()
    assert first[0].startswith("make run") and first[1].startswith("make test")  # the two opening commands stay first
    block = re.search(r"<!-- example: monitor_adamw_loop.py -->\n```python\n(.*?)```", readme, re.S).group(1)
    script = (EXAMPLES / "monitor_adamw_loop.py").read_text(encoding="utf-8")
    assert block.strip() in script  # the README's code is the tested script's
    marked = [ln for ln in block.splitlines() if re.search(r"\s#\s?monitor(\s.*)?$", ln)]
    assert marked == _added_lines(EXAMPLES / "monitor_adamw_loop.py") and len(marked) == 5
    assert readme.index("monitor_adamw_loop.py") < readme.index("## Using it")  # in the first section
