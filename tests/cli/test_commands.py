"""The `genai-stack` commands through Typer's runner: output, --json, exit statuses, bad input."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from genai_stack.cli import app
from genai_stack.config import builtin_profile_names
from tests.support import REPO_ROOT

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_every_command_has_help_with_an_example():
    for command in (
        "profiles",
        "validate",
        "plan",
        "cost",
        "recommend",
        "diff",
        "wheelhouse",
        "schema",
        "eval plan",
    ):
        result = invoke(*command.split(), "--help")
        assert result.exit_code == 0, command
        assert "Example" in result.output, command


def test_profiles_lists_every_builtin_profile_with_stacks_and_fixed_cost():
    result = invoke("profiles", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert sorted(rows) == builtin_profile_names()
    assert "self-hosted-hosting" in rows["self-hosted"]["stacks"]
    assert rows["self-hosted"]["approaches"] == ["managed API", "self-managed", "gateway"]
    assert rows["self-hosted"]["fixed_monthly_usd"] > rows["managed-api"]["fixed_monthly_usd"] > 0


def test_profiles_reads_the_recorded_figures_and_synthesizes_only_a_profile_without_one(monkeypatch):
    """`genai-stack profiles` took 15 to 30 s synthesizing every profile for its table; it reads the
    figures recorded from the cost model (stacks/data/builtin_profiles.json, kept current by
    tests/cli/test_cost_docs.py) and synthesizes only a built-in profile that has no record."""
    from genai_stack.cli import profiles as command
    from genai_stack.cli import synth
    from genai_stack.planning.cost import builtin_summaries

    recorded = builtin_summaries()
    assert sorted(recorded) == builtin_profile_names()
    synthesized = []

    def synthesize(selection, outdir):
        synthesized.append(selection)
        raise AssertionError("synthesized")

    monkeypatch.setattr(synth, "synthesize", synthesize)
    rows = {row["name"]: row for row in json.loads(invoke("profiles", "--json").stdout)}
    assert synthesized == []
    assert rows["managed-api"]["fixed_monthly_usd"] == recorded["managed-api"]["fixed_monthly_usd"]
    monkeypatch.setattr(
        command, "builtin_summaries", lambda: {k: v for k, v in recorded.items() if k != "managed-api"}
    )
    result = invoke("profiles", "--json")
    assert synthesized == ["managed-api"]
    assert result.exit_code != 0


def test_the_commands_that_only_read_profiles_do_not_load_the_cdk():
    """aws-cdk-lib (and its Node.js kernel) is imported by the commands that synthesize, not when the
    CLI starts: `genai-stack profiles` and `validate` answer in about a second."""
    import subprocess
    import sys

    check = "import sys, genai_stack.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('aws_cdk', 'jsii')))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)  # noqa: S603 - this interpreter on a fixed snippet
    assert result.stdout.strip() == "[]"


def test_schema_writes_the_package_s_schema_beside_a_team_s_profiles(tmp_path):
    """A profile copied out of profiles/ keeps its `$schema=profile.schema.json` modeline; the file it
    names is written beside it from the installed package (the wheel ships it)."""
    from genai_stack.config import SCHEMA_PATH, profile_json_schema

    result = invoke("schema", str(tmp_path / "teams"))
    assert result.exit_code == 0, result.output
    written = tmp_path / "teams" / "profile.schema.json"
    assert written.read_text() == SCHEMA_PATH.read_text() == profile_json_schema()
    assert (
        (REPO_ROOT / "profiles" / "managed-api.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=profile.schema.json")
    )
    (tmp_path / "file").write_text("")
    blocked = invoke("schema", str(tmp_path / "file"))
    assert blocked.exit_code == 2
    assert "cannot write" in blocked.output


def test_validate_passes_good_files_and_fails_bad_ones_with_file_and_field(tmp_path):
    good = invoke("validate", "managed-api", "self-hosted")
    assert good.exit_code == 0
    assert "✓ managed-api" in good.output
    bad = tmp_path / "team.yaml"
    bad.write_text(yaml.safe_dump({"name": "team", "description": "x", "region": "mars-1"}))
    result = invoke("validate", "managed-api", str(bad))
    assert result.exit_code == 1
    assert "team.yaml" in result.output
    assert "region" in result.output
    as_json = invoke("validate", str(bad), "--json")
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["valid"] is False
    assert any("region" in problem for problem in document["files"][str(bad)])


def test_plan_shows_stacks_stateful_resources_roles_and_cost():
    result = invoke("plan", "managed-api", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document["stacks"]) >= {"managed-api-foundation", "managed-api-bedrock"}
    foundation = document["stacks"]["managed-api-foundation"]
    assert foundation["resources"]["AWS::KMS::Key"] == 1
    assert any(entry.startswith("PlatformKey") for entry in foundation["stateful"])
    actions = {a for role_actions in document["roles"].values() for a in role_actions}
    assert "bedrock:InvokeModel" in actions
    # The gateway's model access comes from the profile's own managed policy (in the bedrock stack):
    # its actions are listed, not a fragment of the reference ("managed policy {").
    (gateway,) = [actions for role, actions in document["roles"].items() if "GatewayHandlerRole" in role]
    assert {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"} <= set(gateway)
    assert not [a for a in gateway if "{" in a]
    assert document["cost"]["fixed_usd"] > 0
    text = invoke("plan", "managed-api")
    assert "IAM roles and what they may do" in text.output
    assert "Monthly cost estimate" in text.output


def test_cost_splits_fixed_and_usage_with_the_price_of_each_line():
    result = invoke(
        "cost",
        "managed-api",
        "--requests",
        "1000000",
        "--input-tokens",
        "500",
        "--output-tokens",
        "200",
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["usage_usd"] == 1500.0
    assert all(
        {"unit_price", "unit", "source"} <= set(line) for line in document["fixed"] + document["usage"]
    )
    assert document["total_usd"] == pytest.approx(document["fixed_usd"] + document["usage_usd"])
    # managed-api's semantic cache (drafts, Nova Lite): its arithmetic at the request's tokens.
    (semantic,) = document["semantic_cache"]
    assert (semantic["alias"], semantic["model"]) == ("drafts", "amazon.nova-lite-v1:0")
    assert semantic["saved_per_hit_usd"] == pytest.approx((500 * 0.00006 + 200 * 0.00024) / 1000)
    lookups, writes, saved = (
        semantic["per_1000_lookups_usd"] / 1000,
        semantic["per_1000_misses_usd"] / 1000,
        semantic["saved_per_hit_usd"],
    )
    # At the break-even hit rate, the hits save what every lookup and every miss's write cost.
    rate = semantic["break_even_hit_rate"]
    assert rate * saved == pytest.approx(lookups + (1 - rate) * writes, rel=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "no-such-profile"), "no-such-profile"),
        (("cost", "all"), "name one profile"),
        (("cost", "managed-api", "--requests", "-5"), "Invalid value for '--requests'"),
        (("cost", "managed-api", "--requests", "many"), "Invalid value for '--requests'"),
        (("cost", "self-hosted", "--hours-active", "800"), "less than or equal to"),
        (
            ("recommend", "--requests", "10", "--modality", "video"),
            "'video' is not one of text, image, embeddings",
        ),
        (("recommend", "--requests", "10", "--model", "gpt-x"), "'gpt-x' has no token price"),
        (("recommend", "--requests", "10", "--region", "mars-1"), "'mars-1' is not an AWS commercial region"),
        (
            ("recommend", "--requests", "10", "--domain-data", "some"),
            "is not one of none, labelled, unlabelled",
        ),
    ],
)
def test_bad_input_gets_a_clear_message_and_a_non_zero_exit(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_recommend_ranks_approaches_with_crossover_and_a_profile():
    result = invoke(
        "recommend", "--requests", "2000000", "--model", "anthropic.claude-haiku-4-5-20251001-v1:0", "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["profile"] == "self-hosted"
    # 1 x g6.xlarge (0.8048 x 730 = 587.504) + fleet 108.025 = 695.529 USD; / 0.0015 = 463,686 requests
    assert document["options"][0]["crossover_requests"] == 463_686
    text = invoke("recommend", "--requests", "10000", "--domain-data", "unlabelled")
    assert "Start from the profile customer-service" in text.output


def test_recommend_prices_images_against_the_fine_tuned_endpoint_with_a_measured_speed():
    result = invoke(
        "recommend", "--modality", "image", "--requests", "10000", "--seconds-per-image", "12", "--json"
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["profile"] == "product-imagery"
    details = [o["detail"] for o in document["options"]]
    assert any("weekdays (12 s an image)" in d for d in details)
    assert any(d.startswith("Bedrock stability.sd3-5-large-v1:0") for d in details)
    assert (
        invoke("recommend", "--modality", "image", "--requests", "1", "--seconds-per-image", "0").exit_code
        != 0
    )


def test_the_profiles_table_fits_80_columns_without_cutting_a_name():
    """In an 80-column terminal (or a pipe) names were cut ("customer-serv…")."""
    result = invoke("profiles")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout
    for name in builtin_profile_names():
        assert any(line.split()[:1] == [name] for line in lines if line.strip()), name


def test_a_profile_outside_the_price_region_says_its_prices_are_us_east_1s():
    """The data files hold us-east-1 prices only: a us-west-2 profile's estimate says so (it said
    "us-east-1 prices" and nothing of its own region)."""
    west = json.loads(invoke("cost", "customer-service", "--json").stdout)
    assert west["region"] == "us-west-2"
    assert west["price_region"] == "us-east-1"
    assert "no us-west-2 prices" in west["price_note"]
    assert json.loads(invoke("cost", "managed-api", "--json").stdout)["price_note"] is None
    text = invoke("cost", "customer-service").stdout
    assert "us-west-2, at us-east-1 prices" in " ".join(text.split())
