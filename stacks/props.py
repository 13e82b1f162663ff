"""Checks of a construct's props at construction, for apps that use the constructs without a profile:
the same error quality as a profile's (the construct, the prop, the value and what is allowed)."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from genai_stack.profile.errors import _describe

C = TypeVar("C", bound=type)


class PropsError(ValueError):
    """Props a construct cannot use: one line per problem, each naming the construct and the prop."""

    def __init__(self, owner: str, problems: Sequence[str]) -> None:
        self.owner = owner
        self.problems = list(problems)
        super().__init__("\n".join(f"{owner}: {problem}" for problem in self.problems))


_MAPPING = re.compile(r"\b(dict|Mapping|Any)\b")


def refuse_dicts(cls: C) -> C:
    """Wrap `cls.__init__` so that a dict given for a prop typed as anything but a mapping (a settings
    model, a dataclass, a construct) is a TypeError that names the type to build, not an
    AttributeError deep inside the construct."""
    init = cls.__init__
    annotations = {
        name: str(parameter.annotation)
        for name, parameter in inspect.signature(init).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }

    @functools.wraps(init)
    def checked(self, scope, construct_id, *args: Any, **props: Any) -> None:
        for name, value in props.items():
            annotation = annotations.get(name, "")
            if isinstance(value, dict) and annotation and not _MAPPING.search(annotation):
                raise TypeError(
                    f"{cls.__name__}({construct_id!r}): {name} is a dict; it takes {annotation} "
                    f"(build one, e.g. {annotation.split('|')[0].split('[')[0].strip()}(...))"
                )
        init(self, scope, construct_id, *args, **props)

    cls.__init__ = checked
    return cls


def validated(
    owner: str, model: type[BaseModel], values: dict[str, Any], renamed: dict[str, str] | None = None
):
    """`values` checked by the profile section `model` (its rules and its messages), or a PropsError
    that names each prop (`renamed`: the construct's name of a section field where they differ)."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            line = _describe(detail)
            field = str(detail["loc"][0]) if detail["loc"] else ""
            if field in (renamed or {}):
                line = renamed[field] + line.removeprefix(field)
            problems.append(line)
        raise PropsError(owner, problems) from None
