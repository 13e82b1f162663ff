"""`genai-stack profiles` and `genai-stack validate`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from genai_stack.cli.app import EXIT_FOUND, app, console, errors, fail, print_json
from genai_stack.config import SCHEMA_PATH, ProfileError, builtin_profile_names, load_profile
from genai_stack.planning.cost import builtin_summaries, builtin_summary


def approaches(profile) -> list[str]:
    found = []
    if profile.bedrock:
        found.append("managed API")
    if profile.inference or profile.training:
        found.append("training and tuning")
    if profile.hosting:
        found.append("self-managed")
    if profile.gateway:
        found.append("gateway")
    return found


@app.command("profiles")
def list_profiles(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """The built-in profiles: approach, stacks and estimated fixed monthly cost (no usage).

    The figures are the cost model's over each profile's synthesized templates, recorded with the
    package (`make docs-cost`); a built-in profile without a record is synthesized here.

    [b]Example[/]: genai-stack profiles --json
    """
    profiles = [load_profile(name) for name in builtin_profile_names()]
    summaries = builtin_summaries()
    missing = [profile.name for profile in profiles if profile.name not in summaries]
    if missing:
        from genai_stack.cli.synth import synthesize  # aws-cdk-lib: only when a record is missing

        with tempfile.TemporaryDirectory() as outdir, errors.status("Synthesizing " + ", ".join(missing)):
            for name in missing:
                (result,) = synthesize(name, Path(outdir) / name)
                summaries[name] = builtin_summary(result.profile, result.templates)
    rows = [
        {
            "name": profile.name,
            "description": profile.description,
            "region": profile.region,
            "approaches": approaches(profile),
            **summaries[profile.name],
        }
        for profile in profiles
    ]
    if json_output:
        print_json(rows)
        return
    table = Table(title="Built-in profiles", box=box.SIMPLE_HEAD, pad_edge=False, padding=0)
    # Names and regions are never cut (an 80-column terminal or a pipe used to show "customer-serv…"),
    # so the columns have no padding beside their separator; the stacks are named without their
    # profile prefix (customer-service-foundation -> foundation).
    table.add_column("Profile", no_wrap=True, min_width=max(len(row["name"]) for row in rows))
    table.add_column("Approaches", no_wrap=True)
    table.add_column("Region", no_wrap=True, min_width=max(len(row["region"]) for row in rows))
    table.add_column("Stacks", no_wrap=True)
    table.add_column("Fixed USD", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"],
            "\n".join(row["approaches"]) or "foundation only",
            row["region"],
            "\n".join(stack.removeprefix(f"{row['name']}-") for stack in row["stacks"]),
            f"{row['fixed_monthly_usd']:,.2f}",
        )
    console.print(table)
    console.print(
        "Stacks are named PROFILE-STACK. Fixed USD: a month of what runs with no requests; "
        "`genai-stack cost PROFILE --requests N ...` adds usage."
    )


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(help="Profile files (or built-in names) to check.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check profile files against the profile rules; exit status 1 if any has an error.

    Each error names the file, the field and what is allowed.

    [b]Examples[/]: genai-stack validate profiles/*.yaml ; genai-stack validate my-team.yaml --json
    """
    report = {}
    for name in files:
        try:
            load_profile(name)
            report[name] = []
        except ProfileError as error:
            report[name] = str(error).splitlines()  # each line names the file and the field
    if json_output:
        print_json({"valid": not any(report.values()), "files": report})
    else:
        for name, problems in report.items():
            if problems:
                errors.print(f"[bold red]✗ {name}[/]", highlight=False)
                for problem in problems:
                    errors.print(f"  {problem}", highlight=False, markup=False)
            else:
                console.print(f"[green]✓[/] {name}", highlight=False)
    if any(report.values()):
        raise typer.Exit(EXIT_FOUND)


@app.command()
def schema(
    directory: Annotated[
        Path, typer.Argument(help="Where your profile files are (default: the current directory).")
    ] = Path(),
) -> None:
    """Write the profile schema (profile.schema.json) beside your profile files, for editors.

    Every profile starts with `# yaml-language-server: $schema=profile.schema.json`, a path relative to
    the profile: a profile copied out of the package finds its schema once this file is beside it.
    The schema is the installed package's, so it matches the `genai-stack validate` you run.

    [b]Example[/]: genai-stack schema teams/
    """
    target = directory / SCHEMA_PATH.name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCHEMA_PATH, target)
    except OSError as error:
        fail(f"cannot write {target}: {error.strerror or error}")
    console.print(f"Wrote {target} (genai-stack's profile schema).", highlight=False)
