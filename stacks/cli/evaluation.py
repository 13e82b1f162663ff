"""`genai-stack eval plan PROFILE [--base REF]`: the evaluation jobs of one run of the profile's
evaluations, their metrics and estimated cost, the prompt templates' offline checks, and, against a
git ref, the jobs a change re-runs (stacks/planning/evaluation.py; docs/evaluation.md). Offline."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from genai_stack.cli.app import app, console, fail, load_or_fail, print_json
from genai_stack.cli.diff import DiffError, base_worktree, repository_root, resolve_ref
from genai_stack.cli.plan import JsonOption, ProfileArgument
from genai_stack.config import ProfileError, load_profile, resolve_profile_path
from genai_stack.planning.evaluation import Plan, plan, triggered

eval_app = typer.Typer(help="Evaluations as code (docs/evaluation.md).", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


def base_plan(name_or_path: str, ref: str) -> Plan | None:
    """The plan of the same profile file at `ref` (a git worktree of it), or None when the file or
    its evaluation section does not exist there (every job is then new)."""
    path = resolve_profile_path(name_or_path).resolve()
    try:
        root = repository_root(path.parent)
        commit = resolve_ref(root, ref)
        with tempfile.TemporaryDirectory() as scratch, base_worktree(root, commit, Path(scratch)) as tree:
            then = tree / path.relative_to(root)
            if not then.is_file():
                return None
            try:
                return plan(load_profile(str(then)))
            except ProfileError as error:
                fail(f"the profile at {ref} does not load: {error}")
    except DiffError as error:
        fail(str(error))


@eval_app.command("plan")
def plan_command(
    profile: ProfileArgument,
    base: Annotated[
        str | None,
        typer.Option(help="A git ref: list the jobs whose inputs changed since it (a pull request's base)"),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The evaluation jobs of a run: what each evaluates, on which set, with which metrics and judge,
    the tokens and USD it costs at the profile's prices, and what re-runs it (the set, the prompt,
    the guardrail, the knowledge base, the alias's target).

    [b]Example[/]: genai-stack eval plan managed-api --base origin/main
    """
    current = plan(load_or_fail(profile))
    if base is not None:
        before = base_plan(profile, base)
        current.triggered = triggered(before or Plan(current.profile), current)
    if json_output:
        print_json(current.as_dict())
        return
    if not current.jobs:
        console.print(f"{current.profile}: no evaluation section: nothing is evaluated")
        return
    table = Table(title=f"{current.profile}: evaluation jobs of one run", show_lines=False)
    for column in ("Job", "Set", "Rows", "Metrics", "Judge", "Tokens in/out (model; judge)", "USD"):
        table.add_column(column, justify="right" if column in ("Rows", "USD") else "left")
    for job in current.jobs:
        name = f"[bold]{job.name}[/]" if job.name in current.triggered else job.name
        model_tokens = f"{job.input_tokens:,}/{job.output_tokens:,}"
        tokens = f"{model_tokens}; {job.judge_input_tokens:,}/{job.judge_output_tokens:,}"
        metrics = ", ".join(m.removeprefix("Builtin.") for m in job.metrics)
        table.add_row(name, job.set, str(job.rows), metrics, job.judge or "-", tokens, f"{job.usd:.4f}")
    table.add_section()
    table.add_row("run", "", "", "", "", "", f"{current.usd:.4f}")
    console.print(table)
    if base is not None:
        changed = ", ".join(current.triggered) or "none"
        console.print(f"re-run by the change since {base}: {changed}", highlight=False)
    when = {
        "traffic": "runs on the schedule (a deployment changes no logged call)",
        "gate": "runs with its training pipeline, on each candidate",
    }
    for job in current.jobs:
        inputs = ", ".join(job.depends_on)
        runs = when.get(job.kind, f"re-runs when these change: {inputs}")
        console.print(f"{job.name} {runs}", highlight=False)
        for note in job.notes:
            console.print(f"  [yellow]note:[/] {note}", highlight=False)
    for check in current.prompt_checks:
        console.print(f"[red]prompt check:[/] {check}", highlight=False)
    console.print("Token estimates and their assumptions: docs/evaluation.md, Cost.")
    if current.prompt_checks:
        raise typer.Exit(1)
