"""POST /v1/images/generations in the templates (a us-west-2 profile with an image alias:
tests/support/image_profile.py), its access rows against AWS's policy logic, and the profile rules."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from genai_stack.config import ProfileError, load_profile
from lambdas.gateway.config import Settings
from tests.access.rows import function_rows
from tests.access.rows.gateway import image_rows
from tests.access.test_access import mismatches
from tests.support.image_profile import (
    IMAGE_MODEL,
    NAME,
    image_profile_data,
    image_profile_deployment,
    image_profile_synthesis,
)


@pytest.fixture(scope="module")
def templates() -> dict[str, dict]:
    return image_profile_synthesis().templates


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def test_the_images_route_is_a_post_behind_the_same_authorizer(templates):
    resources = templates[f"{NAME}-orchestration"]
    paths = {r["Properties"]["PathPart"] for r in of_type(resources, "AWS::ApiGateway::Resource").values()}
    assert {"images", "generations"} <= paths
    methods = of_type(resources, "AWS::ApiGateway::Method").values()
    (authorizer_id,) = of_type(resources, "AWS::ApiGateway::Authorizer")
    assert len(methods) == 5
    for method in methods:
        assert method["Properties"]["AuthorizerId"] == {"Ref": authorizer_id}
        assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"


def test_profiles_without_image_aliases_have_no_images_route(synthesized):
    resources = synthesized.template("managed-api", "Orchestration")
    paths = {r["Properties"]["PathPart"] for r in of_type(resources, "AWS::ApiGateway::Resource").values()}
    assert "images" not in paths


def test_the_gateway_config_names_the_model_its_price_and_the_image_store(templates):
    (function,) = [
        r["Properties"]
        for k, r in of_type(templates[f"{NAME}-orchestration"], "AWS::Lambda::Function").items()
        if k.startswith("GatewayHandler")
    ]
    config = json.dumps(function["Environment"]["Variables"]["GATEWAY_CONFIG"])
    assert IMAGE_MODEL in config
    assert '\\"price_per_image\\":0.08' in config
    assert '\\"image_store\\":{\\"bucket\\":' in config


def test_the_data_bucket_expires_generated_images(templates):
    (bucket,) = [
        r
        for k, r in of_type(templates[f"{NAME}-foundation"], "AWS::S3::Bucket").items()
        if k.startswith("Data")
    ]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r["Id"] == "expire-gateway-images"]
    assert rule["Prefix"] == "gateway-images/"
    assert rule["ExpirationInDays"] == 3
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_image_models_are_granted_without_the_guardrail_condition(templates):
    policies = of_type(templates[f"{NAME}-bedrock"], "AWS::IAM::ManagedPolicy")
    by_sid = {
        s.get("Sid"): s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    }
    assert "Condition" not in by_sid["InvokeImageModels"]
    assert IMAGE_MODEL in json.dumps(by_sid["InvokeImageModels"]["Resource"])
    # Only a profile whose guardrail is not mandatory may have them (the validator, next test).
    assert "DenyInvokeWithoutTheGuardrail" not in by_sid


def test_a_mandatory_guardrail_refuses_image_models_and_images_need_image_filters(tmp_path):
    """IAM cannot hold an image model to the guardrail (no guarded InvokeModel is documented for
    image models), and ApplyGuardrail reads images only with content filters whose modalities include
    IMAGE: a profile that says otherwise would let images through unchecked."""
    data = image_profile_data()
    data["bedrock"]["guardrail"]["mandatory"] = True
    with pytest.raises(ProfileError, match=r"bedrock\.models\[\d\]: .*image model, which IAM cannot hold"):
        load_profile(write(tmp_path, data))
    data = image_profile_data()
    for content_filter in data["bedrock"]["guardrail"]["content_filters"]:
        content_filter.pop("modalities", None)  # TEXT only
    with pytest.raises(ProfileError, match=r"gateway\.images: .*modalities include IMAGE"):
        load_profile(write(tmp_path, data))


def test_the_gateway_role_makes_its_image_calls_and_only_those(templates):
    deployment = image_profile_deployment()
    (function,) = [f for f in deployment.functions if f.package == "gateway"]
    settings = Settings.model_validate_json(function.environment["GATEWAY_CONFIG"])
    assert set(settings.images) == {"painter"}
    rows = function_rows(function, deployment)
    images = image_rows(settings, deployment, None)
    assert {r.action for r in images} >= {
        "bedrock:InvokeModel",
        "s3:PutObject",
        "s3:GetObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert any(r.expect == "deny" and r.action == "s3:PutObject" for r in images)
    assert not mismatches(deployment, function.role, rows)


def write(tmp_path, data: dict) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def test_an_image_alias_must_be_an_image_model_listed_under_bedrock_models(tmp_path):
    data = image_profile_data()
    data["gateway"]["images"] = {"painter": "amazon.nova-lite-v1:0"}
    with pytest.raises(
        ProfileError, match=r"gateway\.images\.painter: 'amazon.nova-lite-v1:0' is not an image"
    ):
        load_profile(write(tmp_path, data))
    data = image_profile_data()
    data["bedrock"]["models"].remove(IMAGE_MODEL)
    with pytest.raises(
        ProfileError, match=r"gateway\.images\.painter: .* is not listed under bedrock\.models"
    ):
        load_profile(write(tmp_path, data))


def test_an_image_model_must_be_offered_in_the_profile_s_region(tmp_path):
    data = image_profile_data()
    data["region"] = "us-east-1"
    with pytest.raises(ProfileError, match=re.escape(IMAGE_MODEL)):
        load_profile(write(tmp_path, data))


def test_end_of_life_image_models_are_not_in_the_catalog(tmp_path):
    data = image_profile_data()
    data["bedrock"]["models"].append("amazon.titan-image-generator-v2:0")
    data["gateway"]["images"] = {"painter": "amazon.titan-image-generator-v2:0"}
    with pytest.raises(ProfileError, match=r"amazon\.titan-image-generator-v2:0"):
        load_profile(write(tmp_path, data))


def test_the_plan_prices_images_per_image():
    from genai_stack.planning.cost import Usage, estimate

    synthesis = image_profile_synthesis()
    result = estimate(synthesis.profile, synthesis.templates, Usage(images=100))
    (line,) = [line for line in result.usage if line.item == f"{IMAGE_MODEL} images"]
    assert line.monthly_usd == pytest.approx(8.0)
    assert line.unit == "image"
    assert not any("images" in note for note in result.unpriced)


def test_the_rows_catch_a_grant_wider_than_the_prefix():
    """The deny rows are not vacuous: the same rows against a role that may write the whole data
    bucket fail."""
    import copy

    from tests.access.conftest import ACCOUNT
    from tests.access.deployment import Deployment

    synthesis = image_profile_synthesis()
    templates = copy.deepcopy(synthesis.templates)
    widened = 0
    for resource in templates[f"{NAME}-orchestration"]["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "StoreGeneratedImages":
                statement["Resource"] = json.loads(
                    json.dumps(statement["Resource"]).replace("/gateway-images/*", "/*")
                )
                widened += 1
    assert widened == 1
    deployment = Deployment(NAME, templates, account=ACCOUNT, region=synthesis.profile.region)
    (function,) = [f for f in deployment.functions if f.package == "gateway"]
    problems = mismatches(deployment, function.role, function_rows(function, deployment))
    assert any("documents/faq.pdf" in p for p in problems)


def product_imagery() -> dict:
    from genai_stack.config import PROFILES_DIR

    return yaml.safe_load((PROFILES_DIR / "product-imagery.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("brand", "message"),
    [
        (
            {"sagemaker": "nowhere"},
            "gateway.images.brand.sagemaker: 'nowhere' is not an inference endpoint (brand-sdxl)",
        ),
        (
            {"sagemaker": "brand-sdxl", "fallback": "amazon.nova-lite-v1:0"},
            "gateway.images.brand.fallback: 'amazon.nova-lite-v1:0' is not an image-generation model",
        ),
        (
            {"sagemaker": "brand-sdxl", "wait_seconds": 30},
            "gateway.images.brand.wait_seconds: 30 is not below the gateway's deadline_seconds (25)",
        ),
    ],
)
def test_an_endpoint_image_alias_names_an_endpoint_a_listed_fallback_and_a_wait_within_the_deadline(
    tmp_path, brand, message
):
    data = product_imagery()
    data["gateway"]["images"]["brand"] = brand
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, data))
    assert message in str(caught.value)


def test_an_endpoint_image_alias_needs_an_asynchronous_diffusers_endpoint(tmp_path):
    data = product_imagery()
    endpoint = data["inference"]["endpoints"][0]
    endpoint.pop("async_inference")
    endpoint.pop("off_hours")
    endpoint["min_instances"] = 1
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, data))
    assert "gateway.images.brand.sagemaker: 'brand-sdxl' is not an asynchronous diffusers endpoint" in str(
        caught.value
    )
