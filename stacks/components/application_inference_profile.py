"""ApplicationInferenceProfile: a tagged copy of a model or system inference profile, so that
Cost Explorer and budgets can split Bedrock spend by tenant or campaign (Bedrock user guide,
inference-profiles.html: "Use tags to monitor costs")."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnTag
from aws_cdk import aws_bedrock as bedrock
from constructs import Construct


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
