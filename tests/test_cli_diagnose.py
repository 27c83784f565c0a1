"""`genlab diagnose WEIGHTS --model mod:build --train mod:data`: the run it stores, and bad input
(one line naming the option, exit 2, nothing written)."""

from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn.functional as F

from genlab.cli import main
from genlab.store import Store

MOD = "genlab_diag_cli_fixture"
SOURCE = textwrap.dedent('''
    import torch

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))

    def other():
        return torch.nn.Sequential(torch.nn.Linear(4, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))

    def train():
        g = torch.Generator().manual_seed(1)
        x = torch.randn(40, 4, generator=g)
        return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()

    def test():
        g = torch.Generator().manual_seed(2)
        x = torch.randn(20, 4, generator=g)
        return x, (x[:, 0] > 0).long()

    def wide():
        return torch.randn(10, 9), torch.zeros(10, dtype=torch.long)

    def three():
        return 3

    def broken():
        raise RuntimeError("no data here")

    VALUE = 1
''')


@pytest.fixture
def env(tmp_path, monkeypatch):
    (tmp_path / f"{MOD}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module(MOD)
    model = mod.build()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # the "trained" weights differ from build()'s
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.save(mod.build().state_dict(), tmp_path / "init.pt")
    torch.save({"weights": object()}, tmp_path / "pickle.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_text("not a torch file")
    return tmp_path, mod, model


def _run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_diagnose_cli_stores_a_run_equal_to_the_api(env, capsys):
    import genlab

    tmp, mod, model = env
    home = tmp / "home"
    code = _run("diagnose", str(tmp / "w.pt"), "--model", f"{MOD}:build", "--train", f"{MOD}:train", "--test", f"{MOD}:test",
                "--init", str(tmp / "init.pt"), "--name", "cli", "--k", "2", "--home", str(home))
    assert code == 0, capsys.readouterr().err
    assert "next: genlab report 1" in capsys.readouterr().out
    api = genlab.diagnose(model, F.cross_entropy, mod.train(), mod.test(), mod.build().state_dict(), k=2)
    with Store(home) as st:
        (run,) = st.runs()
        assert run["experiment"] == "diagnose:cli"
        final = st.final_metrics(run["id"])
    for key in ("sharpness", "eig1", "trace", "distance", "test_loss", "margin_train.error", "tail_index"):
        assert final[key] == pytest.approx(api.scalars[key], rel=1e-6), key


@pytest.mark.parametrize("args, starts", [
    (["--model", "nodots"], "--model: got 'nodots'; give module:function"),
    (["--model", "no_such_module_xyz:build"], "--model: cannot import 'no_such_module_xyz'"),
    (["--model", f"{MOD}:nothing"], f"--model: module '{MOD}' has no 'nothing'"),
    (["--model", f"{MOD}:VALUE"], f"--model: {MOD}:VALUE is a int, not a function"),
    (["--model", f"{MOD}:three"], f"--model: {MOD}:three() returned a int"),
    (["--model", f"{MOD}:other"], "WEIGHTS: does not fit the model built by --model"),
    (["--train", f"{MOD}:wide"], "train_data: the model cannot take this data"),
    (["--train", f"{MOD}:broken"], f"--train: {MOD}:broken() raised RuntimeError: no data here"),
    (["--loss", "hinge"], "--loss: got 'hinge'; allowed: cross_entropy, mse"),
    (["WEIGHTS=pickle.pt"], "WEIGHTS: cannot read"),
    (["WEIGHTS=list.pt"], "WEIGHTS: "),
    (["WEIGHTS=junk.pt"], "WEIGHTS: cannot read"),
    (["WEIGHTS=missing.pt"], "WEIGHTS: no file"),
    (["--init", "pickle.pt"], "--init: cannot read"),
])
def test_bad_input_one_line_exit_2_nothing_written(env, capsys, args, starts):
    tmp, _, _ = env
    weights = "w.pt"
    opts = {"--model": f"{MOD}:build", "--train": f"{MOD}:train"}
    extra = []
    for i in range(0, len(args), 2) if not args[0].startswith("WEIGHTS=") else []:
        if args[i] == "--init":
            extra += ["--init", str(tmp / args[i + 1])]
        else:
            opts[args[i]] = args[i + 1]
    if args[0].startswith("WEIGHTS="):
        weights = args[0].split("=", 1)[1]
    argv = ["diagnose", str(tmp / weights)] + [x for kv in opts.items() for x in kv] + extra + ["--home", str(tmp / "home")]
    assert _run(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"genlab: error: {starts}"), err
    assert len(err.splitlines()) == 1
    assert not (tmp / "home").exists()
