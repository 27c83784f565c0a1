"""Claim notes and figure captions: every experiment has them, their keys still match the
experiment's claim and figure names, and a renamed claim or figure degrades to no note."""

from __future__ import annotations

import inspect

import pytest

from genlab.experiments import registry
from genlab.notes import ClaimNote, match_note


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_experiment_explains_its_claims_and_captions_its_figures(name):
    exp = registry()[name]
    source = inspect.getsource(inspect.getmodule(type(exp)))
    assert exp.notes and exp.captions, f"{name}: no claim notes or figure captions (see genlab/notes.py)"
    for key in exp.notes:  # a key that no longer occurs in the module's claims is stale
        assert key in source, f"{name}: note key {key!r} matches no claim text"
        note = exp.note(key)
        assert note is not None and note.tests and note.fails_if
    for fig, caption in exp.captions.items():
        assert f'"{fig}"' in source, f"{name}: caption for {fig!r}, a figure it does not draw"
        assert len(caption) > 20


def test_matching_is_by_text_and_degrades_gracefully():
    notes = {"slope": ("a", "b"), "slope of the fit": ClaimNote("c", "d", "e")}
    assert match_note(notes, "(a) the slope of the fit is -1").tests == "c"  # the longest key wins
    assert match_note(notes, "the slope is -1").tests == "a"
    assert match_note(notes, "a renamed claim") is None
    exp = registry()["stable-minima"]
    assert exp.note("nothing like any claim") is None and exp.caption("renamed.png") == ""
