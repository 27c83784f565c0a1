"""Run one experiment into the store: config → run → checks → figures, each step committed.

The config is validated before anything is written. SIGTERM is turned into an interruption
(the run is marked ``interrupted``); SIGKILL leaves the run ``running`` in the store, and the
store reports it ``interrupted`` once its process is gone.
"""

from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch

from genlab.config import ExperimentConfig, config_hash
from genlab.experiments import get_experiment
from genlab.experiments._base import run_status
from genlab.recorder import Recorder
from genlab.store import Store, Verdict


@dataclass
class RunOutcome:
    run_id: int
    status: str
    verdicts: list[Verdict]
    error: str | None = None


class _Interrupted(BaseException):
    pass


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _save_provenance(recorder: Recorder, name: str, exp: Any, config: ExperimentConfig, preset: str | None) -> None:
    """Versions and the reproducing command beside the run (``provenance.json``)."""
    from genlab.config import build_config
    from genlab.provenance import collect

    try:
        baseline = build_config(exp.Config, preset).model_dump(mode="json")
    except Exception:  # a preset that does not validate alone: set every key instead
        baseline = None
    recorder.save_json("provenance.json", collect(name, preset, config.model_dump(mode="json"), baseline), kind="provenance")


def execute(
    name: str,
    config: ExperimentConfig,
    store: Store,
    preset: str | None = None,
    sweep: str | None = None,
    progress_factory: Callable[[str, int], Any] | None = None,
) -> RunOutcome:
    """Run experiment ``name`` with a validated ``config``; record everything in ``store``.

    An exception inside the experiment marks the run ``failed`` (with the traceback) and is
    returned, not raised; an interruption (SIGINT/SIGTERM) marks it ``interrupted`` and re-raises
    ``KeyboardInterrupt``.
    """
    exp = get_experiment(name)
    run_id = store.create_run(
        name, config.model_dump(mode="json"), config_hash(config), config.seed, preset=preset, sweep=sweep
    )
    recorder = Recorder(store, run_id, progress_factory=progress_factory)
    _save_provenance(recorder, name, exp, config, preset)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        torch.manual_seed(config.seed)  # for any library code that draws from the global generator
        result = exp.run(config, recorder)
        recorder.flush()
        recorder.save_json("result.json", result)
        verdicts = exp.checks(config, result)
        store.add_checks(run_id, verdicts)
        for fname, fig in exp.figures(config, result).items():
            recorder.save_figure(fname, fig)
            import matplotlib.pyplot as plt

            plt.close(fig)
        status = run_status(result)
        store.finish_run(run_id, status)
        return RunOutcome(run_id, status, verdicts)
    except (KeyboardInterrupt, _Interrupted) as exc:
        recorder.flush()
        store.finish_run(run_id, "interrupted", error=f"interrupted ({exc or 'SIGINT'})")
        raise KeyboardInterrupt from None
    except Exception as exc:  # a failing experiment is a recorded result; the caller goes on
        try:
            recorder.flush()
        except Exception:
            pass
        store.finish_run(run_id, "failed", error="".join(traceback.format_exception(exc)))
        return RunOutcome(run_id, "failed", [], error=f"{type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous)
