"""The registry: experiments live in one subpackage per theme; every experiment has a theme."""

from __future__ import annotations

import importlib

from genlab.experiments import registry, themes


def test_every_experiment_lives_in_a_theme_subpackage():
    reg, th = registry(), themes()
    assert len(th) >= 7
    listed = [name for t in th.values() for name in t.experiments]
    assert sorted(listed) == sorted(reg)  # each experiment in exactly one theme
    for name, exp in reg.items():
        assert exp.theme in th and name in th[exp.theme].experiments
        module = importlib.import_module(type(exp).__module__)
        assert module.__name__.split(".")[2] == exp.theme  # genlab.experiments.<theme>.<module>


def test_themes_have_titles_and_are_ordered():
    orders = [t.order for t in themes().values()]
    assert orders == sorted(orders)
    assert all(t.title and t.title != t.key for t in themes().values())
    # registry order follows theme order
    theme_seq = [exp.theme for exp in registry().values()]
    keys = list(themes())
    assert [keys.index(t) for t in theme_seq] == sorted(keys.index(t) for t in theme_seq)
