"""Bedrock resource ARNs and what AWS evaluates for a model invocation, from AWS's pages.

- Resource ARN formats (Service Authorization Reference, Amazon Bedrock):
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html
  foundation-model: arn:${Partition}:bedrock:${Region}::foundation-model/${ResourceId}
  inference-profile: arn:${Partition}:bedrock:${Region}:${Account}:inference-profile/${ResourceId}
  guardrail: arn:${Partition}:bedrock:${Region}:${Account}:guardrail/${GuardrailId}
  guardrail-profile: arn:${Partition}:bedrock:${Region}:${Account}:guardrail-profile/${ResourceId}
  knowledge-base: arn:${Partition}:bedrock:${Region}:${Account}:knowledge-base/${KnowledgeBaseId}
- Converse is authorized as bedrock:InvokeModel, ConverseStream as
  bedrock:InvokeModelWithResponseStream (Bedrock API reference, Converse: "requires permission for
  the bedrock:InvokeModel action"): https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
- A system-defined (cross-Region) inference profile needs the profile ARN in the calling Region and
  the foundation model in every Region it routes to ("Prerequisites for inference profiles":
  https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html); the routes
  are AWS's table, kept in stacks/data/bedrock_models.json (inference-profiles-support.html).
- An application inference profile is invoked by its ARN; the caller also needs what it copies: the
  foundation model, or the system profile and the foundation model in each of its destination
  Regions ("Prerequisites for inference profiles": "If you specify an inference profile in the
  Resource field ..., you must also specify the foundation model in each Region associated with
  it"). bedrock:InferenceProfileArn then names the profile the request went through.
- bedrock:GuardrailIdentifier carries `GUARDRAIL_ARN:VERSION` of the guardrail the request names
  ("Enforce the use of specific guardrails in model inference requests":
  https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-id.html).
- Using a guardrail needs bedrock:ApplyGuardrail on it ("Set up permissions to use guardrails":
  https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions.html), a guardrail with
  cross-Region inference also on the guardrail profile in each destination Region (Bedrock user
  guide, "Permissions for cross-Region inference with guardrails"), and a guardrail encrypted with
  a customer managed key needs kms:Decrypt for its users ("(Optional) Create a customer managed key
  for your guardrail": https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-kms.html).
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_stack.catalog import bedrock_catalog, guardrail_profile
from tests.access.deployment import Deployment
from tests.access.rows import Call

CONVERSE_WHY = "Converse is authorized as bedrock:InvokeModel (API_runtime_Converse)"


def foundation_model(deployment: Deployment, model_id: str, region: str | None = None) -> str:
    return deployment.arn("bedrock", f"foundation-model/{model_id}", region=region, account="")


def invocation_targets(
    deployment: Deployment, model_id: str, through: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """(resource ARN, extra context) pairs AWS evaluates for one model invocation. `through`: the
    ARN of the application inference profile the call names, `model_id` what that profile copies."""
    if through is not None:
        assert ":application-inference-profile/" in through, through
        via = {"bedrock:InferenceProfileArn": through}
        return [(through, {})] + [
            (resource, {**context, **via}) for resource, context in invocation_targets(deployment, model_id)
        ]
    if model_id.startswith("arn:"):
        raise NotImplementedError(f"model ARNs as modelId ({model_id}) need their own rows")
    profile = bedrock_catalog().inference_profiles.get(model_id)
    if profile is None:
        return [(foundation_model(deployment, model_id), {})]
    profile_arn = deployment.arn("bedrock", f"inference-profile/{model_id}")
    return [(profile_arn, {})] + [
        (foundation_model(deployment, profile.model_id, region), {"bedrock:InferenceProfileArn": profile_arn})
        for region in profile.destinations(deployment.region)
    ]


@dataclass(frozen=True)
class Guardrail:
    arn: str  # arn:...:guardrail/ID, built from the id
    version: str
    key_arn: str | None
    cross_region: bool

    @property
    def identifier(self) -> str:
        """The value of bedrock:GuardrailIdentifier for requests that name this version."""
        return f"{self.arn}:{self.version}"


def guardrail(deployment: Deployment, identifier: str, version: str) -> Guardrail:
    """The deployment's guardrail the code names by ARN or id (the ARN is rebuilt from the id)."""
    guardrail_id = identifier.rsplit("/", 1)[-1]
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Bedrock::Guardrail":
                continue
            if deployment.resolver.get_att(stack, logical_id, "GuardrailId") != guardrail_id:
                continue
            props = resource["Properties"]
            key = deployment.resolver.resolve(stack, props["KmsKeyArn"]) if "KmsKeyArn" in props else None
            return Guardrail(
                deployment.arn("bedrock", f"guardrail/{guardrail_id}"),
                version,
                key,
                "CrossRegionConfig" in props,
            )
    raise KeyError(f"no guardrail {identifier} in {deployment.profile}")


def apply_guardrail_rows(deployment: Deployment, rail: Guardrail, *, api: str) -> list[Call]:
    result = [
        Call(
            "bedrock:ApplyGuardrail",
            rail.arn,
            "using a guardrail needs ApplyGuardrail on it (guardrails-permissions)",
            api=api,
        )
    ]
    if rail.cross_region:
        profile = guardrail_profile(deployment.region)
        assert profile is not None, f"no guardrail profile from {deployment.region}"
        result += [
            Call(
                "bedrock:ApplyGuardrail",
                deployment.arn("bedrock", f"guardrail-profile/{profile.profile_id}", region=region),
                "a cross-Region guardrail runs in every destination of its guardrail profile",
                api=api,
            )
            for region in profile.destinations
        ]
    if rail.key_arn:
        result.append(
            Call(
                "kms:Decrypt",
                rail.key_arn,
                "callers of a KMS-encrypted guardrail need kms:Decrypt on its key (guardrails-permissions-kms)",
                context={"kms:ViaService": f"bedrock.{deployment.region}.amazonaws.com"},
                api=api,
            )
        )
    return result
