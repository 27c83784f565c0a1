"""What every experiment module provides.

An experiment module defines a subclass of :class:`Experiment` and exposes one instance as
``EXPERIMENT``; the registry (:mod:`genlab.experiments`) finds it. ``run`` trains and measures
and returns a JSON-able result (also stored as an artifact); ``checks`` and ``figures`` are pure
functions of the config and that result, so a report can be redrawn without rerunning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from genlab.config import ExperimentConfig
from genlab.notes import ClaimNote, NoteLike, match_note
from genlab.store import Verdict

Result = dict[str, Any]

__all__ = ["ClaimNote", "Experiment", "ExperimentConfig", "Result", "Verdict"]


class Experiment(ABC):
    """One reproducible phenomenon: its config, how to run it, what to check, what to draw."""

    name: ClassVar[str]
    title: ClassVar[str]
    paper: ClassVar[str]  # authors, year, title / arXiv id of the claim checked
    Config: ClassVar[type[ExperimentConfig]]
    theme: str = ""  # the theme subpackage it lives in; set by the registry
    # Explanations shown in the atlas, declared right after ``paper`` (see genlab.notes):
    # a distinctive part of a claim's text -> what it tests / what can make it fail / what to try,
    # and a figure's file name -> its caption naming the claims it shows.
    notes: ClassVar[dict[str, NoteLike]] = {}
    captions: ClassVar[dict[str, str]] = {}

    def note(self, claim: str) -> ClaimNote | None:
        """The explanation of ``claim`` (None when no note matches, e.g. a renamed claim)."""
        return match_note(self.notes, claim)

    def caption(self, figure: str) -> str:
        """The caption of figure file ``figure`` ('' when there is none)."""
        return self.captions.get(figure, "")

    @abstractmethod
    def run(self, config: ExperimentConfig, recorder: Any) -> Result:
        """Train and measure; record metrics through ``recorder``; return the result.

        A result with ``"status": "diverged"`` marks the whole run as diverged (a recorded
        result, not a crash)."""

    @abstractmethod
    def checks(self, config: ExperimentConfig, result: Result) -> list[Verdict]:
        """The verdicts, computed from the measurements in ``result``; failures are kept."""

    def figures(self, config: ExperimentConfig, result: Result) -> dict[str, Any]:
        """Matplotlib figures by file name (``name.png``)."""
        return {}

    def theory_curve(self, metric: str, key: str, values: list[float], config: dict[str, Any]) -> list[float] | None:
        """The theory's prediction of the final value of ``metric`` at each of ``values`` of the config
        ``key`` (every other key as in ``config``), drawn by ``genlab sweep-report`` against the swept
        key; None where the experiment has no prediction for that metric and key (the default)."""
        return None


def _members(result: Any) -> list[str]:
    """The ``status`` of every member run recorded in a result: each dict (at any depth of
    lists/dicts) that carries a string ``status``, the result itself excluded."""
    found: list[str] = []
    stack = list(result.values()) if isinstance(result, dict) else []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("status"), str):
                found.append(item["status"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def run_status(result: Result) -> str:
    """``diverged`` if the result says so, or if it records member runs and every one of them
    diverged; ``finished`` otherwise (some members diverging is a finished run that reports them)."""
    if not isinstance(result, dict):
        return "finished"
    if result.get("status") == "diverged":
        return "diverged"
    members = _members(result)
    return "diverged" if members and all(s == "diverged" for s in members) else "finished"
