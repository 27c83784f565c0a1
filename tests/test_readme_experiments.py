"""The README's experiments table lists every registered experiment once, under its theme's title,
in the atlas's order (the registry is the reference)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_table_lists_every_experiment_under_its_theme_in_atlas_order():
    from genlab.experiments import themes

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("| name | paper | claims checked |")
    block = text[start: text.index("\n\n", start)].splitlines()[2:]
    listed: list[tuple[str, str]] = []  # (theme title, experiment name) in table order
    title = ""
    for row in block:
        if m := re.match(r"\| \*\*(.+?)\*\* \|", row):
            title = m.group(1)
        elif m := re.match(r"\| `([^`]+)` \|", row):
            listed.append((title, m.group(1)))
    expected = [(t.title, n) for t in themes().values() for n in t.experiments]
    assert sorted(listed) == sorted(expected)  # every experiment once, each under its own theme
    assert [t for t, _ in listed] == [t for t, _ in expected]  # themes in the atlas's order
