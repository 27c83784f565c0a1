"""Experiment configurations: pydantic models with presets, ``--set`` overrides and YAML files.

Every experiment's config subclasses :class:`ExperimentConfig`. Validation errors are turned
into one line that names the field and what is allowed (:class:`genlab.errors.InputError`).
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Iterator, Mapping

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from genlab.errors import InputError, did_you_mean

SEED_MAX = 2**32 - 1
"""Largest seed: numpy's legacy generators take seeds below 2**32, and experiments derive
per-member seeds as ``seed * 100_003 + k``, which must stay below torch's 2**64."""
SCALE_FACTOR = 10
"""An integer (or a list length) without its own bound may be at most this many times the
largest value in the field's default and presets (and at least :data:`SCALE_FLOOR`)."""
SCALE_FLOOR = 1000
FLOAT_MAX = 1e15
"""Largest magnitude of a float field: far beyond any meaningful step size, scale or tolerance,
and small enough that its square stays finite even in float32 (a larger value would only
overflow inside the run)."""
MAX_TEXT = 10_000
"""Longest ``--set`` value (characters) and string value accepted."""
MAX_YAML_BYTES = 1_000_000
MAX_DEPTH = 16
"""Deepest nesting of lists/mappings in a parsed value."""
MAX_NODES = 100_000


def _positive_sorted(values: list[float]) -> list[float]:
    bad = [v for v in values if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ValueError(f"every step size must be a finite number > 0, got {bad[0]}")
    return sorted(values)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value


StepSizes = Annotated[list[float], BeforeValidator(_as_list), AfterValidator(_positive_sorted)]
"""A list of step sizes (one number is a list of one): each finite and > 0, kept sorted ascending."""


PositiveInts = list[PositiveInt]
"""A list of integers ≥ 1 (sizes, widths, counts)."""
Fractions = list[Annotated[float, Field(gt=0, le=1)]]
"""A list of fractions in (0, 1]."""
PositiveFloats = list[Annotated[float, Field(gt=0)]]
NonNegativeFloats = list[Annotated[float, Field(ge=0)]]
UnitIntervals = list[Annotated[float, Field(ge=0, le=1)]]
"""A list of numbers in [0, 1]."""


def _walk(value: Any) -> Iterator[Any]:
    """Every scalar inside nested lists/tuples/dicts."""
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    else:
        yield value


def _largest_int(value: Any) -> int:
    ints = [abs(v) for v in _walk(value) if isinstance(v, int) and not isinstance(v, bool)]
    return max(ints, default=0)


def _longest_list(value: Any) -> int:
    return len(value) if isinstance(value, (list, tuple)) else 0


class ExperimentConfig(BaseModel):
    """Base of every experiment config: unknown keys are refused, values are validated.

    Rules every field follows unless it says otherwise (so that a value is refused before
    anything is written instead of failing inside the run):

    - floats are finite (a field that gives infinity a meaning declares ``allow_inf_nan=True``)
      and at most ``FLOAT_MAX`` in magnitude;
    - an integer (also inside a list) without its own upper bound is at most
      ``SCALE_FACTOR`` × the largest value of its default and presets (at least ``SCALE_FLOOR``):
      the scale the experiment was sized for in memory and time; a field declares ``le=`` to
      set its own;
    - a list is not empty (unless the field's ``json_schema_extra`` has ``"allow_empty": True``)
      and at most ``SCALE_FACTOR`` × its longest preset length (at least ``SCALE_FLOOR``) long;
    - a string is at most ``MAX_TEXT`` characters.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    seed: int = Field(0, ge=0, le=SEED_MAX, description="seed of every random draw in the run")

    @field_validator("*", mode="after")
    @classmethod
    def _generic_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        if name is None or name not in cls.model_fields:
            return value
        field = cls.model_fields[name]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        int_cap, len_cap = _scale_caps(cls, name)
        if isinstance(value, (list, tuple)):
            if not value and not extra.get("allow_empty"):
                raise ValueError("must not be empty")
            if len(value) > len_cap:
                raise ValueError(f"at most {len_cap} values allowed")
        if not _has_upper_bound(field):
            for v in _walk(value):
                if isinstance(v, int) and not isinstance(v, bool) and abs(v) > int_cap:
                    raise ValueError(
                        f"at most {int_cap} ({SCALE_FACTOR}x the largest preset value: the scale this "
                        f"experiment is sized for)"
                    )
        for v in _walk(value):
            if isinstance(v, str) and len(v) > MAX_TEXT:
                raise ValueError(f"text longer than {MAX_TEXT} characters")
            if isinstance(v, float) and abs(v) > FLOAT_MAX:
                raise ValueError(f"magnitude at most {FLOAT_MAX:g}")
        return value

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        """Named overrides of the defaults; every experiment has ``quick`` and ``full``."""
        return {"quick": {}, "full": {}}


def _has_upper_bound(field: Any) -> bool:
    return any(getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None for m in field.metadata)


@lru_cache(maxsize=None)
def _scale_caps(cls: type[ExperimentConfig], name: str) -> tuple[int, int]:
    """(largest integer, longest list) allowed in field ``name`` of ``cls`` (see ExperimentConfig)."""
    field = cls.model_fields[name]
    values = [field.get_default(call_default_factory=True)]
    values += [p[name] for p in cls.presets().values() if name in p]
    biggest = max((_largest_int(v) for v in values), default=0)
    longest = max((_longest_list(v) for v in values), default=0)
    return max(SCALE_FACTOR * biggest, SCALE_FLOOR), max(SCALE_FACTOR * longest, SCALE_FLOOR)


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters (huge inputs stay one short line)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return f"an integer of more than {limit} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer past Python's digit limit, deep nesting
        return "a value too large to print"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def config_hash(config: BaseModel) -> str:
    """Stable hash of a config's values (sorted JSON), used to recognise identical runs."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_shape(value: Any, where: str) -> Any:
    """Refuse values nested deeper than MAX_DEPTH or with more than MAX_NODES elements."""
    stack, nodes = [(value, 0)], 0
    while stack:
        v, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if nodes > MAX_NODES:
            raise InputError(f"{where}: more than {MAX_NODES} values")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in (*v.keys(), *v.values()))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, depth + 1) for x in v)
    return value


def _flow_depth(text: str) -> int:
    """Deepest nesting of YAML flow brackets ``[`` / ``{`` in ``text`` (quoted text and comments
    skipped), found in one pass so that deep nesting is refused before the parser recurses."""
    depth = deepest = 0
    quote = ""
    comment = False
    for ch in text:
        if comment:
            comment = ch != "\n"
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` whose every failure (syntax, a number past Python's digit limit,
    recursion on deep nesting, bad characters) is one InputError naming ``where``."""
    if _flow_depth(text) > MAX_DEPTH:
        raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{where} is not valid YAML{line}") from None
    except RecursionError:
        raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. "Exceeds the limit (4300 digits)"
        reason = "a number too large" if "digits" in str(exc) or isinstance(exc, OverflowError) else "a value that cannot be read"
        raise InputError(f"{where}: holds {reason}") from None


def parse_value(text: str, where: str = "--set") -> Any:
    """Parse the value of ``--set key=value``: YAML scalars and lists; ``a,b,c`` is a list.

    Text that is not YAML is kept as a string (the config then says what it wanted); a value
    that YAML reads but Python cannot hold (a 5,000-digit number, deep nesting) is an InputError."""
    if len(text) > MAX_TEXT:
        raise InputError(f"{where}: value longer than {MAX_TEXT} characters")
    if _flow_depth(text) > MAX_DEPTH:
        raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, OverflowError, TypeError):
        raise InputError(f"{where}: holds a number too large (or a value that cannot be read)") from None
    if isinstance(value, str) and "," in value:
        return [parse_value(part.strip(), where) for part in value.split(",") if part.strip()]
    return _check_shape(value, where)


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into a dict; a malformed item is an InputError."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set: expected key=value, got {short_repr(item)}")
        out[key] = parse_value(value.strip(), f"--set {short_repr(key, 40)}")
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of config values with ``yaml.safe_load``; every failure (unreadable,
    not UTF-8, too big, bad YAML, too deep, a number Python cannot hold) is one InputError."""
    p = Path(path)
    name = short_repr(str(p), 200)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise InputError(f"--config: cannot read {name}: {exc.strerror or exc}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise InputError(f"--config: {name} is larger than {MAX_YAML_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"--config: {name} is not UTF-8 text (byte {exc.start})") from None
    data = _check_shape(_safe_yaml(text, f"--config: {name}"), f"--config: {name}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"--config: {name} must hold a mapping of key: value, got {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise InputError(f"--config: {name}: keys must be field names (text), got {short_repr(bad[0])}")
    return data


def _describe_error(cls: type[ExperimentConfig], err: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in err.get("loc", ())) or "config"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(cls.model_fields))
        return f"unknown key {short_repr(loc)};{did_you_mean(loc, list(cls.model_fields))} allowed keys: {allowed}"
    msg = " ".join(str(err.get("msg", "invalid value")).split()).removeprefix("Value error, ")
    if not err.get("loc"):  # a rule linking several fields: the message names them
        return f"config: {msg}"
    return f"field {short_repr(loc)}: {msg} (got {short_repr(err.get('input'))})"


def build_config(
    cls: type[ExperimentConfig],
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Defaults, then the preset, then the overrides (YAML file, ``--set``, ``--seed``), validated."""
    presets = cls.presets()
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in presets:
            raise InputError(f"preset {preset!r} unknown; allowed: {', '.join(sorted(presets))}")
        values.update(presets[preset])
    values.update(overrides or {})
    try:
        return cls(**values)
    except ValidationError as exc:
        raise InputError(_describe_error(cls, exc.errors()[0])) from None
