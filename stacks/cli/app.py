"""The `genai-stack` Typer application and what its commands share: consoles, errors, JSON output."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from genai_stack.config import Profile

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


def load_or_fail(name_or_path: str) -> Profile:
    """The profile, or its errors (file, field, rule) as the command's failure."""
    from genai_stack.config import ProfileError, load_profile  # the profile models, on first use

    try:
        return load_profile(name_or_path)
    except ProfileError as error:
        fail(str(error))


def print_json(document: Any) -> None:
    """Machine-readable output on stdout, nothing else on it."""
    typer.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


# How a check's status looks in a table (doctor's and smoke's statuses).
STATUS_STYLE = {
    "ok": "green",
    "pass": "green",
    "warn": "yellow",
    "skip": "yellow",
    "fail": "bold red",
}


def report_checks(
    results: Sequence[Any],
    *,
    command: str,
    profile: Any,
    json_output: bool,
    verdict: str,
    clear: str,
    failed_message: str,
) -> None:
    """The results of doctor's or smoke's checks (each with check, status, detail): JSON with
    `verdict` true when none failed, or a table and a closing line; exit status 1 when one failed."""
    failed = any(r.status == "fail" for r in results)
    if json_output:
        print_json(
            {
                "profile": profile.name,
                "region": profile.region,
                verdict: not failed,
                "checks": [{"check": r.check, "status": r.status, "detail": r.detail} for r in results],
            }
        )
    else:
        from rich.table import Table

        table = Table(title=f"genai-stack {command} {profile.name} ({profile.region})")
        for column in ("Check", "Status", "Found / what to do"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(r.check, f"[{STATUS_STYLE[r.status]}]{r.status}[/]", r.detail)
        console.print(table)
        console.print(failed_message if failed else clear)
    if failed:
        raise typer.Exit(EXIT_FOUND)
