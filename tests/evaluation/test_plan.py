"""`genai-stack eval plan` (stacks/planning/evaluation.py, stacks/cli/evaluation.py): the jobs of a run
with their metrics, tokens and cost at the profile's prices, and, against a git ref, the jobs a
change re-runs."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from genai_stack.catalog import bedrock_prices
from genai_stack.cli import app
from genai_stack.config import builtin_profile_names, load_profile
from genai_stack.lambdas.gateway.routing import estimated_tokens
from genai_stack.planning.evaluation import (
    JUDGE_INSTRUCTIONS_TOKENS,
    JUDGE_OUTPUT_TOKENS,
    RETRIEVED_TOKENS,
    lint_template,
)
from tests.evaluation.test_profile import copy_of_managed_api, edit

runner = CliRunner()


def plan_json(*args: str) -> dict:
    result = runner.invoke(app, ["eval", "plan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", builtin_profile_names())
def test_every_built_in_profile_has_a_plan(name):
    document = plan_json(name)
    if load_profile(name).evaluation is None:
        assert document["jobs"] == []
        return
    names = [job["name"] for job in document["jobs"]]
    if name == "custom-model":  # its evaluation section serves the training gate only
        assert names == ["gate/support-tuning"]
        (gate,) = document["jobs"]
        assert gate["kind"] == "gate"
        assert gate["rows"] == 8
        assert gate["input_tokens"] == 0  # the candidate answers in the transform; the judge is billed
        assert gate["usd"] > 0
        return
    if name == "marketing-copy-apac":  # each language's briefs on both targets of lunar-new-year
        targets = ("jp.anthropic.claude-haiku-4-5-20251001-v1:0", "amazon.nova-lite-v1:0")
        assert names == [f"{e}/{t}" for e in ("lunar-en", "lunar-zh-hant") for t in targets]
        assert all(job["rows"] == 4 and job["judge_input_tokens"] > 0 for job in document["jobs"])
        assert all(job["usd"] > 0 for job in document["jobs"])
        return
    # copywriter's two Bedrock targets are two jobs (an automated job takes one model), for the set and
    # for its logged traffic; each knowledge-base evaluation is one.
    assert names == [
        "copy-quality/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "copy-quality/amazon.nova-lite-v1:0",
        "facts-rag",
        "facts-retrieval",
        "copy-traffic/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "copy-traffic/amazon.nova-lite-v1:0",
    ]
    assert document["usd"] == pytest.approx(sum(job["usd"] for job in document["jobs"]), abs=1e-3)
    retrieval = document["jobs"][3]
    assert retrieval["metrics"] == ["Builtin.ContextRelevance", "Builtin.ContextCoverage"]
    assert (retrieval["input_tokens"], retrieval["output_tokens"]) == (0, 0)  # nothing is generated
    traffic = document["jobs"][4]
    assert traffic["compare_with"] == "copy-quality/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert (traffic["input_tokens"], traffic["output_tokens"]) == (0, 0)  # the logged answers are scored
    assert traffic["judge_output_tokens"] == 3 * 100 * JUDGE_OUTPUT_TOKENS  # 3 metrics x 100 sampled rows


def test_a_retrieval_job_costs_the_judge_s_tokens_at_the_judge_s_price():
    """2 metrics x 7 rows: each judge call reads the question, the reference, the retrieved passages and
    the rubric, and writes a verdict."""
    profile = load_profile("managed-api")
    rows = profile.evaluation.set_named("product-facts").rows
    (job,) = [j for j in plan_json("managed-api")["jobs"] if j["name"] == "facts-retrieval"]
    per_metric = sum(estimated_tokens(r.prompt, r.reference) for r in rows) + len(rows) * (
        RETRIEVED_TOKENS + JUDGE_INSTRUCTIONS_TOKENS
    )
    assert job["judge_input_tokens"] == 2 * per_metric
    assert job["judge_output_tokens"] == 2 * len(rows) * JUDGE_OUTPUT_TOKENS
    price_in, price_out = bedrock_prices()["anthropic.claude-haiku-4-5-20251001-v1:0"]
    expected = (job["judge_input_tokens"] * price_in + job["judge_output_tokens"] * price_out) / 1000
    assert job["usd"] == pytest.approx(expected, abs=1e-4)


def git(root, *args):
    subprocess.run(  # noqa: S603 - git on a repository this test made
        ["git", "-C", str(root), *args],  # noqa: S607 - git from PATH, as genai-stack diff runs it
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repository(tmp_path):
    path = copy_of_managed_api(tmp_path)
    git(tmp_path, "init", "-q", "-b", "main")
    git(
        tmp_path,
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "0",
    )
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "profile")
    return path


def test_a_prompt_change_re_runs_the_evaluations_of_that_prompt_only(repository):
    assert plan_json(str(repository), "--base", "HEAD")["triggered"] == []
    prompt = repository.parent / "prompts/managed-api/campaign-copy.txt"
    prompt.write_text(prompt.read_text() + "\nKeep it under 80 words.\n")
    assert plan_json(str(repository), "--base", "HEAD")["triggered"] == [
        "copy-quality/us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "copy-quality/amazon.nova-lite-v1:0",
    ]


def test_a_guardrail_change_re_runs_every_evaluation_and_a_knowledge_base_change_its_own(repository):
    edit(repository, lambda d: d["bedrock"]["knowledge_bases"][0]["chunking"].update(max_tokens=400))
    assert plan_json(str(repository), "--base", "HEAD")["triggered"] == ["facts-rag", "facts-retrieval"]
    edit(repository, lambda d: d["bedrock"]["guardrail"].update(blocked_input_message="Not here."))
    assert len(plan_json(str(repository), "--base", "HEAD")["triggered"]) == 4


def test_a_new_judge_or_metric_re_runs_the_evaluations_that_use_it(repository):
    edit(repository, lambda d: d["evaluation"]["knowledge_bases"][1]["metrics"].remove("context_relevance"))
    assert plan_json(str(repository), "--base", "HEAD")["triggered"] == ["facts-retrieval"]
    edit(repository, lambda d: d["evaluation"].update(judge="amazon.nova-lite-v1:0"))
    # every job has judge metrics; the traffic jobs wait for the schedule
    assert len(plan_json(str(repository), "--base", "HEAD")["triggered"]) == 4


def test_a_base_without_the_profile_runs_everything(repository):
    assert len(plan_json(str(repository), "--base", "HEAD~1")["triggered"]) == 4


def test_a_bad_base_ref_is_one_clear_error(repository):
    result = runner.invoke(app, ["eval", "plan", str(repository), "--base", "no-such-ref"])
    assert result.exit_code == 2
    assert "base ref 'no-such-ref' does not exist" in result.output


def test_templates_are_linted_offline():
    assert lint_template("t", "Hello {{name}}, {{ place }}.") == []
    assert lint_template("t", "Hello {{name}, {{place}}.") == [
        "prompt t: 2 '{{' but 1 '}}': a variable is not closed",
        "prompt t: {{name}, {{place}} is not a variable name",
    ]
    assert lint_template("t", "{{first name}}") == ["prompt t: {{first name}} is not a variable name"]


def test_a_template_problem_fails_the_plan(repository):
    prompt = repository.parent / "prompts/managed-api/campaign-copy.txt"
    prompt.write_text(prompt.read_text() + "\nSign as {{sender name}}.\n")
    result = runner.invoke(app, ["eval", "plan", str(repository)])
    assert result.exit_code == 1
    assert "prompt campaign-copy: {{sender name}} is not a variable name" in " ".join(result.output.split())


START = "<!-- evaluation-plan:start (generated from stacks/planning/evaluation.py; make docs-cost) -->"
END = "<!-- evaluation-plan:end -->"


def test_the_evaluation_page_shows_managed_api_s_plan():
    """docs/evaluation.md's table is the planner's (`make docs-cost` rewrites it)."""
    from genai_stack.planning.evaluation import plan, plan_markdown
    from tests.support import REPO_ROOT
    from tests.support.generated import check_generated_block

    table = plan_markdown(plan(load_profile("managed-api")))
    check_generated_block(REPO_ROOT / "docs" / "evaluation.md", START, END, table)


def test_the_plan_says_when_traffic_and_gate_jobs_run():
    """Neither is re-run by a change: traffic on the schedule, a gate with its pipeline."""
    gate = runner.invoke(app, ["eval", "plan", "custom-model"])
    assert gate.exit_code == 0, gate.output
    assert "gate/support-tuning runs with its training pipeline" in " ".join(gate.output.split())
    traffic = runner.invoke(app, ["eval", "plan", "managed-api"])
    text = " ".join(traffic.output.split())
    assert "copy-traffic/amazon.nova-lite-v1:0 runs on the schedule" in text
    assert "copy-quality/amazon.nova-lite-v1:0 re-runs when these change" in text
