"""What the report knows about each experiment besides its runs: title, paper, theme, claim
notes and figure captions. Built from the registry by the CLI; the report itself imports no
experiment (and so no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from genlab.notes import ClaimNote, NoteLike, match_note


@dataclass(frozen=True)
class ExperimentInfo:
    """One experiment as the report shows it."""

    title: str = ""
    paper: str = ""
    theme: str = "other"
    theme_title: str = "Other runs"
    theme_order: int = 10_000
    notes: Mapping[str, NoteLike] = field(default_factory=dict)
    captions: Mapping[str, str] = field(default_factory=dict)

    def note(self, claim: str) -> ClaimNote | None:
        return match_note(self.notes, claim)


def registry_info() -> dict[str, ExperimentInfo]:
    """Every registered experiment's info by name (imports the experiments)."""
    from genlab.experiments import registry, themes

    th = themes()
    out = {}
    for name, exp in registry().items():
        t = th.get(exp.theme)
        out[name] = ExperimentInfo(
            title=exp.title, paper=exp.paper, theme=exp.theme, theme_title=t.title if t else exp.theme,
            theme_order=t.order if t else 10_000, notes=dict(exp.notes), captions=dict(exp.captions),
        )
    return out


__all__ = ["ExperimentInfo", "registry_info"]
