"""Experiment configurations: pydantic models with presets, ``--set`` overrides and YAML files.

Every experiment's config subclasses :class:`ExperimentConfig`. Validation errors are turned
into one line that names the field and what is allowed (:class:`genlab.errors.InputError`).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Mapping

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from genlab.errors import InputError, did_you_mean


def _positive_sorted(values: list[float]) -> list[float]:
    bad = [v for v in values if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ValueError(f"every step size must be a finite number > 0, got {bad[0]}")
    return sorted(values)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value


StepSizes = Annotated[list[float], BeforeValidator(_as_list), AfterValidator(_positive_sorted)]
"""A list of step sizes (one number is a list of one): each finite and > 0, kept sorted ascending."""


class ExperimentConfig(BaseModel):
    """Base of every experiment config: unknown keys are refused, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = Field(0, ge=0, description="seed of every random draw in the run")

    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        """Named overrides of the defaults; every experiment has ``quick`` and ``full``."""
        return {"quick": {}, "full": {}}


def config_hash(config: BaseModel) -> str:
    """Stable hash of a config's values (sorted JSON), used to recognise identical runs."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_value(text: str) -> Any:
    """Parse the value of ``--set key=value``: YAML scalars and lists; ``a,b,c`` is a list."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and "," in value:
        return [parse_value(part.strip()) for part in value.split(",") if part.strip()]
    return value


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into a dict; a malformed item is an InputError."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set: expected key=value, got {item!r}")
        out[key] = parse_value(value.strip())
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of config values with ``yaml.safe_load``."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"--config: cannot read {str(p)!r}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"--config: {str(p)!r} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"--config: {str(p)!r} must hold a mapping of key: value, got {type(data).__name__}")
    return data


def _describe_error(cls: type[ExperimentConfig], err: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in err.get("loc", ())) or "config"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(cls.model_fields))
        return f"unknown key {loc!r};{did_you_mean(loc, list(cls.model_fields))} allowed keys: {allowed}"
    got = err.get("input")
    return f"field {loc!r}: {err.get('msg', 'invalid value')} (got {got!r})"


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
