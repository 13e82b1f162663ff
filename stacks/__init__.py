"""genai-stack: profiles, the stage that composes stacks, the stacks and their reusable constructs.

The import package is `genai_stack`. In the repository its modules are this folder (`stacks/`), the
Lambda functions' sources `lambdas/` (`genai_stack.lambdas`) and the built-in profiles `profiles/`
(package data); pyproject.toml maps them (`[tool.setuptools] package-dir`), and the wheel holds them
as `genai_stack/`, `genai_stack/lambdas/` and `genai_stack/profiles/`. docs/architecture.md says why.
"""

from __future__ import annotations

from pathlib import Path

if __name__ != "genai_stack":  # pragma: no cover - a wrong import, caught before anything loads twice
    raise ImportError(
        f"{Path(__file__).parent} is the source of the `genai_stack` package: import genai_stack "
        f"(not {__name__}), after `pip install -e .` or `make setup`"
    )

PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """A folder the wheel holds inside the package and the repository beside it."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


# The built-in profiles (and profile.schema.json), and the Lambda functions' sources.
PROFILES_DIR = _shipped("profiles")
LAMBDAS_DIR = _shipped("lambdas")
