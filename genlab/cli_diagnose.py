"""The ``genlab diagnose`` command: :func:`genlab.diagnose` on a saved ``state_dict``, the model
built by a Python entry point (``--model pkg.mod:build``), data from entry points too.

Bad input (an entry point that does not import or returns the wrong thing, weights that do not
load or do not fit the model, data the model cannot take) is one line naming the option, exit
code 2, nothing written. Weights are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from genlab.errors import InputError

LOSSES = ("cross_entropy", "mse")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def entry_point(spec: str, arg: str) -> Any:
    """The callable named ``module:attribute`` (the current folder is importable, as with ``python -m``)."""
    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise InputError(f"{arg}: got {spec!r}; give module:function, e.g. mypkg.models:build")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(mod)
    except Exception as e:  # the user's module failed to import
        raise InputError(f"{arg}: cannot import {mod!r} ({_first_line(e)})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"{arg}: module {mod!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"{arg}: {spec} is a {type(obj).__name__}, not a function")
    return obj


def call_entry_point(spec: str, arg: str) -> Any:
    fn = entry_point(spec, arg)
    try:
        return fn()
    except Exception as e:  # the user's builder raised
        raise InputError(f"{arg}: {spec}() raised {_first_line(e)}") from None


def load_state_dict(path: Path, arg: str) -> Mapping[str, Any]:
    import torch

    if not path.is_file():
        raise InputError(f"{arg}: no file {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or objects weights_only refuses
        raise InputError(f"{arg}: cannot read {str(path)!r} as a state_dict with weights_only=True ({_first_line(e)})") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InputError(f"{arg}: {str(path)!r} holds a {type(state).__name__}; a state_dict (name → tensor) is needed")
    return state


def fit_weights(model: Any, state: Mapping[str, Any], arg: str, load: bool = True) -> None:
    """Load ``state`` into ``model`` strictly (``load=False``: only check that it would fit); a
    mismatch is one line naming the first keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or shape:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + ([f"unexpected {', '.join(extra[:3])}"] if extra else []) \
            + ([f"{shape[0]} has shape {tuple(state[shape[0]].shape)}, the model's {tuple(own[shape[0]].shape)}"] if shape else [])
        raise InputError(f"{arg}: does not fit the model built by --model ({'; '.join(parts)})")
    if load:
        model.load_state_dict(state)


def _loss(spec: str) -> Any:
    import torch.nn.functional as F

    if spec == "cross_entropy":
        return F.cross_entropy
    if spec == "mse":
        return F.mse_loss
    if ":" in spec:
        return entry_point(spec, "--loss")
    raise InputError(f"--loss: got {spec!r}; allowed: {', '.join(LOSSES)} or module:function")


@click.command("diagnose", short_help="Diagnose a trained model (saved state_dict) into the store.")
@click.argument("weights", metavar="WEIGHTS", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "model_spec", required=True, metavar="MODULE:FUNCTION", help="builds the model (no arguments): e.g. mypkg.models:build")
@click.option("--train", "train_spec", required=True, metavar="MODULE:FUNCTION", help="returns the training data: an (inputs, targets) pair, pairs, or a DataLoader")
@click.option("--test", "test_spec", default=None, metavar="MODULE:FUNCTION", help="returns the test data (same layouts)")
@click.option("--init", "init_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="state_dict at initialization (distance from init)")
@click.option("--loss", "loss_spec", default="cross_entropy", show_default=True, help=f"{', '.join(LOSSES)} or MODULE:FUNCTION(output, target)")
@click.option("--name", default="model", show_default=True, help="the run is diagnose:NAME")
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True, help="top eigenvalues")
@click.option("--max-examples", type=click.IntRange(8, None), default=512, show_default=True, help="examples of the training data used")
@click.option("--hardest", type=click.IntRange(1, 1000), default=10, show_default=True, help="hardest examples listed (EL2N)")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help="genlab home folder (default: $GENLAB_HOME or ./genlab-runs)")
def diagnose_cmd(weights: Path, model_spec: str, train_spec: str, test_spec: str | None, init_path: Path | None,
                 loss_spec: str, name: str, k: int, max_examples: int, hardest: int, home: Path | None) -> None:
    """Diagnose the model built by --model with the weights in WEIGHTS (a saved state_dict) on the
    data of --train (and --test): spectrum, trace, per-layer sharpness, coherence, SNR, gradient-noise
    tail index, margins, hardest examples, distance from --init. One run diagnose:NAME in the store."""
    import torch

    from genlab.cli import out
    from genlab.diagnosis import diagnose
    from genlab.store import Store

    loss_fn = _loss(loss_spec)
    model = call_entry_point(model_spec, "--model")
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"--model: {model_spec}() returned a {type(model).__name__}; must return a torch.nn.Module")
    fit_weights(model, load_state_dict(weights, "WEIGHTS"), "WEIGHTS")
    init = None
    if init_path is not None:
        init = load_state_dict(init_path, "--init")
        fit_weights(model, init, "--init", load=False)
    train = call_entry_point(train_spec, "--train")
    test = call_entry_point(test_spec, "--test") if test_spec else None
    d = diagnose(model, loss_fn, train, test, init, k=k, max_examples=max_examples, hardest=hardest, name=name)
    from genlab.diagnosis.core import save_run

    with Store(home) as st:
        d.run_id = save_run(d, model, st, name, k=k, max_examples=max_examples, seed=0, has_test=test is not None,
                            has_init=init is not None)
    table = Table(title=escape(f"diagnose:{name} · run {d.run_id}"))
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, v in d.scalars.items():
        table.add_row(escape(key), f"{v:.6g}")
    out.print(table)
    from genlab.cli import _verdict_table

    out.print(_verdict_table(d.verdicts, "findings"))
    home_arg = f" --home {home}" if home else ""
    out.print(f"next: genlab report {d.run_id}{escape(home_arg)}   (spectrum, margins and EL2N figures)")
