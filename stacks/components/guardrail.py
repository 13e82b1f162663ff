"""Guardrail: an Amazon Bedrock guardrail with every policy type the profile sets, a numbered
version that is published again whenever the configuration changes, and the window of versions
callers may send while a change rolls out (the current and the previous one).

Rollout of a guardrail change under `cdk deploy --all` (bedrock stack first, orchestration after):
1. the bedrock stack publishes version N+1; the window custom resource, updated with it, returns
   Current = ARN:N+1 and Previous = ARN:N (CloudFormation's OldResourceProperties); the model-access
   policy accepts both, so the gateway, which still sends N, keeps working;
2. the orchestration stack's template embeds `GuardrailRef.config_digest`, so it differs too and
   the CDK CLI deploys it (an unchanged template is skipped, and only a deployed template re-reads
   the version through Fn::GetStackOutput): the gateway then sends N+1;
3. N stays accepted until the next guardrail change; a rollback of either stack is an Update that
   lands on an accepted pair as well.
"""

from __future__ import annotations

from typing import Annotated

from aws_cdk import Stack, Token
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_kms as kms
from constructs import Construct
from pydantic import AfterValidator, BaseModel, Field

from genai_stack.catalog import GuardrailProfile, guardrail_profile
from genai_stack.components.model_access import GuardrailRef
from genai_stack.components.python_custom_resource import PythonCustomResource
from genai_stack.components.versioning import config_digest, keep_published_versions
from genai_stack.config import Guardrail as GuardrailSettings
from genai_stack.profile.common import _known_retention
from genai_stack.props import PropsError, refuse_dicts, validated

B = bedrock.CfnGuardrail


# AWS::Bedrock::Guardrail Name (CloudFormation resource schema: 1 to 50 characters, ^[0-9a-zA-Z-_]+$).
NAME_PATTERN = r"^[0-9a-zA-Z_-]+$"


class _Props(BaseModel):
    name: str = Field(min_length=1, max_length=50, pattern=NAME_PATTERN)
    # The CloudWatch Logs retention periods a profile accepts (AWS::Logs::LogGroup RetentionInDays).
    log_retention_days: Annotated[int, AfterValidator(_known_retention)]


@refuse_dicts
class Guardrail(Construct):
    """AWS::Bedrock::Guardrail + AWS::Bedrock::GuardrailVersion.

    `cross_region_profile` is the system guardrail profile that the STANDARD tier needs (it runs
    the safeguards in the geography's regions); by default the one the data tables give for the
    stack's region. CLASSIC takes none. `settings` is a profile's `bedrock.guardrail` section, with
    the same rules and defaults.

    Example::

        from genai_stack.constructs import Guardrail, GuardrailSettings

        guardrail = Guardrail(
            stack, "Guardrail", name="support-guardrail", encryption_key=key, log_retention_days=90,
            settings=GuardrailSettings(
                blocked_input_message="I can't help with that.",
                blocked_output_message="I can't answer that.",
            ),
        )
        guardrail.ref  # a GuardrailRef for ModelAccess and the gateway: id, version, ARNs
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        settings: GuardrailSettings,
        encryption_key: kms.IKey,
        log_retention_days: int,
        cross_region_profile: GuardrailProfile | None = None,
    ) -> None:
        owner = f"Guardrail({construct_id!r})"
        validated(owner, _Props, {"name": name, "log_retention_days": log_retention_days})
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        if settings.tier == "STANDARD" and cross_region_profile is None and not Token.is_unresolved(region):
            cross_region_profile = guardrail_profile(region)
        if (settings.tier == "STANDARD") != (cross_region_profile is not None):
            raise PropsError(
                owner,
                [
                    f"cross_region_profile: the STANDARD tier needs a cross-region guardrail profile "
                    f"(none is known for region {region}: give one, or settings tier CLASSIC)"
                    if settings.tier == "STANDARD"
                    else "cross_region_profile: the CLASSIC tier takes none"
                ],
            )
        stack = Stack.of(self)
        cross_region_profile_arn = None
        # The profile's ARN in each destination region: callers of ApplyGuardrail need all of them
        # (Bedrock user guide, guardrail-profiles-permissions).
        self.profile_arns: tuple[str, ...] = ()
        if cross_region_profile is not None:
            profile_id = cross_region_profile.profile_id
            cross_region_profile_arn = stack.format_arn(
                service="bedrock", resource="guardrail-profile", resource_name=profile_id
            )
            self.profile_arns = tuple(
                f"arn:{stack.partition}:bedrock:{region}:{stack.account}:guardrail-profile/{profile_id}"
                for region in cross_region_profile.destinations
            )
        tier = settings.tier
        properties = dict(
            name=name,
            description=f"genai-stack guardrail ({tier}; languages {', '.join(settings.languages)})",
            blocked_input_messaging=settings.blocked_input_message,
            blocked_outputs_messaging=settings.blocked_output_message,
            kms_key_arn=encryption_key.key_arn,
            cross_region_config=(
                B.GuardrailCrossRegionConfigProperty(guardrail_profile_arn=cross_region_profile_arn)
                if cross_region_profile_arn
                else None
            ),
            content_policy_config=B.ContentPolicyConfigProperty(
                filters_config=[
                    B.ContentFilterConfigProperty(
                        type=f.type,
                        input_strength=f.input_strength,
                        output_strength=f.output_strength,
                        input_modalities=list(f.modalities),
                        output_modalities=list(f.modalities),
                    )
                    for f in settings.content_filters
                ],
                content_filters_tier_config=B.ContentFiltersTierConfigProperty(tier_name=tier),
            )
            if settings.content_filters
            else None,
            topic_policy_config=B.TopicPolicyConfigProperty(
                topics_config=[
                    B.TopicConfigProperty(
                        name=t.name, definition=t.definition, examples=list(t.examples) or None, type="DENY"
                    )
                    for t in settings.denied_topics
                ],
                topics_tier_config=B.TopicsTierConfigProperty(tier_name=tier),
            )
            if settings.denied_topics
            else None,
            word_policy_config=B.WordPolicyConfigProperty(
                words_config=[B.WordConfigProperty(text=w) for w in settings.words] or None,
                managed_word_lists_config=[B.ManagedWordsConfigProperty(type="PROFANITY")]
                if settings.managed_profanity_filter
                else None,
            )
            if settings.words or settings.managed_profanity_filter
            else None,
            sensitive_information_policy_config=B.SensitiveInformationPolicyConfigProperty(
                pii_entities_config=[
                    B.PiiEntityConfigProperty(type=p.type, action=p.action) for p in settings.pii_entities
                ]
                or None,
                regexes_config=[
                    B.RegexConfigProperty(
                        name=r.name, pattern=r.pattern, action=r.action, description=r.description
                    )
                    for r in settings.regexes
                ]
                or None,
            )
            if settings.pii_entities or settings.regexes
            else None,
            contextual_grounding_policy_config=B.ContextualGroundingPolicyConfigProperty(
                filters_config=[
                    B.ContextualGroundingFilterConfigProperty(
                        type="GROUNDING", threshold=settings.contextual_grounding.grounding_threshold
                    ),
                    B.ContextualGroundingFilterConfigProperty(
                        type="RELEVANCE", threshold=settings.contextual_grounding.relevance_threshold
                    ),
                ]
            )
            if settings.contextual_grounding
            else None,
        )
        self.guardrail = bedrock.CfnGuardrail(self, "Guardrail", **properties)
        digest = config_digest(self.guardrail, properties)
        self.version = bedrock.CfnGuardrailVersion(
            self,
            "Version",
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description=f"genai-stack config {digest}",
        )
        keep_published_versions(self.version)
        self.digest = digest
        self.window = PythonCustomResource(
            self,
            "VersionWindow",
            package="guardrail_window",
            description="Guardrail versions the model-access policy accepts (current and previous)",
            resource_type="Custom::GuardrailVersionWindow",
            properties={
                "GuardrailArn": self.guardrail.attr_guardrail_arn,
                "Version": self.version.attr_version,
            },
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=30,
        )
        self.ref = GuardrailRef(
            arn=self.guardrail.attr_guardrail_arn,
            version=self.version.attr_version,
            key_arn=encryption_key.key_arn,
            config_digest=digest,
            grounding=settings.contextual_grounding is not None,
            accepted=(
                self.window.resource.get_att_string("Current"),
                self.window.resource.get_att_string("Previous"),
            ),
        )
