"""Validation errors as people read them: the field path, the value and what is allowed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import (
    BaseModel,
)

from genai_stack.profile.common import _LOCATED

# --------------------------------------------------------------------------------------------------
# Error messages


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed validation
            text += " (key)"
        else:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _value(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class whose fields live at `loc` (used to list the allowed keys)."""
    from genai_stack.profile.document import Profile  # the root model (document imports this module)

    model: type[BaseModel] = Profile
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *get_args(annotation)] if get_origin(annotation) else [annotation]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error" and message.startswith("@"):
        lines = []
        for line in message.splitlines():
            match = _LOCATED.match(line)
            subpath, text = match.groups() if match else ("", line)
            if not subpath:
                joined = _path(loc)
            elif not loc:  # a check of the whole profile about one of its fields
                joined = subpath
            else:
                joined = _path(loc) + ("" if subpath.startswith("[") else ".") + subpath
            lines.append(f"{joined}: {text}")
        return "\n".join(lines)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see profiles/profile.schema.json"
        return f"{_path(loc)}: unknown key (allowed here: {allowed})"
    if kind == "missing":
        return f"{_path(loc)}: required but missing"
    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        if message.startswith(("is ", "lists ", "sets ")):  # about the value: show it
            return f"{_path(loc)}: {_value(error['input'])} {message}"
        if message.startswith(("names ", "needs ")):  # about the field as a whole
            return f"{_path(loc)}: {message}"
    return f"{_path(loc)}: {_value(error['input'])} is not allowed: {message[0].lower()}{message[1:]}"
