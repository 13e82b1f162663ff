"""`genai-stack diff`: the template differences a change makes, for a pull-request comment.

Every built-in profile is synthesized twice, offline: on the base ref (checked out in a temporary
`git worktree`, with that tree's own app code) and on the working tree (once, when a clean working
tree holds the base commit's files). The stacks are matched by
their hierarchical ID (`self-hosted/Hosting`) and compared with the CDK's own diff engine
(`@aws-cdk/cloudformation-diff`, through `template_diff.js`). Replacements and deletions of stateful
resources (`genai_stack.compliance.STATEFUL_RESOURCE_TYPES`) come first; a stateful logical ID that
disappears while a resource of the same type appears counts as a replacement.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from genai_stack.cli.app import EXIT_FOUND, app, errors, fail, print_json

# The first line of the Markdown: the pull-request workflow finds its own comment by it.
COMMENT_MARKER = "<!-- genai-stack-diff -->"
# GitHub refuses comments over 65,536 characters; stack diffs are cut to stay under this.
COMMENT_LIMIT = 60_000
DEFAULT_BASES = ("origin/main", "main")
SYNTH_TIMEOUT_SECONDS = 900
ENGINE_SCRIPT = Path(__file__).with_name("template_diff.js")
# Where `npm ci` put the diff engine: the repository being diffed first, then the one this code is in.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter with cwd = the tree: that tree's app.py with that tree's package. The
# tree's folders are mounted as `genai_stack` and `genai_stack.lambdas` (pyproject.toml's package-dir)
# ahead of the editable install of the working tree; a commit from before the package had that name
# imports `stacks` from the tree (PYTHONPATH). Either way this checks that the code came from the tree.
# A tree without app.py is a repository of profile files (a team's, with genai-stack installed): the
# installed package synthesizes them, the same code on both sides.
_SYNTH_BOOTSTRAP = """\
import importlib.util, json, os, pathlib, runpy, sys
root = pathlib.Path.cwd().resolve()
if not (root / "app.py").is_file():
    from aws_cdk import App
    from genai_stack.stage import FEATURE_FLAGS, add_profiles
    app = App(context=FEATURE_FLAGS)
    add_profiles(app, json.loads(os.environ["CDK_CONTEXT_JSON"])["profile"])
    app.synth()
    sys.exit(0)
sys.path.insert(0, str(root))
def mount(name, folder):
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
if "genai_stack" in (root / "app.py").read_text():
    package = mount("genai_stack", root / "stacks")
    package.lambdas = mount("genai_stack.lambdas", root / "lambdas")
else:
    import stacks as package
where = pathlib.Path(package.__file__).resolve()
if root not in where.parents:
    sys.exit(f"imported {package.__name__} from {where}, not from the tree {root}")
sys.argv = ["app.py"]
runpy.run_path(str(root / "app.py"), run_name="__main__")
"""

# What the CDK CLI adds to the context of every synth (stacks/cli/synth.py has the same for in-process use).
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}

REPLACING = frozenset({"WILL_REPLACE", "MAY_REPLACE"})
LOGICAL_ID_CHANGED = "LOGICAL_ID_CHANGED"
IMPACT_WORDS = {
    "WILL_REPLACE": "replaced",
    "MAY_REPLACE": "may be replaced",
    "WILL_DESTROY": "deleted",
    "WILL_ORPHAN": "removed from the stack (retained, no longer managed)",
    LOGICAL_ID_CHANGED: "replaced (logical ID changed)",
}


class DiffError(Exception):
    """An expected failure (bad ref, failed synth, missing tool): one clear message, exit status 2."""


# --------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized stack: its hierarchical ID (`profile/Stack`), CloudFormation name and template."""

    key: str
    artifact_id: str
    stack_name: str
    template: Path


@dataclass(frozen=True)
class ResourceChange:
    logical_id: str
    old_type: str | None
    new_type: str | None
    impact: str
    path: str | None = None
    replaced_properties: tuple[str, ...] = ()

    @property
    def resource_type(self) -> str:
        return self.old_type or self.new_type or "?"

    @property
    def kind(self) -> str:
        if self.old_type is None:
            return "added"
        if self.new_type is None:
            return "removed"
        return "replaced" if self.impact in REPLACING else "updated"


@dataclass
class StackDiff:
    key: str
    stack_name: str
    status: str  # added | removed | changed | unchanged
    difference_count: int = 0
    permissions_broadened: bool = False
    text: str = ""
    resources: list[ResourceChange] = field(default_factory=list)

    @property
    def profile(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def stack(self) -> str:
        return self.key.split("/", 1)[-1]

    def counts(self) -> dict[str, int]:
        counted = {"added": 0, "removed": 0, "updated": 0, "replaced": 0}
        for change in self.resources:
            counted[change.kind] += 1
        return counted


@dataclass(frozen=True)
class Hazard:
    """A resource the change replaces or deletes (stateful ones are the loud part of the report)."""

    profile: str
    stack: str
    stack_name: str
    logical_id: str
    resource_type: str
    impact: str
    description: str
    stateful: bool
    path: str | None = None


@dataclass
class DiffReport:
    base_ref: str
    base_commit: str
    head_commit: str
    engine: str
    profiles: list[str]
    stacks: list[StackDiff]
    hazards: list[Hazard]
    head_dirty: bool = False

    @property
    def differs(self) -> bool:
        return any(stack.status != "unchanged" for stack in self.stacks)

    @property
    def stateful(self) -> list[Hazard]:
        return [hazard for hazard in self.hazards if hazard.stateful]

    @property
    def replacements(self) -> list[Hazard]:
        return [hazard for hazard in self.hazards if not hazard.stateful]

    def summary(self) -> dict[str, int]:
        totals = {"added": 0, "removed": 0, "updated": 0, "replaced": 0}
        for stack in self.stacks:
            for kind, count in stack.counts().items():
                totals[kind] += count
        statuses = [stack.status for stack in self.stacks]
        return {
            "stacks": len(self.stacks),
            "stacks_changed": statuses.count("changed"),
            "stacks_added": statuses.count("added"),
            "stacks_removed": statuses.count("removed"),
            "resources_added": totals["added"],
            "resources_removed": totals["removed"],
            "resources_updated": totals["updated"],
            "resources_replaced": totals["replaced"],
            "stateful_replaced_or_deleted": len(self.stateful),
        }


def stack_diffs(
    base: dict[str, StackTemplate], head: dict[str, StackTemplate], engine: dict[str, dict[str, Any]]
) -> list[StackDiff]:
    """Both trees' stacks with the engine's verdict on each, by profile, then in synthesis order."""
    order = {key: index for index, key in enumerate([*head, *(key for key in base if key not in head)])}
    keys = sorted(order, key=lambda key: (key.split("/", 1)[0], order[key]))
    result = []
    for key in keys:
        verdict = engine.get(key, {})
        if key not in base:
            status = "added"
        elif key not in head:
            status = "removed"
        else:
            status = "unchanged" if verdict.get("empty", True) else "changed"
        result.append(
            StackDiff(
                key=key,
                stack_name=(head.get(key) or base[key]).stack_name,
                status=status,
                difference_count=int(verdict.get("difference_count", 0)),
                permissions_broadened=bool(verdict.get("permissions_broadened", False)),
                text=verdict.get("text", ""),
                resources=[
                    ResourceChange(
                        logical_id=change["logical_id"],
                        old_type=change.get("old_type"),
                        new_type=change.get("new_type"),
                        impact=change["impact"],
                        path=change.get("path"),
                        replaced_properties=tuple(p["name"] for p in change.get("replaced_properties", [])),
                    )
                    for change in verdict.get("resources", [])
                ],
            )
        )
    return result


def classify(stacks: Sequence[StackDiff], stateful_types: Collection[str]) -> list[Hazard]:
    """Replacements (by the engine's impact) and, for stateful types, deletions and logical-ID changes.

    A stateful resource removed while one of the same type is added in the same profile is a
    replacement: CloudFormation creates the new one empty and deletes (or, retained, orphans) the old.
    """
    added: dict[tuple[str, str], list[tuple[StackDiff, str]]] = {}
    for stack in stacks:
        for change in stack.resources:
            if change.kind == "added":
                added.setdefault((stack.profile, change.resource_type), []).append((stack, change.logical_id))
    hazards = []
    for stack in stacks:
        for change in stack.resources:
            if change.kind == "added":
                continue
            stateful = change.resource_type in stateful_types
            if change.kind == "removed":
                if not stateful:
                    continue
                successors = added.get((stack.profile, change.resource_type), [])
                if successors:
                    names = ", ".join(
                        f"`{logical_id}`" if other is stack else f"`{logical_id}` in {other.stack}"
                        for other, logical_id in successors
                    )
                    impact = LOGICAL_ID_CHANGED
                    description = (
                        f"replaced: logical ID changed, a new {change.resource_type} appears as {names}"
                    )
                elif stack.status == "removed":
                    impact = change.impact
                    fate = "orphaned (retained)" if change.impact == "WILL_ORPHAN" else "deleted"
                    description = f"stack removed from the app: {fate} when the stack is deleted"
                else:
                    impact = change.impact
                    description = IMPACT_WORDS.get(change.impact, change.impact)
            elif change.impact in REPLACING:
                impact = change.impact
                description = IMPACT_WORDS[change.impact]
                if change.replaced_properties:
                    description += " (" + ", ".join(change.replaced_properties) + " changed)"
            else:
                continue
            hazards.append(
                Hazard(
                    profile=stack.profile,
                    stack=stack.stack,
                    stack_name=stack.stack_name,
                    logical_id=change.logical_id,
                    resource_type=change.resource_type,
                    impact=impact,
                    description=description,
                    stateful=stateful,
                    path=change.path,
                )
            )
    return sorted(hazards, key=lambda h: (not h.stateful, h.profile, h.stack, h.logical_id))


def report_document(report: DiffReport) -> dict[str, Any]:
    """The report as JSON (`--json`), diff texts uncut."""
    return {
        "base": {"ref": report.base_ref, "commit": report.base_commit},
        "head": {
            "ref": "working tree",
            "commit": report.head_commit,
            "uncommitted_changes": report.head_dirty,
        },
        "engine": report.engine,
        "profiles": report.profiles,
        "differs": report.differs,
        "summary": report.summary(),
        "stateful": [asdict(hazard) for hazard in report.stateful],
        "replacements": [asdict(hazard) for hazard in report.replacements],
        "stacks": [
            {
                "id": stack.key,
                "profile": stack.profile,
                "stack": stack.stack,
                "stack_name": stack.stack_name,
                "status": stack.status,
                "difference_count": stack.difference_count,
                "permissions_broadened": stack.permissions_broadened,
                "counts": stack.counts(),
                "resources": [{**asdict(change), "kind": change.kind} for change in stack.resources],
                "diff": stack.text,
            }
            for stack in report.stacks
        ],
    }


# --------------------------------------------------------------------------------------------------
# Markdown

_CHANGE_MARK = re.compile(r"^[\s│├└─]*\[([+\-~])\]")
_TABLE_MARK = re.compile(r"^│ ([+\-]) │")
_DIFF_SIGNS = {"+": "+", "-": "-", "~": "!"}


CUT_NOTE = "… (cut here to fit the comment: `genai-stack diff --json` has all of it)"


def diff_block(text: str, limit: int | None = None) -> str:
    """The engine's text in a ```diff block, each line prefixed with +, - or ! so that GitHub colours it;
    cut at a line boundary to at most `limit` characters."""
    lines = []
    for line in text.rstrip().splitlines():
        mark = _CHANGE_MARK.match(line) or _TABLE_MARK.match(line)
        lines.append(f"{_DIFF_SIGNS[mark.group(1)] if mark else ' '} {line}".rstrip())
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    body = "\n".join(lines)
    frame = len(fence) * 2 + len("diff\n\n")
    if limit is not None and len(body) + frame > limit:
        room = limit - frame - len(CUT_NOTE) - 3
        kept: list[str] = []
        for line in lines:
            room -= len(line) + 1
            if room < 0:
                break
            kept.append(line)
        body = "\n".join([*kept, f"  {CUT_NOTE}"])
    return f"{fence}diff\n{body}\n{fence}"


def fair_shares(sizes: Sequence[int], budget: int) -> list[int]:
    """Split `budget` so that small items get all they need and large ones share the rest equally."""
    shares = [0] * len(sizes)
    remaining = max(budget, 0)
    order = sorted(range(len(sizes)), key=lambda index: sizes[index])
    for position, index in enumerate(order):
        shares[index] = min(sizes[index], remaining // (len(order) - position))
        remaining -= shares[index]
    return shares


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


TABLE_ROWS = 100


def _hazard_table(hazards: Sequence[Hazard]) -> list[str]:
    rows = ["| Profile | Stack | Logical ID | Type | Impact |", "|---|---|---|---|---|"]
    for hazard in hazards[:TABLE_ROWS]:
        rows.append(
            f"| {_cell(hazard.profile)} | {_cell(hazard.stack)} (`{hazard.stack_name}`) | "
            f"`{hazard.logical_id}` | `{hazard.resource_type}` | **{_cell(hazard.description)}** |"
        )
    if len(hazards) > TABLE_ROWS:
        rows.append(
            f"| … | | | | and {len(hazards) - TABLE_ROWS} more (`genai-stack diff --json` lists all) |"
        )
    return rows


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def stack_summary(stack: StackDiff) -> str:
    if stack.status == "unchanged":
        return "no differences"
    counts = [f"{count} {kind}" for kind, count in stack.counts().items() if count]
    parts = [stack.status, *(counts or [_plural(stack.difference_count, "difference")])]
    if stack.permissions_broadened:
        parts.append("IAM permissions broadened")
    return ", ".join(parts)


def summary_line(report: DiffReport) -> str:
    totals = report.summary()
    differing = totals["stacks_changed"] + totals["stacks_added"] + totals["stacks_removed"]
    return (
        f"**Summary:** {differing} of {_plural(totals['stacks'], 'stack')} differ "
        f"({totals['stacks_changed']} changed, {totals['stacks_added']} added, "
        f"{totals['stacks_removed']} removed); "
        f"resources: {totals['resources_added']} added, {totals['resources_removed']} removed, "
        f"{totals['resources_updated']} updated, {totals['resources_replaced']} replaced; "
        f"{_plural(totals['stateful_replaced_or_deleted'], 'stateful resource')} replaced or deleted."
    )


def render_markdown(report: DiffReport, limit: int = COMMENT_LIMIT) -> str:
    """Markdown for a pull-request comment: stateful hazards first, then each differing stack."""
    dirty = " with uncommitted changes" if report.head_dirty else ""
    head = [
        COMMENT_MARKER,
        "## genai-stack template diff",
        "",
        f"Base `{report.base_ref}` (`{report.base_commit[:12]}`) → "
        f"working tree (`{report.head_commit[:12]}`{dirty}) · "
        f"profiles: {', '.join(f'`{name}`' for name in report.profiles) or 'none'} · "
        f"engine: `@aws-cdk/cloudformation-diff` {report.engine}",
        "",
    ]
    if not report.differs:
        head.append(
            f"No template differences. {_plural(len(report.stacks), 'stack')} compared "
            f"in {_plural(len(report.profiles), 'profile')}."
        )
        return "\n".join(head) + "\n"

    if report.stateful:
        head += [
            "### ⚠️ Stateful resources replaced or deleted",
            "",
            "> [!CAUTION]",
            f"> **{_plural(len(report.stateful), 'stateful resource')} would be replaced or deleted.** "
            "A replaced bucket, key, table or vector store comes back empty; the old one is deleted or, "
            "when retained, left behind outside the stack with its data. Make sure this is intended.",
            "",
            *_hazard_table(report.stateful),
            "",
        ]
    if report.replacements:
        table = _hazard_table(report.replacements)
        if len(report.replacements) > 10:  # many: folded, so that the stateful part stays in view
            table = ["<details>", "<summary>Show them</summary>", "", *table, "", "</details>"]
        head += [f"### Other resources replaced ({len(report.replacements)})", "", *table, ""]
    tail = ["", summary_line(report), ""]

    changed = [stack for stack in report.stacks if stack.status != "unchanged"]
    titles = [
        f"<summary><b>{stack.key}</b> (<code>{stack.stack_name}</code>): {stack_summary(stack)}</summary>"
        for stack in changed
    ]
    wrappers = [len(title) + len("<details>\n\n\n\n</details>\n\n") for title in titles]
    full = [diff_block(stack.text) for stack in changed]
    # What is left once the fixed parts, the stack titles and a note on omitted stacks are counted.
    budget = limit - len("\n".join(head + tail)) - len("### Changes by stack\n\n") - sum(wrappers)
    budget -= 300 + sum(len(stack.key) + 2 for stack in changed)
    blocks: list[str] = ["### Changes by stack", ""]
    omitted: list[str] = []
    for stack, title, block, share in zip(
        changed, titles, full, fair_shares([len(b) for b in full], budget), strict=True
    ):
        if share < min(len(block), 400):
            omitted.append(stack.key)
            continue
        body = block if share >= len(block) else diff_block(stack.text, share)
        blocks.append("\n".join(["<details>", title, "", body, "", "</details>", ""]))
    if omitted:
        blocks.append(
            f"_Not shown to keep the comment under GitHub's size limit: {', '.join(omitted)} "
            "(`genai-stack diff --json` has every stack)._"
        )
    return "\n".join(head + blocks + tail)


# --------------------------------------------------------------------------------------------------
# Git, synthesis and the diff engine


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DiffError(f"`{name}` is not on PATH; `genai-stack diff` needs it")
    return path


def git(root: Path, *args: str) -> str:
    """Run git in `root`; its stderr becomes the error message."""
    result = subprocess.run(  # noqa: S603 - git with fixed subcommands; refs are checked before use
        [_tool("git"), "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DiffError(f"git {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def repository_root(start: Path) -> Path:
    try:
        return Path(git(start, "rev-parse", "--show-toplevel"))
    except DiffError:
        raise DiffError(
            f"{start} is not inside a git repository: run `genai-stack diff` in your checkout"
        ) from None


def resolve_ref(root: Path, ref: str) -> str:
    """The commit a ref names, or a DiffError that says what to do."""
    if not ref or ref.startswith("-"):
        raise DiffError(f"{ref!r} is not a git ref")
    try:
        return git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except DiffError:
        raise DiffError(
            f"base ref {ref!r} does not exist in {root} (check the name, or fetch it first: "
            f"`git fetch origin {ref.removeprefix('origin/')}`)"
        ) from None


def default_base(root: Path) -> str:
    for candidate in DEFAULT_BASES:
        with contextlib.suppress(DiffError):
            resolve_ref(root, candidate)
            return candidate
    raise DiffError(f"no --base given and none of {', '.join(DEFAULT_BASES)} exists in {root}")


@contextlib.contextmanager
def base_worktree(root: Path, commit: str, parent: Path) -> Iterator[Path]:
    """A detached worktree of `commit` under `parent`, removed afterwards (also on error)."""
    tree = parent / "base"
    git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit)
    try:
        yield tree
    finally:
        with contextlib.suppress(DiffError):
            git(root, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tree, ignore_errors=True)
        with contextlib.suppress(DiffError):
            git(root, "worktree", "prune")


def profile_names(tree: Path) -> list[str]:
    """The tree's built-in profiles: those of its own app. A tree without app.py has none (its
    profile files are named by path: -p FILE or pyproject.toml's list)."""
    if not (tree / "app.py").is_file():
        return []
    return sorted(path.stem for path in (tree / "profiles").glob("*.yaml"))


def takes_lists(tree: Path) -> bool:
    """Whether the tree's app synthesizes a list of profiles in one process (its app.py says
    `PROFILE_LISTS = True`); an older tree gets one process per profile."""
    app = tree / "app.py"
    if not app.is_file():  # profile files only: the installed package (this one) synthesizes them
        return True
    return "\nPROFILE_LISTS = True" in app.read_text(encoding="utf-8")


def is_profile_file(selection: str) -> bool:
    """A team's own profile file (a path relative to the repository root), not a built-in name."""
    return selection.endswith((".yaml", ".yml")) or "/" in selection


def in_tree(tree: Path, selection: str) -> bool:
    """Whether the tree has the profile: a built-in name, or a file at that path."""
    return (tree / selection).is_file() if is_profile_file(selection) else selection in profile_names(tree)


def synth_environment(tree: Path, outdir: Path, selection: str | list[str]) -> dict[str, str]:
    """This process's environment without CDK_* settings, plus what `cdk synth` would give the app."""
    cdk_json = tree / "cdk.json"
    context = json.loads(cdk_json.read_text()).get("context", {}) if cdk_json.is_file() else {}
    env = {name: value for name, value in os.environ.items() if not name.startswith("CDK_")}
    env.update(
        CDK_OUTDIR=str(outdir),
        CDK_CONTEXT_JSON=json.dumps({**context, **CLI_CONTEXT, "profile": selection}),
        PYTHONPATH=os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    return env


def read_assembly(outdir: Path) -> dict[str, StackTemplate]:
    """The stacks of a cloud assembly (nested assemblies included) by hierarchical ID."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found: dict[str, StackTemplate] = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            key = artifact.get("displayName") or artifact_id
            found[key] = StackTemplate(
                key=key,
                artifact_id=artifact_id,
                stack_name=properties.get("stackName", artifact_id),
                template=outdir / properties["templateFile"],
            )
        elif artifact.get("type") == "cdk:cloud-assembly":
            found.update(read_assembly(outdir / properties["directoryName"]))
    return found


class SynthProcesses:
    """The synth processes this command started, so that when one fails the others are stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self.cancelled = False

    def run(self, args: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
        with self._lock:
            if self.cancelled:
                raise SynthCancelled
            process = subprocess.Popen(  # noqa: S603 - this interpreter running a tree's own app.py
                args,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group: the jsii Node kernel goes with it
            )
            self._running.add(process)
        try:
            stdout, stderr = process.communicate(timeout=SYNTH_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._stop(process)
            process.communicate()
            raise DiffError(f"synthesis took longer than {SYNTH_TIMEOUT_SECONDS} s") from None
        finally:
            with self._lock:
                self._running.discard(process)
        if self.cancelled:
            raise SynthCancelled
        return process.returncode, stdout, stderr

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            for process in self._running:
                self._stop(process)

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.returncode is None:  # not reaped yet, so its process group is still ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)


class SynthCancelled(DiffError):
    """Another synthesis failed first; its error is the one to show."""


def synthesize(
    tree: Path,
    outdir: Path,
    profiles: Sequence[str] | None,
    label: str,
    advance: Callable[[], None] = lambda: None,
    processes: SynthProcesses | None = None,
) -> dict[str, StackTemplate]:
    """Synthesize `tree` with its own app code: every built-in profile at once, or the named ones (in
    one process where the tree's app takes a list, one process each in older trees)."""
    processes = processes or SynthProcesses()
    selections: list[str | list[str]] = (
        ["all"] if profiles is None else [n for n in profiles if in_tree(tree, n)]
    )
    if profiles is not None and selections and takes_lists(tree):
        selections = [list(selections)]
    found: dict[str, StackTemplate] = {}
    for index, selection in enumerate(selections):
        target = outdir / (
            re.sub(r"[^A-Za-z0-9_.-]", "_", selection) if isinstance(selection, str) else f"selection-{index}"
        )
        status, stdout, stderr = processes.run(
            [sys.executable, "-c", _SYNTH_BOOTSTRAP], cwd=tree, env=synth_environment(tree, target, selection)
        )
        if status != 0 or not (target / "manifest.json").is_file():
            output = "\n".join((stderr.strip() or stdout.strip()).splitlines()[-25:])
            shown = selection if isinstance(selection, str) else ", ".join(selection)
            raise DiffError(f"synthesis of {label} (profile={shown}) failed:\n{output}")
        found.update(read_assembly(target))
        advance()
    return found


def compare_templates(
    pairs: Sequence[tuple[str, Path | None, Path | None]], search_paths: Sequence[Path], workdir: Path
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Run the CDK diff engine on (key, base template, head template) pairs: (engine version, verdicts)."""
    job = workdir / "diff-job.json"
    job.write_text(
        json.dumps(
            {
                "search_paths": [str(path) for path in search_paths],
                "columns": 120,
                "pairs": [
                    {"key": key, "old": str(old) if old else None, "new": str(new) if new else None}
                    for key, old, new in pairs
                ],
            }
        )
    )
    result = subprocess.run(  # noqa: S603 - node running our own script on a job file we wrote
        [_tool("node"), str(ENGINE_SCRIPT), str(job)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DiffError(f"the template diff engine failed: {result.stderr.strip()}")
    document = json.loads(result.stdout)
    return document["engine"], {stack["key"]: stack for stack in document["stacks"]}


CONFIG_FILE = "pyproject.toml"


def configured_profiles(tree: Path) -> list[str]:
    """The teams' profile files a repository asks `genai-stack diff` to cover by default:

        [tool.genai-stack]
        profiles = ["teams/support.yaml", "teams/marketing.yaml"]

    in its pyproject.toml (paths relative to the repository root)."""
    config = tree / CONFIG_FILE
    if not config.is_file():
        return []
    try:
        listed = tomllib.loads(config.read_text(encoding="utf-8")).get("tool", {}).get("genai-stack", {})
    except tomllib.TOMLDecodeError as error:
        raise DiffError(f"{config}: not valid TOML: {error}") from None
    profiles = listed.get("profiles", [])
    if not isinstance(profiles, list) or not all(isinstance(p, str) and is_profile_file(p) for p in profiles):
        raise DiffError(
            f"{config}: [tool.genai-stack] profiles must be a list of profile file paths relative to the "
            f'repository root (e.g. ["teams/support.yaml"]), not {profiles!r}'
        )
    return profiles


def choose_profiles(requested: Sequence[str] | None, *trees: Path) -> list[str]:
    """The requested profiles (built-in names, or profile files relative to the repository root, in
    either tree: a file only in the working tree is a profile added, only in the base one removed),
    or every built-in one and every profile file a tree's pyproject.toml lists (configured_profiles)."""
    known = sorted({name for tree in trees for name in profile_names(tree)})
    if requested is None:
        configured = sorted({name for tree in trees for name in configured_profiles(tree)})
        if not configured:
            return known
        requested = [*known, *configured]
    unknown = sorted(name for name in set(requested) if not any(in_tree(tree, name) for tree in trees))
    if unknown:
        raise DiffError(
            f"unknown profile {', '.join(unknown)}: neither tree has such a profile file, and the built-in "
            f"profiles of the base and the working tree are {', '.join(known) or 'none'}"
        )
    return sorted(set(requested))


def _progress() -> Progress:
    """Progress on stderr, so that stdout carries only the Markdown or the JSON."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=errors,
    )


def synthesize_trees(
    trees: Sequence[tuple[Path, Path, str]], selection: Sequence[str] | None, progress: Progress
) -> list[dict[str, StackTemplate]]:
    """Synthesize (tree, outdir, label) triples in parallel, one progress line each."""
    processes = SynthProcesses()
    with ThreadPoolExecutor(max_workers=len(trees)) as pool:
        jobs = []
        for tree, outdir, label in trees:
            present = sum(1 for name in set(selection or ()) if in_tree(tree, name))
            runs = 1 if selection is None else min(present, 1) if takes_lists(tree) else present
            task = progress.add_task(f"Synthesizing {label}", total=runs)
            advance = functools.partial(progress.advance, task)
            jobs.append(pool.submit(synthesize, tree, outdir, selection, label, advance, processes))
        try:
            wait(jobs, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C included: the synth processes run in their own sessions
            processes.cancel()
            raise
        failures = [job.exception() for job in jobs if job.done() and job.exception()]
        if failures:
            processes.cancel()
            raise next((f for f in failures if not isinstance(f, SynthCancelled)), failures[0])
        return [job.result() for job in jobs]


def build_report(
    root: Path, base_ref: str, profiles: Sequence[str] | None, stateful_types: Collection[str]
) -> DiffReport:
    """Synthesize the base ref and the working tree, diff every stack, classify the hazards."""
    base_commit = resolve_ref(root, base_ref)
    head_commit = git(root, "rev-parse", "HEAD")
    head_dirty = bool(git(root, "status", "--porcelain"))
    base_label = f"base {base_ref} ({base_commit[:12]})"
    # A clean working tree whose files are the base commit's (a re-run, a branch not yet changed)
    # synthesizes to the same templates: one synthesis serves both sides.
    same_tree = not head_dirty and git(root, "rev-parse", f"{base_commit}^{{tree}}") == git(
        root, "rev-parse", "HEAD^{tree}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="genai-stack-diff-") as scratch,
        contextlib.ExitStack() as worktrees,
        _progress() as progress,
    ):
        base_tree = (
            root if same_tree else worktrees.enter_context(base_worktree(root, base_commit, Path(scratch)))
        )
        chosen = choose_profiles(profiles, base_tree, root)
        if not chosen:
            raise DiffError(
                "no profile to diff: this repository has no profiles/ folder; list its profile files in "
                'pyproject.toml ([tool.genai-stack] profiles = ["teams/support.yaml"]) or pass -p FILE'
            )
        # Every built-in profile in one synthesis, unless files are configured beside them.
        builtins = sorted({name for tree in (base_tree, root) for name in profile_names(tree)})
        selection = None if profiles is None and chosen == builtins else chosen
        if same_tree:
            (head,) = synthesize_trees(
                [(root, Path(scratch) / "head.out", "the working tree")], selection, progress
            )
            base = head
        else:
            base, head = synthesize_trees(
                [
                    (base_tree, Path(scratch) / "base.out", base_label),
                    (root, Path(scratch) / "head.out", "the working tree"),
                ],
                selection,
                progress,
            )
        keys = sorted({*base, *head})
        comparing = progress.add_task(f"Comparing {_plural(len(keys), 'stack')}", total=1)
        engine, verdicts = compare_templates(
            [
                (key, getattr(base.get(key), "template", None), getattr(head.get(key), "template", None))
                for key in keys
            ],
            list(dict.fromkeys([root, PACKAGE_ROOT])),
            Path(scratch),
        )
        progress.advance(comparing)
    stacks = stack_diffs(base, head, verdicts)
    return DiffReport(
        base_ref=base_ref,
        base_commit=base_commit,
        head_commit=head_commit,
        head_dirty=head_dirty,
        engine=engine,
        profiles=chosen,
        stacks=stacks,
        hazards=classify(stacks, stateful_types),
    )


# --------------------------------------------------------------------------------------------------
# The command


@app.command(
    epilog=(
        "[bold]Examples[/]\n\n"
        "  genai-stack diff                              [dim]# against origin/main (or main)[/]\n\n"
        "  genai-stack diff --base v1.2.0 --output diff.md\n\n"
        "  genai-stack diff --base HEAD~1 --json | jq .stateful\n\n"
        "  genai-stack diff -p self-hosted               [dim]# only one profile (quicker)[/]\n\n"
        "Exit status: 0 no differences, 1 templates differ, 2 error (e.g. a base ref that does not exist)."
    )
)
def diff(
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="REF",
            help="Git ref to compare with (branch, tag or commit). Default: origin/main, or main without it.",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the Markdown to FILE instead of stdout."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout (uncut diff texts).")
    ] = False,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            "-p",
            metavar="NAME",
            help="Only this profile: a built-in name, or a team's profile file relative to the repository "
            "root (repeatable). Default: every built-in profile of either tree, and the files pyproject.toml "
            "lists under [tool.genai-stack] profiles.",
        ),
    ] = None,
) -> None:
    """Diff the synthesized templates of every built-in profile: base ref against the working tree.

    Offline, no AWS account: the base ref is checked out in a temporary git worktree and both trees are
    synthesized with their own code; the stacks are compared with the CDK's own diff engine. The
    Markdown is written for a pull-request comment: replacements and deletions of stateful resources
    come first.
    """
    from genai_stack.compliance import STATEFUL_RESOURCE_TYPES  # imports aws_cdk: only when diffing

    try:
        root = repository_root(Path.cwd())
        base_ref = base or default_base(root)
        report = build_report(root, base_ref, profile or None, STATEFUL_RESOURCE_TYPES)
    except DiffError as error:
        fail(str(error))
    markdown = render_markdown(report)
    if output is not None:
        try:
            output.write_text(markdown, encoding="utf-8")
        except OSError as error:
            fail(f"cannot write {output}: {error.strerror or error}")
    if json_output:
        print_json(report_document(report))
    elif output is None:
        typer.echo(markdown, nl=False)
    if report.differs:
        errors.print(summary_line(report).replace("**", ""), highlight=False, soft_wrap=True)
    else:
        errors.print(f"No template differences ({_plural(len(report.stacks), 'stack')} compared).")
    if report.differs:
        raise typer.Exit(EXIT_FOUND)
