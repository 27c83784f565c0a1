"""Fuzz: generated bad values for every field of every registered experiment, and hostile
``--set``/YAML text, are refused with one InputError line — never a traceback, never accepted.

Iterates over the registry, so experiments added later are covered. Default run small;
``GENLAB_FUZZ_EXAMPLES=N`` for a long run (see tests/_fuzz.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from _fuzz import CONTROL, FUZZ, MARKUP, hostile_text, huge_ints, nested, non_finite
from hypothesis import assume, given
from hypothesis import strategies as st

from genlab.config import ExperimentConfig, _scale_caps, build_config, load_yaml, parse_assignments, parse_value
from genlab.errors import InputError
from genlab.experiments import registry

NAMES = list(registry())


def _kind(cls: type[ExperimentConfig], name: str) -> str:
    default = cls.model_fields[name].get_default(call_default_factory=True)
    for kind in (bool, int, float, str):
        if type(default) is kind:
            return kind.__name__
    return "list" if isinstance(default, (list, tuple)) else "other"


def _allows_inf(cls: type[ExperimentConfig], name: str) -> bool:
    return any(getattr(m, "allow_inf_nan", None) for m in cls.model_fields[name].metadata)


def bad_values(cls: type[ExperimentConfig], name: str) -> st.SearchStrategy[Any]:
    """Values field ``name`` must refuse, by the field's kind."""
    kind = _kind(cls, name)
    junk = st.one_of(hostile_text.filter(lambda t: _not_a_number(t)), _containers, st.none())
    cap, _ = _scale_caps(cls, name)
    if kind == "bool":
        return st.one_of(st.integers(min_value=2), st.floats(allow_nan=True).filter(lambda x: x not in (0, 1)),
                         hostile_text.filter(lambda t: t.strip().lower() not in _BOOL_WORDS), _containers)
    if kind == "int":
        limit = cls.model_fields[name]
        over = st.integers(min_value=_upper(limit, cap) + 1, max_value=10**40)
        return st.one_of(junk, non_finite, over, huge_ints.filter(lambda v: v > _upper(limit, cap) or v < 0),
                         st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)))
    if kind == "float":
        huge = st.floats(min_value=1e16, max_value=1e300).map(lambda x: x * (1 if x > 1e150 else -1))
        return st.one_of(junk, huge, st.just(math.nan)) if _allows_inf(cls, name) else st.one_of(junk, huge, non_finite)
    if kind == "list":
        return st.one_of(
            st.just([]),
            hostile_text.filter(lambda t: _not_a_number(t) and "," not in t),
            st.lists(non_finite, min_size=1, max_size=3),
            st.lists(st.sampled_from([1e30, -1e300, 10**30]), min_size=1, max_size=3),
            st.lists(st.lists(st.integers(), min_size=1, max_size=2), min_size=1, max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
            st.lists(st.sampled_from(MARKUP + CONTROL), min_size=1, max_size=2),
        )
    # str / Literal / other: text that is no field's valid choice (a NUL or an escape inside)
    return st.one_of(st.builds(lambda t, c: t + c, hostile_text, st.sampled_from(CONTROL)), _containers, st.integers(), non_finite)


_containers = st.one_of(st.lists(nested(), min_size=1, max_size=3), st.dictionaries(st.text(max_size=3), nested(), min_size=1, max_size=3))
_BOOL_WORDS = {"0", "1", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "off", ""}


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except (ValueError, OverflowError):
        return text.strip().lower() not in _BOOL_WORDS
    return False


def _upper(field: Any, cap: int) -> int:
    for m in field.metadata:
        if getattr(m, "le", None) is not None:
            return int(m.le)
        if getattr(m, "lt", None) is not None:
            return int(m.lt) - 1
    return cap


def _one_line(exc: InputError) -> str:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert len(text) < 2000
    return text


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_every_field_refuses_generated_bad_values(name: str, data: st.DataObject) -> None:
    cls = registry()[name].Config
    field = data.draw(st.sampled_from(sorted(cls.model_fields)), label="field")
    value = data.draw(bad_values(cls, field), label="value")
    with pytest.raises(InputError) as info:
        build_config(cls, "quick", {field: value})
    text = _one_line(info.value)
    assert field in text or "config:" in text, text  # names the field (or the rule linking fields)


@pytest.mark.parametrize("name", NAMES)
def test_every_integer_field_has_an_upper_bound(name: str) -> None:
    """10**30 (the campaign's value) is refused by every integer field, in a list too."""
    cls = registry()[name].Config
    for field in cls.model_fields:
        kind = _kind(cls, field)
        default = cls.model_fields[field].get_default(call_default_factory=True)
        if kind == "int":
            values = [10**30]
        elif kind == "list" and default and all(type(v) is int for v in default):
            values = [[10**30] + list(default)[1:]]
        else:
            continue
        for v in values:
            with pytest.raises(InputError):
                build_config(cls, "quick", {field: v})


@FUZZ
@given(text=st.one_of(
    st.text(max_size=60),
    st.sampled_from(["9" * 5000, "[" * 5000 + "]" * 5000, "{a: " * 3000, "&a [*a, *a]", "!!python/object:os.system x",
                     "1e999", "-.inf", ".nan", "0x" + "f" * 5000, "[1, [2, [3]]]", "a,b,,c", "'unterminated", "\x00"]),
    st.builds(lambda a, b: a + b, st.sampled_from(["[", "{", "- ", "? ", "!!", "&x ", "*x"]), st.text(max_size=20)),
))
def test_set_text_is_parsed_or_refused_in_one_line(text: str) -> None:
    try:
        parse_value(text)
    except InputError as exc:
        _one_line(exc)


@FUZZ
@given(name=st.sampled_from(NAMES), key=st.one_of(st.sampled_from(["lr", "seed", "n", "steps"]), hostile_text),
       text=st.one_of(st.text(max_size=30), st.sampled_from(["9" * 5000, "[" * 3000, "nan", "inf", "[]", "{}", "1e400"])))
def test_set_assignments_build_or_fail_in_one_line(name: str, key: str, text: str) -> None:
    """Whatever ``--set KEY=TEXT`` holds, building the config either succeeds or is one InputError."""
    cls = registry()[name].Config
    try:
        build_config(cls, "quick", parse_assignments([f"{key}={text}"]))
    except InputError as exc:
        _one_line(exc)


YAML_CASES = {
    "not utf-8": b"lr: \xff\xfe\x00bad\n",
    "latin-1": "lr: caf\xe9\n".encode("latin-1"),
    "huge int": b"n: " + b"9" * 5000 + b"\n",
    "deep brackets": b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep mappings": b"x: " + b"{a: " * 2000 + b"1" + b"}" * 2000 + b"\n",
    "billion laughs": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                      b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
    "recursive alias": b"x: &a [*a]\n",
    "python tag": b"x: !!python/object/apply:os.system ['true']\n",
    "list at top": b"- 1\n- 2\n",
    "scalar at top": b"42\n",
    "tab indent": b"a:\n\t- 1\n",
    "unterminated": b"a: 'x\n",
    "non-string key": b"1: 2\n",
    "null key": b"~: 2\n",
    "nan": b"lr: .nan\n",
    "inf": b"lr: .inf\n",
    "bad field": b"no_such_field: 1\n",
    "markup key": b"'[/x]': 1\n",
    "control chars": b"lr: \"\\x1b[31m\"\n",
    "empty list": b"search_k: []\n",
    "too big": b"# " + b"x" * 1_100_000 + b"\n",
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_malformed_yaml_is_one_line(case: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(YAML_CASES[case])
    cls = registry()["deep-linear"].Config
    with pytest.raises(InputError) as info:
        overrides = load_yaml(path)
        if case == "empty list":
            cls = registry()["forgetting"].Config
        build_config(cls, "quick", overrides)
    _one_line(info.value)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_random_yaml_bytes_load_or_fail_in_one_line(raw: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("yaml") / "c.yaml"
    path.write_bytes(raw)
    try:
        overrides = load_yaml(path)
        build_config(registry()["deep-linear"].Config, "quick", overrides)
    except InputError as exc:
        _one_line(exc)
