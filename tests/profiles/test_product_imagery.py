"""product-imagery, first part: Stable Diffusion 3.5 Large behind the gateway's images endpoint, the
guardrail on prompts and images (docs/profiles/product-imagery.md)."""

from __future__ import annotations

from genai_stack.catalog import bedrock_catalog, bedrock_image_prices
from genai_stack.config import load_profile

NAME = "product-imagery"
MODEL = "stability.sd3-5-large-v1:0"


def test_the_image_model_is_current_in_the_region_and_sdxl_and_nova_canvas_are_not_offered():
    profile = load_profile(NAME)
    catalog = bedrock_catalog()
    assert catalog.models[MODEL].modality == "image"
    assert profile.region in catalog.models[MODEL].regions
    for gone in ("stability.stable-diffusion-xl-v1", "amazon.nova-canvas-v1:0"):
        assert gone not in catalog.models  # past their end of life: no profile can name them
    assert profile.gateway.images["lifestyle"] == MODEL
    assert profile.gateway.images["brand"].fallback == MODEL  # while the brand endpoint starts


def test_the_guardrail_reads_images_and_is_applied_by_the_gateway_not_by_iam():
    guardrail = load_profile(NAME).bedrock.guardrail
    assert guardrail.mandatory is False  # IAM cannot hold an image model to a guardrail
    reading = {f.type for f in guardrail.content_filters if "IMAGE" in f.modalities}
    assert reading == {"SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT"}


def test_the_gateway_prices_each_image_and_checks_it_with_the_guardrail(synthesized):
    orchestration = synthesized.template(NAME, "Orchestration")
    (config,) = [
        r["Properties"]["Environment"]["Variables"]["GATEWAY_CONFIG"]
        for r in orchestration["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and "GATEWAY_CONFIG" in r["Properties"].get("Environment", {}).get("Variables", {})
    ]
    text = "".join(part for part in config["Fn::Join"][1] if isinstance(part, str))
    price = bedrock_image_prices()[MODEL]
    assert f'"images":{{"lifestyle":{{"model":"{MODEL}","price_per_image":{price}}}' in text  # EstimatedCost
    assert '"guardrail":{"identifier":"' in text  # ApplyGuardrail on each prompt and image
    assert '"image_store":{"bucket":"' in text  # url responses: pre-signed, from the data bucket
