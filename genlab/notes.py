"""Explanations attached to an experiment's claims and captions of its figures.

An experiment declares, beside its ``paper``, a mapping ``notes`` from a distinctive part of
a claim's text to a :class:`ClaimNote` or a plain tuple ``(tests, fails_if, try_next)`` (what the claim tests, what can make it fail, what to
try when it fails) and a mapping ``captions`` from a figure's file name to its caption, which
names the claims it shows. Both are looked up by text, so a claim that is renamed loses its
note (and a renamed figure its caption) instead of breaking the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class ClaimNote:
    """What a claim tests, what can make it fail, and what to try when it fails."""

    tests: str
    fails_if: str
    try_next: str = ""


NoteLike = ClaimNote | tuple[str, ...]


def as_note(value: NoteLike) -> ClaimNote:
    """A :class:`ClaimNote` from itself or a tuple ``(tests, fails_if[, try_next])``."""
    return value if isinstance(value, ClaimNote) else ClaimNote(*value)


def match_note(notes: Mapping[str, NoteLike], claim: str) -> ClaimNote | None:
    """The note whose key occurs in ``claim`` (the longest such key), or None."""
    hits = [key for key in notes if key and key in claim]
    return as_note(notes[max(hits, key=len)]) if hits else None


__all__ = ["ClaimNote", "NoteLike", "as_note", "match_note"]
