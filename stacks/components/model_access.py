"""ModelAccess: a managed policy to invoke exactly the profile's Bedrock models, optionally only
with the profile's guardrail.

Sources for the statements (Amazon Bedrock user guide, retrieved 2026-11-22):
- inference-profiles-prereq.html: a system (cross-region) inference profile is invoked through its
  ARN in the calling region, and the caller also needs the foundation model in every destination
  region of the profile; AWS's example limits those foundation-model ARNs with the condition key
  `bedrock:InferenceProfileArn`.
- global-cross-region-inference.html: a `global.` profile needs the region-less foundation-model ARN
  `arn:aws:bedrock:::foundation-model/ID` with `aws:RequestedRegion = unspecified`.
- guardrails-permissions-id.html ("Enforce the use of specific guardrails in model inference
  requests"): Allow InvokeModel/InvokeModelWithResponseStream with `StringEquals
  bedrock:GuardrailIdentifier = <guardrail ARN>:<version>` (a list of such values is allowed,
  example 5: here the current and the previous version, see GuardrailRef), an explicit Deny with
  `StringNotEquals` on the same key so no other grant can bypass it, and Allow
  `bedrock:ApplyGuardrail` on the guardrail ARN without version.
- guardrails-permissions-kms.html: callers of a guardrail encrypted with a customer managed key
  need `kms:Decrypt` on that key.
- API_runtime_Converse.html: Converse is authorised as bedrock:InvokeModel and ConverseStream as
  bedrock:InvokeModelWithResponseStream (there is no bedrock:Converse action).
Embedding models are granted without the guardrail condition: guardrails evaluate the prompts and
responses of text and image generation, and the knowledge-base roles call embedding models only.
Image-generation models are granted without it too: AWS's list of the models Amazon Bedrock
Guardrails supports on InvokeModel ("Supported Regions and models for Amazon Bedrock Guardrails",
https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-supported.html) names text models
and documents no guarded InvokeModel of an image model, so a Deny on a missing GuardrailIdentifier
would either block the call or rely on undocumented behaviour. The gateway, their only caller here,
checks the prompt and every generated image with ApplyGuardrail instead (lambdas/gateway/images.py;
images in ApplyGuardrail: "Block harmful images with content filters",
https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-mmfilter.html). This is why the
mandatory-guardrail profiles (managed-api) configure no image alias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import BedrockCatalog
from genai_stack.compliance import nag_resource

INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def foundation_model_arn(region: str, model_id: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def model_or_profile_arn(scope: Construct, model_or_profile_id: str, catalog: BedrockCatalog) -> str:
    """The ARN to invoke or copy: a system inference profile's (this account and region), else the model's."""
    stack = Stack.of(scope)
    if model_or_profile_id in catalog.inference_profiles:
        return stack.format_arn(
            service="bedrock", resource="inference-profile", resource_name=model_or_profile_id
        )
    return foundation_model_arn(stack.region, model_or_profile_id)


def global_foundation_model_arn(model_id: str) -> str:
    return f"arn:aws:bedrock:::foundation-model/{model_id}"


@dataclass(frozen=True)
class GuardrailRef:
    """A published guardrail version; callers pass `identifier` (ARN:version) to pin it.

    `accepted`: the `ARN:VERSION` values the policy lets through (default: `identifier` alone); the
    Guardrail construct passes the current and the previous version, so a caller that still sends
    the previous one (the gateway, until its own stack is updated) keeps working during a rollout.
    `key_arn`: the KMS key the guardrail is encrypted with (callers need kms:Decrypt on it).
    `config_digest`: changes whenever the guardrail's configuration does (a literal, not a token),
    so a template that embeds it changes with every new version.
    """

    arn: str
    version: str
    key_arn: str | None = None
    config_digest: str = ""
    accepted: tuple[str, ...] = ()
    grounding: bool = (
        False  # it has a contextual grounding policy (worth an ApplyGuardrail per grounded answer)
    )

    @property
    def identifier(self) -> str:
        return f"{self.arn}:{self.version}"

    @property
    def accepted_identifiers(self) -> list[str]:
        return list(self.accepted or (self.identifier,))


@dataclass(frozen=True)
class ApplicationProfileRef:
    """An application inference profile and the model or system profile it copies."""

    arn: str
    source: str


class ModelAccess(Construct):
    """`policy`: invoke the listed models and profiles, on their exact ARNs and nothing wider."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalog: BedrockCatalog,
        models: Sequence[str],
        inference_profiles: Sequence[str] = (),
        application_profiles: Sequence[ApplicationProfileRef] = (),
        guardrail: GuardrailRef | None = None,
        guardrail_profile_arns: Sequence[str] = (),
        enforce_guardrail: bool = False,
        custom_serving: Sequence[Literal["on_demand", "provisioned"]] = (),
        owner_tag: tuple[str, str] | None = None,
    ) -> None:
        """`custom_serving`: the kinds of custom-model serving the training approach makes callable
        (its customization pipelines' on-demand deployments, Provisioned Throughput), invoked by ARN
        (custom-model-deployment/* or provisioned-model/*: the ids are made when a pipeline runs) and
        held to the resources carrying `owner_tag` (the profile's tag, which the pipelines put on them:
        aws:ResourceTag is a condition key of InvokeModel on both resource types, Service Authorization
        Reference, Amazon Bedrock)."""
        super().__init__(scope, construct_id)
        if enforce_guardrail and guardrail is None:
            raise ValueError("enforce_guardrail needs a guardrail")
        stack = Stack.of(self)
        region = stack.region
        # The condition key's value is `ARN:VERSION` for a numeric version, and several values may be
        # listed (guardrails-permissions-id, examples 1 and 5).
        guarded = (
            {"StringEquals": {"bedrock:GuardrailIdentifier": guardrail.accepted_identifiers}}
            if enforce_guardrail
            else {}
        )

        def profile_arn(profile_id: str) -> str:
            return f"arn:aws:bedrock:{region}:{stack.account}:inference-profile/{profile_id}"

        statements: list[iam.PolicyStatement] = []
        generation: list[str] = []  # every resource that generates content, for the guardrail Deny

        def allow(
            sid: str, resources: list[str], conditions: dict | None = None, *, embeddings: bool = False
        ):
            merged = dict(conditions or {})
            if not embeddings and guarded:
                merged = _merge(merged, guarded)
                generation.extend(resources)
            statements.append(
                iam.PolicyStatement(
                    sid=sid, actions=INVOKE_ACTIONS, resources=sorted(resources), conditions=merged or None
                )
            )

        in_region = sorted(set(models))
        text_models = [m for m in in_region if catalog.models[m].modality == "text"]
        embedding_models = [m for m in in_region if catalog.models[m].modality == "embeddings"]
        image_models = [m for m in in_region if catalog.models[m].modality == "image"]
        if text_models:
            allow("InvokeModelsInRegion", [foundation_model_arn(region, m) for m in text_models])
        if image_models:  # checked with ApplyGuardrail by the gateway (module docstring)
            allow(
                "InvokeImageModels", [foundation_model_arn(region, m) for m in image_models], embeddings=True
            )
        if embedding_models:
            allow(
                "InvokeEmbeddingModels",
                [foundation_model_arn(region, m) for m in embedding_models],
                embeddings=True,
            )

        app_by_source: dict[str, list[str]] = {}
        for app in application_profiles:
            app_by_source.setdefault(app.source, []).append(app.arn)
        for embeddings in (False, True):
            apps = [
                a.arn
                for a in application_profiles
                if (catalog.model_of(a.source).modality == "embeddings") == embeddings
            ]
            if apps:
                sid = (
                    "InvokeEmbeddingApplicationProfiles"
                    if embeddings
                    else "InvokeApplicationInferenceProfiles"
                )
                allow(sid, apps, embeddings=embeddings)

        if custom_serving:
            if owner_tag is None:
                raise ValueError("custom_serving needs owner_tag: the serving resources have no fixed ARN")
            kinds = {"on_demand": "custom-model-deployment", "provisioned": "provisioned-model"}
            custom_arns = [
                f"arn:aws:bedrock:{region}:{stack.account}:{kinds[kind]}/*"
                for kind in sorted(set(custom_serving))
            ]
            allow(
                "InvokeTheProfilesCustomModels",
                custom_arns,
                {"StringEquals": {f"aws:ResourceTag/{owner_tag[0]}": owner_tag[1]}},
            )
            self.custom_arns = custom_arns

        for index, profile_id in enumerate(sorted(set(inference_profiles))):
            profile = catalog.inference_profiles[profile_id]
            callers = [profile_arn(profile_id), *app_by_source.get(profile_id, [])]
            allow(f"InvokeInferenceProfile{index}", [profile_arn(profile_id)])
            through_profile = {"StringLike": {"bedrock:InferenceProfileArn": callers}}
            if profile.is_global:
                allow(
                    f"InvokeGlobalProfile{index}InRegion",
                    [foundation_model_arn(region, profile.model_id)],
                    _merge(through_profile, {"StringEquals": {"aws:RequestedRegion": region}}),
                )
                allow(
                    f"InvokeGlobalProfile{index}Anywhere",
                    [global_foundation_model_arn(profile.model_id)],
                    _merge(through_profile, {"StringEquals": {"aws:RequestedRegion": "unspecified"}}),
                )
            else:
                destinations = profile.destinations(region)
                allow(
                    f"InvokeProfile{index}Destinations",
                    [foundation_model_arn(destination, profile.model_id) for destination in destinations],
                    through_profile,
                )

        if enforce_guardrail:
            statements.append(
                iam.PolicyStatement(
                    sid="DenyInvokeWithoutTheGuardrail",
                    effect=iam.Effect.DENY,
                    actions=INVOKE_ACTIONS,
                    resources=sorted(set(generation)),
                    conditions={
                        "StringNotEquals": {"bedrock:GuardrailIdentifier": guardrail.accepted_identifiers}
                    },
                )
            )
        if guardrail is not None:
            # A STANDARD-tier guardrail runs through its guardrail profile: ApplyGuardrail also names
            # the profile in every destination region (Bedrock user guide: guardrail-profiles-permissions).
            statements.append(
                iam.PolicyStatement(
                    sid="ApplyTheGuardrail",
                    actions=["bedrock:ApplyGuardrail"],
                    resources=[guardrail.arn, *guardrail_profile_arns],
                )
            )
            if guardrail.key_arn is not None:
                # Callers of a guardrail encrypted with a customer managed key need kms:Decrypt on
                # that key, during inference as well as ApplyGuardrail (Bedrock user guide, "(Optional)
                # Create a customer managed key for your guardrail", statement
                # AllowRoleToUseEncryptedGuardrailDuringInference:
                # https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-kms.html).
                # The exact key ARN; no kms:ViaService or encryption-context condition, because that
                # page documents none, and a guessed one (e.g. the Region of a cross-Region guardrail
                # profile) could deny the real call.
                statements.append(
                    iam.PolicyStatement(
                        sid="DecryptTheGuardrail", actions=["kms:Decrypt"], resources=[guardrail.key_arn]
                    )
                )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="genai-stack: invoke the profile's Bedrock models"
            + (" only with its guardrail" if enforce_guardrail else ""),
            statements=statements,
        )
        if custom_serving:
            compliance.acknowledge(
                self.policy,
                *(compliance.CUSTOM_MODEL_SERVING.on(nag_resource(self, arn)) for arn in self.custom_arns),
            )


def _merge(left: dict, right: dict) -> dict:
    """Two IAM condition blocks as one (operators combined, keys within an operator combined)."""
    merged = {operator: dict(keys) for operator, keys in left.items()}
    for operator, keys in right.items():
        merged.setdefault(operator, {}).update(keys)
    return merged
