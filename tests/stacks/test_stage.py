"""ProfileStacks and GenAiStage: which stacks a profile gets, their names, order and tags."""

from __future__ import annotations

import json

from genai_stack.config import PROFILE_TAG, PROJECT_TAG, load_profile
from genai_stack.stage import PROJECT, GenAiStage
from tests.conftest import cdk_app

TAGGED_TYPES = ("AWS::KMS::Key", "AWS::S3::Bucket", "AWS::SNS::Topic")


def test_every_profile_gets_foundation_and_observability_with_readable_names(synthesized, profile_names):
    assert set(synthesized.profiles) == set(profile_names)
    for name, stage in synthesized.profiles.items():
        assert stage.foundation.stack_name == f"{name}-foundation"
        assert stage.observability.stack_name == f"{name}-observability"
        assert set(synthesized.templates[name]) >= {"Foundation", "Observability"}


def test_stacks_deploy_in_dependency_order(synthesized):
    for stage in synthesized.profiles.values():
        assert stage.foundation in stage.observability.dependencies
        assert not stage.foundation.dependencies


def test_the_environment_comes_from_the_profile(synthesized):
    for name, stacks in synthesized.profiles.items():
        profile = load_profile(name)
        assert {stack.region for stack in stacks.stacks} == {profile.region}


def test_resources_carry_project_profile_cost_and_extra_tags(synthesized):
    for name in synthesized.profiles:
        profile = load_profile(name)
        expected = {
            PROJECT_TAG: PROJECT,
            PROFILE_TAG: name,
            profile.cost_allocation.tag_key: profile.cost_allocation.tag_value,
            **profile.tags,
        }
        checked = 0
        for stack in ("Foundation", "Observability"):
            for resource in synthesized.template(name, stack)["Resources"].values():
                if resource["Type"] in TAGGED_TYPES:
                    tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
                    assert expected.items() <= tags.items(), resource["Type"]
                    checked += 1
        assert checked >= 5


def test_budget_and_anomaly_resources_carry_the_tags_too(synthesized):
    for name in synthesized.profiles:
        profile = load_profile(name)
        for resource_type in (
            "AWS::CE::AnomalyMonitor",
            "AWS::CE::AnomalySubscription",
            "AWS::Budgets::Budget",
        ):
            resources = synthesized.resources(name, "Observability", resource_type).values()
            assert resources, (name, resource_type)
            for resource in resources:  # budgets: on the tag, and on the Bedrock service
                tags = {t["Key"]: t["Value"] for t in resource["Properties"]["ResourceTags"]}
                assert tags[profile.cost_allocation.tag_key] == profile.cost_allocation.tag_value


def test_the_stacks_are_top_level_so_cdk_deploy_all_selects_them(synthesized):
    """`cdk deploy --all` takes the stacks of the main cloud assembly only (not those of a Stage)."""
    manifest = (synthesized.outdir / "manifest.json").read_text()
    for stacks in synthesized.profiles.values():
        for stack in stacks.stacks:
            assert f'"{stack.artifact_id}"' in manifest
            assert f'"stackName": "{stack.stack_name}"' in manifest
    assert not list(synthesized.outdir.glob("assembly-*"))


def test_gen_ai_stage_holds_the_same_stacks_for_pipelines(tmp_path, synthesized):
    profile = load_profile("managed-api")
    app = cdk_app(tmp_path)
    stage = GenAiStage(app, "pipeline-stage", profile=profile)
    nested = app.synth().get_nested_assembly(stage.artifact_id)
    templates = {s.hierarchical_id.split("/")[-1]: s.template for s in nested.stacks}
    assert {s.stack_name for s in nested.stacks} == {
        s.stack_name for s in synthesized.profiles["managed-api"].stacks
    }
    assert without_paths(templates["Foundation"]) == without_paths(
        synthesized.template("managed-api", "Foundation")
    )


def without_paths(template: dict) -> dict:
    """Construct paths and the local folder of an asset (metadata, which a Stage's nested assembly
    places elsewhere) differ inside a Stage by design; everything else, the assets' hashes included,
    must not."""
    copy = json.loads(json.dumps(template))
    for resource in copy["Resources"].values():
        resource.get("Metadata", {}).pop("aws:cdk:path", None)
        resource.get("Metadata", {}).pop("aws:asset:path", None)
    return copy
