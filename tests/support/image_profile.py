"""A profile with a gateway image alias (and a custom model on Provisioned Throughput), synthesized once
per test session.

product-imagery has image aliases too; these tests keep their own, smaller profile beside it (and a
custom model on Provisioned Throughput, which no built-in profile has): the customer-service profile
(us-west-2) with a gateway added and its guardrail made non-mandatory
with image content filters (what the validator asks of a profile with image models)."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import yaml

from genai_stack.cli.synth import Synthesis, synthesize
from genai_stack.config import PROFILES_DIR

IMAGE_MODEL = "stability.sd3-5-large-v1:0"
NAME = "images-test"


def image_profile_data() -> dict:
    data = yaml.safe_load((PROFILES_DIR / "customer-service.yaml").read_text(encoding="utf-8"))
    data["name"] = NAME
    data["bedrock"]["models"].append(IMAGE_MODEL)
    # What these tests read is the gateway, its role and the data bucket: the knowledge bases, their
    # Aurora store and invocation logging go (they make the synthesis twice as long).
    for section in ("knowledge_bases", "aurora", "invocation_logging"):
        data["bedrock"].pop(section, None)
    data["bedrock"]["guardrail"].pop("contextual_grounding", None)
    # An image model cannot be held to the guardrail by IAM (stacks/profile/gateway.py): the gateway's
    # ApplyGuardrail checks do it, with content filters that read images.
    data["bedrock"]["guardrail"]["mandatory"] = False
    data["bedrock"]["guardrail"]["content_filters"] = [
        {"type": kind, "modalities": ["TEXT", "IMAGE"]} for kind in ("SEXUAL", "VIOLENCE", "HATE")
    ] + [{"type": "PROMPT_ATTACK", "output_strength": "NONE"}]
    # And a custom model served by Provisioned Throughput, which no built-in profile has (its hourly
    # cost): the gateway's lookup and call of one (tests/access/rows/gateway.py custom_model_rows).
    data["training"] = {
        "customizations": [
            {
                "name": "tuned",
                "base_model": "meta.llama3-1-8b-instruct-v1:0:128k",
                "data_prefix": "customization/tuned/",
                "serving": "provisioned",
            }
        ]
    }
    data["gateway"] = {
        "aliases": {
            "assistant": [{"bedrock": "amazon.nova-lite-v1:0"}],
            "tuned": [{"custom_model": "tuned"}, {"bedrock": "amazon.nova-lite-v1:0"}],
        },
        "images": {"painter": IMAGE_MODEL},
        "tenants": [{"name": "studio"}],
        "cache": {"enabled": False},
        "api_gateway_account_role": "existing",
    }
    return data


@cache
def image_profile_synthesis() -> Synthesis:
    directory = Path(tempfile.mkdtemp(prefix="images-profile-"))
    path = directory / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(image_profile_data()), encoding="utf-8")
    (synthesis,) = synthesize(str(path), directory / "cdk.out")
    return synthesis


def image_profile_deployment():
    """The profile's resolved IAM picture (tests/access), for the checks built-in profiles cannot make."""
    from tests.access.conftest import ACCOUNT
    from tests.access.deployment import Deployment

    synthesis = image_profile_synthesis()
    guardrail = synthesis.profile.bedrock.guardrail
    return Deployment(
        NAME,
        synthesis.templates,
        account=ACCOUNT,
        region=synthesis.profile.region,
        guardrail_enforced=bool(guardrail and guardrail.mandatory),
        cost_tag=(synthesis.profile.cost_allocation.tag_key, synthesis.profile.cost_allocation.tag_value),
    )
