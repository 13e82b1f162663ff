"""Reading profile files: YAML with unique keys and account ids kept as text, errors by file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from genai_stack import PROFILES_DIR
from genai_stack.profile.common import ALL_PROFILES, ProfileError
from genai_stack.profile.document import Profile
from genai_stack.profile.errors import _describe

# --------------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last), and
    reads digits with a leading zero as text: PyYAML follows YAML 1.1, where `012345670123` is an
    octal number (the account id 012345670123 would become 1402433619); YAML 1.2 has no such octal."""


# Digits with a leading zero resolve as strings, checked before PyYAML's int resolver for "0".
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.yaml_implicit_resolvers["0"].insert(0, ("tag:yaml.org,2002:str", re.compile(r"^0[0-9_]+$")))


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def builtin_profile_names(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(path.stem for path in profiles_dir.glob("*.yaml"))


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _looks_like_path(name_or_path: str) -> bool:
    return name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or "\\" in name_or_path


def resolve_profile_path(name_or_path: str, profiles_dir: Path = PROFILES_DIR) -> Path:
    """A built-in profile name or a path to a user's file -> the file to read."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(name_or_path, ["file not found"])
        return path
    path = profiles_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(builtin_profile_names(profiles_dir)) or "none"
        raise ProfileError(
            name_or_path,
            [
                f"no built-in profile of that name (available: {available}, or '{ALL_PROFILES}'); "
                "to use your own file pass its path, e.g. -c profile=path/to/my-profile.yaml"
            ],
        )
    return path


def load_profile(name_or_path: str, profiles_dir: Path = PROFILES_DIR) -> Profile:
    """Read and validate one profile. Raises ProfileError naming the file, field, value and rule."""
    path = resolve_profile_path(name_or_path, profiles_dir)
    source = _display_path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ProfileError(source, [f"{where}not valid YAML: {problem}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(source, [f"cannot be read: {error}"]) from None
    if not isinstance(data, dict):
        raise ProfileError(
            source,
            [
                "a profile is a mapping of keys (name, region, budget, ...), not "
                + ("an empty file" if data is None else f"a {type(data).__name__}")
            ],
        )
    try:
        profile = Profile.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as error:
        problems = [line for e in error.errors(include_url=False) for line in _describe(e).splitlines()]
        raise ProfileError(source, problems) from None
    profile._base_dir = path.parent
    return profile


def load_profiles(selection: str | Sequence[str], profiles_dir: Path = PROFILES_DIR) -> list[Profile]:
    """`all` -> every built-in profile; otherwise one name or path, or a list of them (one synthesis of
    several profiles: `genai-stack diff -p A -p B`). Profile names must be unique."""
    if isinstance(selection, str) and selection != ALL_PROFILES:
        return [load_profile(selection, profiles_dir)]
    names_or_paths = builtin_profile_names(profiles_dir) if selection == ALL_PROFILES else list(selection)
    profiles = [load_profile(name, profiles_dir) for name in names_or_paths]
    names = [profile.name for profile in profiles]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        where = str(profiles_dir) if selection == ALL_PROFILES else ", ".join(names_or_paths)
        raise ProfileError(where, [f"profile name {', '.join(duplicates)} is used by more than one file"])
    return profiles
