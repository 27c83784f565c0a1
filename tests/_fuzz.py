"""Shared pieces of the fuzz suite: Hypothesis settings, strategies of bad values, a tree hash.

The default run is small (``FUZZ_EXAMPLES`` examples per property, a few hundred cases in all);
``GENLAB_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_*.py`` is the long run."""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("GENLAB_FUZZ_EXAMPLES", "15"))

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # a shared, loaded machine: no timing in tests
    database=None,  # nothing written into the worktree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

MARKUP = ["[/x]", "[bold]b[/bold]", "[link=file:///etc/passwd]x[/link]", "[/]", "[red", "\\[x]"]
CONTROL = ["\x00", "\x1b[31m", "\r", "\n", "\x7f", "\u202e", "\ufeff"]

hostile_text = st.one_of(
    st.text(min_size=0, max_size=40),
    st.sampled_from(MARKUP + CONTROL),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(MARKUP), st.text(max_size=10), st.sampled_from(CONTROL)),
)
"""Text with markup, control characters, unicode (never a number or a valid choice by itself
only by chance; callers filter what their field would accept)."""

huge_ints = st.one_of(
    st.integers(min_value=10**9, max_value=10**40),
    st.sampled_from([10**30, -(10**30), 2**63, 2**64, 10**4000]),
)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def nested(depth: int = 3) -> st.SearchStrategy[Any]:
    """Nested lists/dicts of junk scalars."""
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
    return st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)), max_leaves=8)


def tree_hash(root: Path) -> str:
    """Hash of a folder: every path and the bytes of every file (SQLite -wal/-shm files, which
    a reader may create and remove, are read through the database's logical dump instead)."""
    h = hashlib.sha256()
    if not root.exists():
        return "absent"
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.endswith(("-wal", "-shm")):
            continue
        h.update(rel.encode())
        if p.is_file() and p.suffix == ".sqlite":
            try:
                db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
                h.update("\n".join(db.iterdump()).encode())
                db.close()
            except sqlite3.Error:
                h.update(p.read_bytes())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()
