"""`genai-stack`: the command line of the project (Typer + rich). Each module registers its commands
on `genai_stack.cli.app.app`; importing them here makes the console script see all of them."""

from __future__ import annotations

from genai_stack.cli import (  # noqa: F401 - registers the commands
    catalog,
    diff,
    doctor,
    evaluation,
    keys,
    plan,
    profiles,
    recommend,
    smoke,
    wheelhouse,
)
from genai_stack.cli.app import app


def main() -> None:
    app()
