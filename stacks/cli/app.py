"""The `genai-stack` Typer application and what its commands share: consoles, errors, JSON output."""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

app = typer.Typer(
    name="genai-stack",
    help=(
        "Choose, review and reuse genai-stack profiles without reading the code: list the built-in "
        "profiles, validate your own, plan a profile's stacks, estimate its monthly cost, get an "
        "approach recommended for a workload, diff the synthesized templates for a pull request, and check "
        "an AWS account for what a profile needs before the first deploy."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

console = Console()
errors = Console(stderr=True)

# Exit statuses: 0 success, 1 "found something" (profile errors, template differences), 2 usage/other errors.
EXIT_FOUND = 1
EXIT_ERROR = 2


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print a one-paragraph error on stderr and exit; never a stack trace for expected failures."""
    # The message is plain text: brackets in it ("[tool.genai-stack]", a JSON list) are not markup.
    errors.print(f"[bold red]genai-stack:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(document: Any) -> None:
    """Machine-readable output on stdout, nothing else on it."""
    typer.echo(json.dumps(document, indent=2, sort_keys=True, default=str))
