"""An experiment's config as a table: key, type, default, allowed values, quick and full values.

What ``genlab list NAME`` prints, read from the pydantic model (its field types, defaults,
``Field`` bounds and descriptions) and the presets, so it cannot drift from what is validated.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic.fields import PydanticUndefined

from genlab.config import ExperimentConfig

_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "length ≥"), ("max_length", "length ≤"),
           ("multiple_of", "multiple of"))


def type_name(annotation: Any) -> str:
    """A readable type: ``int``, ``list[float]``, ``'a' | 'b'``, ``float | None``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if inner else getattr(origin, "__name__", str(origin))
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def allowed(field: Any) -> str:
    """The bounds a field validates (``> 0``, ``≤ 1``), its choices, or ``any`` when it has none stated."""
    parts = []
    for meta in field.metadata:
        for attr, sym in _BOUNDS:
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value:g}" if isinstance(value, (int, float)) else f"{sym} {value}")
    ann = field.annotation
    if typing.get_origin(ann) is typing.Literal:
        parts.append("one of " + ", ".join(map(str, typing.get_args(ann))))
    elif ann is bool:
        parts.append("true, false")
    if any("positive" in getattr(getattr(m, "func", None), "__name__", "") for m in field.metadata):
        parts.append("each > 0 (kept sorted)")
    return ", ".join(dict.fromkeys(parts)) or "any"


def _show(value: Any) -> str:
    if value is PydanticUndefined:
        return "(required)"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def config_rows(cls: type[ExperimentConfig]) -> list[tuple[str, str, str, str, str, str, str]]:
    """One row per key: (key, type, default, allowed, quick value, full value, description).

    A preset that leaves a key at its default shows ``·``."""
    presets = cls.presets()
    rows = []
    for key, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        quick = presets.get("quick", {})
        full = presets.get("full", {})
        rows.append((
            key, type_name(field.annotation), _show(default), allowed(field),
            _show(quick[key]) if key in quick else "·", _show(full[key]) if key in full else "·",
            field.description or "",
        ))
    return rows


__all__ = ["allowed", "config_rows", "type_name"]
