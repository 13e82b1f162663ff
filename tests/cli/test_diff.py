"""`genai-stack diff` through Typer's runner, on a throwaway git repository with real changes.

The repository is the committed app (`git archive HEAD`: app.py, cdk.json, stacks, lambdas, profiles),
committed on `main` in a local "origin"; each scenario is a clone whose working tree is edited, so the
default base `origin/main` is exercised. Each scenario runs the command once (module-scoped) and
several tests read its result; only the unchanged scenario synthesizes every profile.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genai_stack.cli.app import app
from genai_stack.cli.diff import (  # importing the module registers `diff` on the app
    COMMENT_MARKER,
    CUT_NOTE,
    DiffError,
    DiffReport,
    ResourceChange,
    StackDiff,
    StackTemplate,
    choose_profiles,
    classify,
    compare_templates,
    diff_block,
    render_markdown,
    stack_diffs,
)
from genai_stack.compliance import STATEFUL_RESOURCE_TYPES
from genai_stack.config import builtin_profile_names
from tests.support import REPO_ROOT
from tests.support.background import LOWER_PRIORITY

runner = CliRunner()
GIT = shutil.which("git")
APP_FILES = ["app.py", "cdk.json", "stacks", "lambdas", "profiles"]

pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - git on a repository this test module made
        [GIT, "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    markdown: str | None = None

    @property
    def document(self) -> dict:
        return json.loads(self.stdout)


def run_diff(repo: Path, *args: str, markdown: Path | None = None) -> Run:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        extra = ["--output", str(markdown)] if markdown else []
        result = runner.invoke(app, ["diff", *args, *extra])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        markdown=markdown.read_text() if markdown and markdown.exists() else None,
    )


def make_origin(root: Path) -> Path:
    """A repository holding the committed app on `main`."""
    repo = root / "origin"
    repo.mkdir(parents=True)
    archive = repo / "app.tar"
    git(REPO_ROOT, "archive", "--format=tar", f"--output={archive}", "HEAD", *APP_FILES)
    with tarfile.open(archive) as tar:
        tar.extractall(repo, filter="data")
    archive.unlink()
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message=base")
    return repo


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("needs the project's git repository")
    return make_origin(tmp_path_factory.mktemp("diff"))


def clone(origin: Path, root: Path, name: str) -> Path:
    target = root / name / "repo"
    target.parent.mkdir(parents=True)
    git(origin.parent, "clone", "--quiet", str(origin), str(target))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}: the test needs updating"
    path.write_text(text.replace(old, new))


def worktrees(repo: Path) -> list[str]:
    return [
        line
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree")
    ]


# --------------------------------------------------------------------------------------------------
# Scenarios: each runs the installed `genai-stack diff` once, as a user would, and several tests read
# its result. They synthesize two trees each (most of this module's time), so the session starts them
# in a background thread as soon as the tests are collected (tests/conftest.py), one after another
# on the machine's other core; the fixtures below only wait for them.


def _unchanged(origin: Path, root: Path) -> tuple[Path, list[str], Path | None]:
    """No edits, default base (origin/main), one built-in profile: which profiles the default covers
    (every built-in one) is choose_profiles', tested below without synthesis."""
    return clone(origin, root, "unchanged"), ["-p", "managed-api"], None


def _pull_request(origin: Path, root: Path) -> tuple[Path, list[str], Path | None]:
    """One pull request with every kind of change, diffed in one run (one synthesis per tree): a
    profile edit (the GPU host's instance type and the hosts' network range), a refactor that renames
    the data bucket's construct (its logical ID changes), the built-in managed-api removed, and a team's
    own profile file outside profiles/ added (small: the added side costs one small synthesis)."""
    repo = clone(origin, root, "pull-request")
    profile = repo / "profiles" / "self-hosted.yaml"
    edit(profile, "instance_type: g6.xlarge", "instance_type: g6.2xlarge")
    edit(profile, "cidr: 10.40.0.0/16", "cidr: 10.41.0.0/16")
    edit(repo / "stacks" / "foundation_stack.py", '"Data",', '"DataStore",')
    profiles = repo / "profiles"
    (profiles / "managed-api.yaml").unlink()
    team = repo / "teams" / "support.yaml"
    team.parent.mkdir()
    team.write_text(
        "name: support-team\n"
        "description: A team's own profile, kept in its repository.\n"
        "region: us-east-1\n"
        "cost_allocation: {tag_value: support}\n"
        "budget: {monthly_limit_usd: 100}\n"
    )
    args = ["-p", "self-hosted", "-p", "managed-api", "-p", "teams/support.yaml", "--json"]
    return repo, args, repo.parent / "diff.md"


def _team_repository(origin: Path, root: Path) -> tuple[Path, list[str], Path | None]:
    """A team's repository with genai-stack installed and no app of its own: profile files listed in
    its pyproject.toml, one of them edited by the pull request (its budget)."""
    repo = root / "team-repository" / "repo"
    (repo / "teams").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[tool.genai-stack]\nprofiles = ["teams/support.yaml"]\n')
    (repo / "teams" / "support.yaml").write_text(
        "name: support-team\n"
        "description: A team's own profile, kept in its repository.\n"
        "region: us-east-1\n"
        "cost_allocation: {tag_value: support}\n"
        "budget: {monthly_limit_usd: 100}\n"
    )
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message=base")
    edit(repo / "teams" / "support.yaml", "monthly_limit_usd: 100", "monthly_limit_usd: 150")
    return repo, ["--base", "main", "--json"], None


SCENARIOS = {"unchanged": _unchanged, "pull_request": _pull_request, "team_repository": _team_repository}
GENAI_STACK = Path(sys.executable).with_name("genai-stack")


class Scenarios:
    """The scenarios' runs, one after another in a thread; `run(name)` waits for that one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[str, concurrent.futures.Future] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="diff")
        self._origin = self._pool.submit(make_origin, root)
        for name in SCENARIOS:
            self._done[name] = self._pool.submit(self._run, name)
        self._pool.shutdown(wait=False)

    def _run(self, name: str) -> tuple[Path, Run]:
        repo, args, markdown = SCENARIOS[name](self._origin.result(), self.root)
        extra = ["--output", str(markdown)] if markdown else []
        result = subprocess.run(  # noqa: S603 - the project's own console script
            [*LOWER_PRIORITY, str(GENAI_STACK), "diff", *args, *extra],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=900,
        )
        markdown_text = markdown.read_text() if markdown and markdown.exists() else None
        return repo, Run(result.returncode, result.stdout, result.stderr, markdown_text)

    def run(self, name: str) -> tuple[Path, Run]:
        return self._done[name].result(timeout=900)


_STARTED: list[Scenarios] = []


def start_scenarios(root: Path) -> None:
    """Called once the session's tests are collected, when any of this module's tests will run."""
    if not _STARTED and (REPO_ROOT / ".git").exists() and GIT is not None:
        _STARTED.append(Scenarios(root))


def _scenario(name: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("needs the project's git repository")
    start_scenarios(tmp_path_factory.mktemp("diff-scenarios"))  # run alone: start them now
    return _STARTED[0].run(name)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory) -> tuple[Path, Run]:
    return _scenario("unchanged", tmp_path_factory)


@pytest.fixture(scope="module")
def changed(tmp_path_factory) -> Run:
    return _scenario("pull_request", tmp_path_factory)[1]


swapped_profile = team_profile = changed  # the same run: the tests read their parts of it


def resources(document: dict, stack_id: str) -> dict[str, dict]:
    stack = next(stack for stack in document["stacks"] if stack["id"] == stack_id)
    return {change["logical_id"]: change for change in stack["resources"]}


# --------------------------------------------------------------------------------------------------
# Through the runner


def test_no_change_exits_0_with_no_template_differences(unchanged):
    repo, run = unchanged
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(COMMENT_MARKER)
    assert "No template differences." in run.stdout
    assert "`origin/main`" in run.stdout  # the default base of a clone
    assert "`managed-api`" in run.stdout
    assert "Synthesizing" in run.stderr  # progress goes to stderr, stdout stays Markdown only
    # The working tree is the base commit's: one synthesis serves both sides, no base worktree.
    assert "Synthesizing the working tree" in run.stderr
    assert "Synthesizing base" not in run.stderr
    assert worktrees(repo) == [f"worktree {repo}"]


def test_instance_type_change_shows_the_launch_template_update_and_the_network_replacement(changed):
    assert changed.exit_code == 1, changed.stderr
    document = changed.document
    hosting = resources(document, "self-hosted/Hosting")
    [template_id] = [
        logical_id
        for logical_id, change in hosting.items()
        if change["old_type"] == "AWS::EC2::LaunchTemplate" and "mistral" in logical_id
    ]
    # CloudFormation updates a launch template in place (a new version; the ASG's rolling update then
    # replaces the instances), so the engine reports an update, not a replacement of the resource.
    assert hosting[template_id]["impact"] == "WILL_UPDATE"
    text = next(stack["diff"] for stack in document["stacks"] if stack["id"] == "self-hosted/Hosting")
    assert "[-] g6.xlarge" in text
    assert "[+] g6.2xlarge" in text
    # A new CIDR block is a property CloudFormation can only set on a new VPC.
    [vpc_id] = [logical_id for logical_id, change in hosting.items() if change["old_type"] == "AWS::EC2::VPC"]
    assert hosting[vpc_id]["impact"] == "WILL_REPLACE"
    assert "CidrBlock" in hosting[vpc_id]["replaced_properties"]
    replaced = {hazard["logical_id"]: hazard for hazard in document["replacements"]}
    assert vpc_id in replaced
    assert template_id not in replaced
    assert replaced[vpc_id]["stateful"] is False
    assert all(hazard["stack"] != "Hosting" for hazard in document["stateful"])
    loud = changed.markdown.split("### Changes by stack")[0]
    assert "### Other resources replaced" in loud
    assert f"`{vpc_id}`" in loud
    assert f"`{template_id}`" not in loud
    # The stack's diff is in the comment, whole or cut to the comment's size (this pull request adds
    # and removes whole profiles: their stacks share the room).
    hosting_block = changed.markdown.split("self-hosted/Hosting", 1)[1].split("</details>", 1)[0]
    assert "[+] g6.2xlarge" in hosting_block or CUT_NOTE in hosting_block


def test_a_stateful_logical_id_change_is_listed_first_as_a_stateful_replacement(changed):
    assert changed.exit_code == 1, changed.stderr
    [bucket] = [
        hazard
        for hazard in changed.document["stateful"]
        if hazard["logical_id"].startswith("DataBucket") and hazard["profile"] == "self-hosted"
    ]
    assert bucket["resource_type"] == "AWS::S3::Bucket"
    assert bucket["impact"] == "LOGICAL_ID_CHANGED"
    assert "DataStoreBucket" in bucket["description"]
    assert (bucket["profile"], bucket["stack"]) == ("self-hosted", "Foundation")
    markdown = changed.markdown
    stateful = markdown.index("### ⚠️ Stateful resources replaced or deleted")
    assert stateful < markdown.index("### Other resources replaced") < markdown.index("### Changes by stack")
    loud = markdown[stateful : markdown.index("### Other resources replaced")]
    assert f"`{bucket['logical_id']}`" in loud
    assert "[!CAUTION]" in loud


def test_json_output_has_the_report_fields(changed):
    document = changed.document
    assert set(document) >= {"base", "head", "engine", "profiles", "differs", "summary", "stateful", "stacks"}
    assert document["base"]["ref"] == "origin/main"
    assert len(document["base"]["commit"]) == 40
    assert document["engine"] == "2.187.5"
    assert document["profiles"] == ["managed-api", "self-hosted", "teams/support.yaml"]
    assert document["differs"] is True
    assert "Synthesizing base" in changed.stderr  # a changed tree: both sides synthesized
    assert document["summary"]["stateful_replaced_or_deleted"] == len(document["stateful"]) >= 1
    foundation = next(stack for stack in document["stacks"] if stack["id"] == "self-hosted/Foundation")
    assert foundation["status"] == "changed"
    assert foundation["stack_name"] == "self-hosted-foundation"
    assert {"logical_id", "old_type", "new_type", "impact", "kind"} <= set(foundation["resources"][0])


def test_a_removed_profile_lists_its_stacks_as_removed_and_a_new_one_as_added(swapped_profile):
    run = swapped_profile
    assert run.exit_code == 1, run.stderr
    status = {stack["id"]: stack["status"] for stack in run.document["stacks"]}
    assert status["managed-api/Foundation"] == "removed"
    assert status["support-team/Foundation"] == "added"
    assert {s for i, s in status.items() if i.startswith("managed-api/")} == {"removed"}
    assert {s for i, s in status.items() if i.startswith("support-team/")} == {"added"}
    # Another profile's new bucket is not this one's successor: the removal itself is the hazard.
    buckets = [h for h in run.document["stateful"] if h["resource_type"] == "AWS::S3::Bucket"]
    removed_buckets = [h for h in buckets if h["profile"] != "self-hosted"]  # self-hosted's is a rename
    assert removed_buckets
    assert {h["profile"] for h in removed_buckets} == {"managed-api"}
    assert all("stack removed from the app" in h["description"] for h in removed_buckets)


def test_a_base_ref_that_does_not_exist_exits_2_with_a_clear_message(origin, tmp_path_factory):
    repo = clone(origin, tmp_path_factory.mktemp("bad-ref"), "bad-ref")
    run = run_diff(repo, "--base", "no-such-branch")
    assert run.exit_code == 2
    assert "base ref 'no-such-branch' does not exist" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


def test_a_team_s_own_profile_file_is_diffed_and_a_new_one_is_all_added(team_profile):
    """`-p FILE`: a profile file of the repository (not a built-in), synthesized in each tree that has
    it; only the working tree has it here, so its stacks are added."""
    assert team_profile.exit_code == 1, team_profile.stderr
    document = team_profile.document
    assert "teams/support.yaml" in document["profiles"]
    stacks = {stack["id"]: stack for stack in document["stacks"] if stack["id"].startswith("support-team/")}
    assert "support-team/Foundation" in stacks
    assert {stack["status"] for stack in stacks.values()} == {"added"}


def test_several_profiles_synthesize_in_one_process_per_tree(changed):
    """`-p` three times: the base tree (self-hosted, managed-api) and the working tree (self-hosted,
    the team's file) are each one synthesis, not one per profile."""
    assert "Synthesizing base" in changed.stderr
    assert re.search(r"Synthesizing base .*1/1", changed.stderr), changed.stderr[-2000:]
    assert re.search(r"Synthesizing the working tree\s+1/1", changed.stderr), changed.stderr[-2000:]


@pytest.fixture(scope="module")
def team_repository(tmp_path_factory) -> Run:
    return _scenario("team_repository", tmp_path_factory)[1]


def test_a_team_repository_without_an_app_diffs_its_listed_profiles_with_the_installed_package(
    team_repository,
):
    """No app.py, no profiles/: the files pyproject.toml lists are synthesized on both sides by the
    installed genai-stack, and the budget edit shows in the observability stack."""
    run = team_repository
    assert run.exit_code == 1, run.stderr
    document = run.document
    assert document["profiles"] == ["teams/support.yaml"]
    status = {stack["id"]: stack["status"] for stack in document["stacks"]}
    assert status["support-team/Observability"] == "changed"
    assert status["support-team/Foundation"] == "unchanged"
    text = next(stack["diff"] for stack in document["stacks"] if stack["id"] == "support-team/Observability")
    assert "[-] 100" in text
    assert "[+] 150" in text


def test_a_repository_with_nothing_to_diff_says_what_to_list(tmp_path):
    repo = tmp_path / "empty"
    repo.mkdir()
    (repo / "README.md").write_text("profiles live elsewhere\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message=base")
    run = run_diff(repo, "--base", "main")
    assert run.exit_code == 2
    assert "no profile to diff" in run.stderr
    assert "[tool.genai-stack] profiles" in run.stderr


def test_an_unknown_profile_exits_2_and_leaves_no_worktree(origin, tmp_path_factory):
    repo = clone(origin, tmp_path_factory.mktemp("bad-profile"), "bad-profile")
    run = run_diff(repo, "--profile", "no-such-profile")
    assert run.exit_code == 2
    assert "unknown profile no-such-profile" in run.stderr
    assert "self-hosted" in run.stderr
    assert worktrees(repo) == [f"worktree {repo}"]


def test_a_failing_synth_exits_2_with_its_error_and_removes_the_worktree(origin, tmp_path_factory):
    repo = clone(origin, tmp_path_factory.mktemp("broken"), "broken")
    with (repo / "stacks" / "foundation_stack.py").open("a") as module:
        module.write("\nraise RuntimeError('broken on purpose')\n")
    run = run_diff(repo, "-p", "managed-api")
    assert run.exit_code == 2
    assert "synthesis of the working tree" in run.stderr
    assert "broken on purpose" in run.stderr
    assert worktrees(repo) == [f"worktree {repo}"]


def test_outside_a_git_repository_exits_2(tmp_path):
    run = run_diff(tmp_path)
    assert run.exit_code == 2
    assert "not inside a git repository" in run.stderr


def test_help_shows_examples_options_and_exit_statuses():
    result = runner.invoke(app, ["diff", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for text in ("Examples", "--base", "--output", "--json", "--profile", "origin/main", "Exit status"):
        assert text in result.stdout, text


# --------------------------------------------------------------------------------------------------
# The pieces, without synthesis


def _template(resources: dict) -> dict:
    return {"Resources": resources}


def test_the_engine_reports_an_endpoint_instance_type_change_as_a_replacement(tmp_path):
    def endpoint_config(instance_type: str) -> dict:
        return {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "main",
                        "ModelName": "m",
                        "InstanceType": instance_type,
                        "InitialInstanceCount": 1,
                    }
                ]
            },
        }

    bucket = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_template({"Config": endpoint_config("ml.g5.xlarge"), "Data": bucket})))
    new.write_text(json.dumps(_template({"Config": endpoint_config("ml.g5.2xlarge")})))
    same = tmp_path / "same.json"
    same.write_text(old.read_text())
    engine, verdicts = compare_templates(
        [("p/Changed", old, new), ("p/Same", old, same), ("p/Added", None, new)], [REPO_ROOT], tmp_path
    )
    assert engine == "2.187.5"
    changes = {change["logical_id"]: change for change in verdicts["p/Changed"]["resources"]}
    assert changes["Config"]["impact"] == "WILL_REPLACE"
    assert changes["Config"]["replaced_properties"] == [
        {"name": "ProductionVariants", "impact": "WILL_REPLACE"}
    ]
    assert changes["Data"]["impact"] == "WILL_ORPHAN"
    assert changes["Data"]["removal"] is True
    assert "ml.g5.2xlarge" in verdicts["p/Changed"]["text"]
    assert "\x1b[" not in verdicts["p/Changed"]["text"]  # no colours
    assert verdicts["p/Same"]["empty"] is True
    assert verdicts["p/Same"]["text"] == ""
    assert verdicts["p/Added"]["resources"][0]["impact"] == "WILL_CREATE"


def _stack(key: str, status: str, *changes: ResourceChange) -> StackDiff:
    return StackDiff(
        key=key,
        stack_name=key.replace("/", "-").lower(),
        status=status,
        difference_count=len(changes),
        text="\n".join(f"[~] {c.resource_type} {c.logical_id}" for c in changes),
        resources=list(changes),
    )


def test_classify_finds_stateful_logical_id_changes_and_replacements():
    bucket_gone = ResourceChange("DataBucketE6B0FAA8", "AWS::S3::Bucket", None, "WILL_ORPHAN")
    bucket_new = ResourceChange("DataStoreBucket9A81F2E1", None, "AWS::S3::Bucket", "WILL_CREATE")
    policy_gone = ResourceChange("DataBucketPolicy1", "AWS::S3::BucketPolicy", None, "WILL_DESTROY")
    policy_new = ResourceChange("DataStoreBucketPolicy2", None, "AWS::S3::BucketPolicy", "WILL_CREATE")
    key_maybe = ResourceChange(
        "Key", "AWS::KMS::Key", "AWS::KMS::Key", "MAY_REPLACE", replaced_properties=("X",)
    )
    vpc = ResourceChange(
        "Vpc", "AWS::EC2::VPC", "AWS::EC2::VPC", "WILL_REPLACE", replaced_properties=("CidrBlock",)
    )
    table_gone = ResourceChange("Table", "AWS::DynamoDB::Table", None, "WILL_ORPHAN")
    updated = ResourceChange("Fn", "AWS::Lambda::Function", "AWS::Lambda::Function", "WILL_UPDATE")
    stacks = [
        _stack(
            "p/Foundation", "changed", bucket_gone, bucket_new, policy_gone, policy_new, key_maybe, table_gone
        ),
        _stack("p/Hosting", "changed", vpc, updated),
        _stack("q/Foundation", "added", ResourceChange("T2", None, "AWS::DynamoDB::Table", "WILL_CREATE")),
    ]
    hazards = {hazard.logical_id: hazard for hazard in classify(stacks, STATEFUL_RESOURCE_TYPES)}
    assert set(hazards) == {"DataBucketE6B0FAA8", "Key", "Table", "Vpc"}
    assert hazards["DataBucketE6B0FAA8"].impact == "LOGICAL_ID_CHANGED"
    assert "`DataStoreBucket9A81F2E1`" in hazards["DataBucketE6B0FAA8"].description
    assert hazards["Key"].stateful
    assert hazards["Key"].description == "may be replaced (X changed)"
    # Another profile's new table is not a successor: the removal stays a removal.
    assert hazards["Table"].impact == "WILL_ORPHAN"
    assert hazards["Table"].stateful
    assert not hazards["Vpc"].stateful
    assert "CidrBlock" in hazards["Vpc"].description
    ordered = classify(stacks, STATEFUL_RESOURCE_TYPES)
    assert [h.stateful for h in ordered] == sorted((h.stateful for h in ordered), reverse=True)


def test_stack_diffs_matches_stacks_by_hierarchical_id():
    def templates(*keys: str) -> dict[str, StackTemplate]:
        return {
            key: StackTemplate(key, key.replace("/", ""), key.replace("/", "-"), Path(f"{key}.json"))
            for key in keys
        }

    base = templates("a/Foundation", "a/Gone", "b/Foundation")
    head = templates("a/Foundation", "b/Foundation", "c/Foundation")
    verdicts = {
        "a/Foundation": {"empty": True, "resources": []},
        "b/Foundation": {"empty": False, "difference_count": 1, "text": "x", "resources": []},
    }
    status = {stack.key: stack.status for stack in stack_diffs(base, head, verdicts)}
    assert status == {
        "a/Foundation": "unchanged",
        "a/Gone": "removed",
        "b/Foundation": "changed",
        "c/Foundation": "added",
    }


def _report(stacks: list[StackDiff]) -> DiffReport:
    return DiffReport(
        base_ref="origin/main",
        base_commit="a" * 40,
        head_commit="b" * 40,
        engine="2.187.5",
        profiles=["p"],
        stacks=stacks,
        hazards=classify(stacks, STATEFUL_RESOURCE_TYPES),
    )


def test_markdown_without_differences_says_so():
    markdown = render_markdown(_report([_stack("p/Foundation", "unchanged")]))
    assert markdown.startswith(COMMENT_MARKER + "\n")
    assert "No template differences. 1 stack compared in 1 profile." in markdown
    assert "<details>" not in markdown
    assert "Stateful" not in markdown


def test_markdown_puts_stateful_hazards_first_then_collapsible_stack_diffs_and_a_summary():
    gone = ResourceChange("DataBucketE6B0FAA8", "AWS::S3::Bucket", None, "WILL_ORPHAN")
    new = ResourceChange("DataStoreBucket9A81F2E1", None, "AWS::S3::Bucket", "WILL_CREATE")
    vpc = ResourceChange("Vpc", "AWS::EC2::VPC", "AWS::EC2::VPC", "WILL_REPLACE")
    markdown = render_markdown(
        _report([_stack("p/Foundation", "changed", gone, new), _stack("p/Hosting", "changed", vpc)])
    )
    stateful = markdown.index("### ⚠️ Stateful resources replaced or deleted")
    others = markdown.index("### Other resources replaced (1)")
    details = markdown.index("<details>")
    assert stateful < others < details < markdown.index("**Summary:**")
    assert "| p | Foundation (`p-foundation`) | `DataBucketE6B0FAA8` | `AWS::S3::Bucket` |" in markdown
    assert "<summary><b>p/Hosting</b> (<code>p-hosting</code>): changed, 1 replaced</summary>" in markdown
    assert "2 of 2 stacks differ" in markdown
    assert "1 stateful resource replaced or deleted" in markdown


def test_markdown_stays_under_the_comment_limit_cutting_big_diffs_and_omitting_the_rest():
    def stack(name: str, lines: int) -> StackDiff:
        result = _stack(name, "changed", ResourceChange("R", None, "AWS::SNS::Topic", "WILL_CREATE"))
        result.text = "[+] AWS::SNS::Topic R\n" * lines
        return result

    small, huge = stack("p/Small", 3), stack("p/Huge", 5_000)
    markdown = render_markdown(_report([small, huge]), limit=30_000)
    assert len(markdown) <= 30_000
    assert markdown.count("<details>") == 2
    assert "cut here to fit the comment" in markdown
    assert "+ [+] AWS::SNS::Topic R\n" * 3 + "```" in markdown  # the small one whole
    assert markdown.rstrip().endswith("replaced or deleted.")

    many = [stack(f"p/S{index}", 400) for index in range(100)]
    crowded = render_markdown(_report(many), limit=30_000)
    assert len(crowded) <= 30_000
    assert "Not shown to keep the comment under GitHub's size limit: p/S0, p/S1" in crowded


def test_diff_block_marks_lines_for_github_and_survives_backticks():
    text = "[~] AWS::EC2::LaunchTemplate LT\n └─ [~] .InstanceType:\n     ├─ [-] g6.xlarge\n     └─ [+] g6.2xlarge\n```"
    block = diff_block(text)
    lines = block.splitlines()
    assert lines[0] == "````diff"
    assert lines[-1] == "````"
    assert [line[0] for line in lines[1:-1]] == ["!", "!", "-", "+", " "]


def test_without_p_every_built_in_profile_of_either_tree_is_diffed(origin, tmp_path):
    """The pull-request workflow runs `genai-stack diff` without -p: every built-in profile of the
    repository, and one that only the base has (a profile removed) or only the working tree."""
    names = builtin_profile_names(origin / "profiles")
    assert len(names) >= 3
    assert choose_profiles(None, origin) == names
    (tmp_path / "app.py").write_text("PROFILE_LISTS = True\n")  # a working tree with a new built-in
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "sandbox.yaml").write_text("name: sandbox\n")
    assert choose_profiles(None, origin, tmp_path) == sorted([*names, "sandbox"])


def test_profile_files_a_repository_lists_in_pyproject_are_diffed_by_default(tmp_path):
    """A team repository lists its profile files once ([tool.genai-stack] profiles in pyproject.toml)
    and `genai-stack diff` without -p, as the pull-request workflow runs it, covers them beside the
    built-in profiles; a file that is not there (yet, or any more) is left to the tree that has it."""
    (tmp_path / "app.py").write_text("PROFILE_LISTS = True\n")  # a tree with its own app and built-ins
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "managed-api.yaml").write_text("name: managed-api\n")
    (tmp_path / "teams").mkdir()
    (tmp_path / "teams" / "support.yaml").write_text("name: support\n")
    assert choose_profiles(None, tmp_path) == ["managed-api"]
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.genai-stack]\nprofiles = ["teams/support.yaml"]\n'
    )
    assert choose_profiles(None, tmp_path) == ["managed-api", "teams/support.yaml"]
    assert choose_profiles(["managed-api"], tmp_path) == ["managed-api"]  # -p still narrows
    (tmp_path / "pyproject.toml").write_text('[tool.genai-stack]\nprofiles = "teams/support.yaml"\n')
    with pytest.raises(
        DiffError, match=r"\[tool.genai-stack\] profiles must be a list of profile file paths"
    ):
        choose_profiles(None, tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.genai-stack\n")
    with pytest.raises(DiffError, match="not valid TOML"):
        choose_profiles(None, tmp_path)
