"""ApplicationInferenceProfile: a tagged copy of a model or system inference profile, so that
Cost Explorer and budgets can split Bedrock spend by tenant or campaign, and `gateway_routes`: the
application inference profile each Bedrock call of the model gateway goes through.

On-demand Bedrock calls carry cost-allocation tags only when they are made through an application
inference profile (Bedrock user guide, "Use tags to monitor costs" in "Set up a model invocation
resource using inference profiles":
https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles.html; "Create an application
inference profile": https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-create.html).
So every Bedrock target of the gateway (chat targets of every alias, embedding aliases) invokes an
application inference profile of its own profile, tagged with the cost-allocation tag and the alias,
or a campaign profile of `bedrock.application_inference_profiles` that the target names."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aws_cdk import CfnTag
from aws_cdk import aws_bedrock as bedrock
from constructs import Construct

from genai_stack.config import Bedrock, Gateway

# AWS::Bedrock::ApplicationInferenceProfile InferenceProfileName: 1 to 64 characters, pattern
# ^([0-9a-zA-Z][ _-]?)+$ (CloudFormation template reference,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-applicationinferenceprofile.html).
NAME_MAX = 64
NAME_PATTERN = re.compile(r"^([0-9a-zA-Z][ _-]?)+$")
ALIAS_TAG = "alias"  # the gateway alias an application inference profile serves


class ApplicationInferenceProfile(Construct):
    """`copy_from_arn` is a foundation-model ARN or a system inference-profile ARN (the CopyFrom pattern)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        copy_from_arn: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if len(name) > NAME_MAX or not NAME_PATTERN.match(name):
            raise ValueError(
                f"{name!r} is not a Bedrock inference profile name (pattern {NAME_PATTERN.pattern})"
            )
        self.profile = bedrock.CfnApplicationInferenceProfile(
            self,
            "Profile",
            inference_profile_name=name,
            description=description or None,
            model_source=bedrock.CfnApplicationInferenceProfile.InferenceProfileModelSourceProperty(
                copy_from=copy_from_arn
            ),
            tags=[CfnTag(key=key, value=value) for key, value in sorted((tags or {}).items())] or None,
        )
        self.arn = self.profile.attr_inference_profile_arn


def profile_name(*parts: str) -> str:
    """A Bedrock inference profile name from `parts` (profile, alias, model): unsafe characters become
    '-', and a name over 64 characters is cut and ends in a hash of the parts, so it stays unique."""
    name = re.sub(r"[^0-9a-zA-Z]+", "-", "-".join(parts)).strip("-")
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]
    return f"{name[: NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class GatewayRoute:
    """One Bedrock target of the gateway and the application inference profile it invokes.

    `model`: the model or system inference profile the profile copies (what the target named, or the
    campaign profile's source); `campaign`: the campaign profile the target names (None: a profile
    created for this alias and model, named `name`)."""

    alias: str
    kind: Literal["chat", "embeddings"]
    model: str
    name: str
    campaign: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.alias, self.campaign or self.model)


def gateway_routes(profile: str, gateway: Gateway | None, settings: Bedrock | None) -> list[GatewayRoute]:
    """Every Bedrock target of `gateway`, in alias order, once per alias and model."""
    if gateway is None or settings is None:
        return []
    campaigns = {app.name: app for app in settings.application_inference_profiles}
    routes: dict[tuple[str, str, str], GatewayRoute] = {}
    for alias, targets in gateway.aliases.items():
        for target in targets:
            if target.application_inference_profile:
                app = campaigns[target.application_inference_profile]
                route = GatewayRoute(alias, "chat", app.source, f"{profile}-{app.name}", campaign=app.name)
            elif target.bedrock:
                route = GatewayRoute(
                    alias, "chat", target.bedrock, profile_name(profile, alias, target.bedrock)
                )
            else:
                continue
            routes.setdefault(route.key, route)
    for alias, model in gateway.embeddings.items():
        route = GatewayRoute(alias, "embeddings", model, profile_name(profile, "emb", alias, model))
        routes.setdefault(route.key, route)
    return list(routes.values())


def route_of(routes: list[GatewayRoute], kind: str, alias: str, model_or_campaign: str) -> GatewayRoute:
    for route in routes:
        if route.key == (kind, alias, model_or_campaign):
            return route
    raise KeyError(f"no application inference profile for {kind} alias {alias} target {model_or_campaign}")
