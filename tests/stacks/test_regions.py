"""stacks/data/regions.json: for each AWS commercial region, the CloudFormation resource types of
genai-stack's stacks that the region does not offer, from the CloudFormation resource-type registry as
cfn-lint ships it (one provider schema file per region, cfn-lint pinned in requirements.lock).

The types are those of this session's synthesis of every built-in profile, grouped by the approach
whose stack holds them; a profile that uses a type the table does not list fails here until the table
is regenerated (`make data-regions`, WRITE_REGIONS=1). docs/regions.md's table is generated from the
same file (`make docs-cost` rewrites it with the cost tables)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import pytest

from genai_stack.catalog import (
    APPROACHES,
    COST_TYPES,
    approach_gaps,
    cost_region,
    regions_markdown,
    regions_table,
    supported_regions,
)
from tests.support import REPO_ROOT
from tests.support.generated import check_generated_block

DATA = REPO_ROOT / "stacks" / "data" / "regions.json"
PAGE = REPO_ROOT / "docs" / "regions.md"
START = "<!-- regions:start (generated from stacks/data/regions.json; make docs-cost) -->"
END = "<!-- regions:end -->"
PROVIDERS = Path(sys.executable).parents[1] / "lib"
# Partitions other than aws (China, GovCloud, ISO, the European Sovereign Cloud) and cfn-lint's
# own `sam` pseudo-region are out of scope: their ARNs and endpoints differ.
COMMERCIAL = re.compile(r"^(af|ap|ca|eu|il|me|mx|sa|us)-[a-z]+-\d$")
# Which approach a stack's types belong to (stacks/stage.py names the stacks).
STACK_APPROACH = {
    "Foundation": "foundation",
    "Observability": "observability",
    "Bedrock": "managed_api",
    "Orchestration": "gateway",
    "Hosting": "self_managed",
    "Inference": "training_and_tuning",
    "Training": "training_and_tuning",
}


def provider_schemas() -> dict[str, set[str]]:
    (folder,) = PROVIDERS.glob("python3*/site-packages/cfnlint/data/schemas/providers")
    return {
        path.stem: set(json.loads(path.read_text()))
        for path in sorted(folder.glob("*.json"))
        if COMMERCIAL.match(path.stem)
    }


def expected_table(synthesized) -> dict:
    used: dict[str, set[str]] = defaultdict(set)
    for templates in synthesized.templates.values():
        for stack, template in templates.items():
            for resource in template["Resources"].values():
                kind = resource["Type"]
                if kind.startswith("AWS::") and kind != "AWS::CloudFormation::CustomResource":
                    used["cost" if kind in COST_TYPES else STACK_APPROACH[stack]].add(kind)
    checked = {approach: sorted(types) for approach, types in sorted(used.items())}
    every = set().union(*used.values())
    return {
        "source": (
            f"cfn-lint {version('cfn-lint')} provider schemas (its copy of the CloudFormation resource-type "
            "registry per region): for each commercial region, the resource types below that it does not offer"
        ),
        "retrieved": json.loads(DATA.read_text())["retrieved"] if DATA.is_file() else "",
        "cost_region": "us-east-1",
        "cost_region_reason": (
            "AWS Budgets and Cost Explorer are global services whose CloudFormation resources some regions "
            "lack; a profile in such a region gets its budgets and anomaly monitor in a stack of their own "
            "in us-east-1, with its own topic"
        ),
        "types": checked,
        "missing": {region: sorted(every - offered) for region, offered in provider_schemas().items()},
    }


def test_the_region_table_is_cfn_lint_s_registry_for_the_types_the_profiles_use(synthesized):
    expected = expected_table(synthesized)
    if os.environ.get("WRITE_REGIONS") == "1":
        DATA.write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    assert json.loads(DATA.read_text()) == expected, f"{DATA} is stale: run `make data-regions`"


def test_every_approach_is_known_and_the_cost_types_are_the_budget_stack_s():
    table = regions_table()
    assert set(table["types"]) <= set(APPROACHES)
    assert set(table["types"]["cost"]) == set(COST_TYPES)


def test_hong_kong_is_supported_with_its_budget_in_us_east_1_and_its_gaps_named():
    """ap-east-1 was refused outright because CloudFormation has no AWS::Budgets::Budget there."""
    assert "ap-east-1" in supported_regions()
    assert cost_region("ap-east-1") == "us-east-1"
    assert cost_region("us-west-2") == "us-west-2"
    gaps = approach_gaps("ap-east-1")
    assert gaps["foundation"] == []
    assert "AWS::Bedrock::Guardrail" in gaps["managed_api"]
    assert "AWS::Budgets::Budget" in gaps["cost"]


def test_the_region_page_shows_the_table():
    check_generated_block(PAGE, START, END, regions_markdown())


@pytest.mark.parametrize("region", ["xx-nowhere-1", "cn-north-1"])
def test_a_region_outside_the_table_is_not_supported(region):
    assert region not in supported_regions()


def hong_kong_profile(tmp_path: Path):
    """The self-hosted profile's GPU host in ap-east-1: Bedrock's CloudFormation types (and its models)
    are not there, so no bedrock section and no gateway; hosts, dashboards, alarms and budgets are."""
    import yaml

    from genai_stack.config import load_profile

    data = yaml.safe_load((REPO_ROOT / "profiles" / "self-hosted.yaml").read_text())
    data.update(name="hk-open-models", region="ap-east-1")
    data["hosting"]["hosts"] = [h for h in data["hosting"]["hosts"] if h["name"] == "mistral-gpu"]
    tls = data["hosting"]["tls"]
    tls["private_ca_arn"] = tls["private_ca_arn"].replace(":us-east-1:", ":ap-east-1:")  # a CA of the region
    del data["bedrock"], data["gateway"]
    path = tmp_path / "hk.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_profile(str(path))


@pytest.fixture(scope="module")
def hong_kong(tmp_path_factory):
    """The Hong Kong profile synthesized as `genai-stack plan` does (cdk-nag on): assembly and result."""
    from genai_stack.cli.synth import synthesize_app

    folder = tmp_path_factory.mktemp("hk")
    hong_kong_profile(folder)
    _, assembly, (result,) = synthesize_app(str(folder / "hk.yaml"), folder / "out")
    return assembly, result


def test_a_hong_kong_profile_synthesizes_with_its_budgets_in_a_us_east_1_stack(hong_kong):
    assembly, _ = hong_kong
    by_name = {stack.stack_name: stack for stack in assembly.stacks}
    assert set(by_name) == {
        f"hk-open-models-{part}" for part in ("foundation", "hosting", "observability", "cost")
    }
    assert {name: stack.environment.region for name, stack in by_name.items()} == {
        "hk-open-models-foundation": "ap-east-1",
        "hk-open-models-hosting": "ap-east-1",
        "hk-open-models-observability": "ap-east-1",
        "hk-open-models-cost": "us-east-1",
    }

    def types(name: str) -> set[str]:
        return {r["Type"] for r in by_name[name].template["Resources"].values()}

    assert not types("hk-open-models-observability") & set(COST_TYPES)
    # The spend cap's action stays beside the roles it names, so a profile whose budgets move to
    # us-east-1 has none (the profile refuses budget.stop_invocations there).
    assert set(COST_TYPES) - {"AWS::Budgets::BudgetsAction"} <= types("hk-open-models-cost")
    cost = by_name["hk-open-models-cost"].template["Resources"]
    budget = next(r for r in cost.values() if r["Type"] == "AWS::Budgets::Budget")
    assert budget["Properties"]["Budget"]["CostFilters"] == {
        "TagKeyValue": ["user:genai-stack:cost-center$open-models"]
    }
    subscribers = budget["Properties"]["NotificationsWithSubscribers"][0]["Subscribers"]
    (sns,) = [s for s in subscribers if s["SubscriptionType"] == "SNS"]
    topic_id = sns["Address"]["Ref"]
    assert cost[topic_id]["Type"] == "AWS::SNS::Topic"  # its own topic, in the same stack and region
    assert {"ml-platform@example.com"} <= {
        s["Address"] for s in subscribers if s["SubscriptionType"] == "EMAIL"
    }


def test_a_stack_that_uses_a_type_its_region_lacks_is_refused_naming_it(tmp_path, monkeypatch):
    """What CloudFormation would fail at deploy: refused at synthesis, by stack, type and region."""
    from genai_stack import stage
    from genai_stack.cli.synth import cdk_app
    from genai_stack.config import ProfileError

    monkeypatch.setattr(
        stage, "missing_types", lambda region: frozenset({"AWS::AutoScaling::AutoScalingGroup"})
    )
    with pytest.raises(ProfileError, match=r"hk-open-models: region: the hk-open-models-hosting stack uses "
                       r"AWS::AutoScaling::AutoScalingGroup, which CloudFormation does not offer in ap-east-1"):  # fmt: skip
        stage.ProfileStacks(cdk_app(tmp_path / "out"), "hk", profile=hong_kong_profile(tmp_path))


def test_plan_says_where_the_budget_stack_is(hong_kong):
    from genai_stack.cli.plan import plan_document

    document = plan_document(hong_kong[1])
    assert document["stacks"]["hk-open-models-cost"]["region"] == "us-east-1"
    assert document["stacks"]["hk-open-models-hosting"]["region"] == "ap-east-1"
