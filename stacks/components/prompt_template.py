"""PromptTemplate: a Bedrock prompt (text template) and a numbered version per change."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_kms as kms
from constructs import Construct

from genai_stack.components.versioning import config_digest, keep_published_versions


class PromptTemplate(Construct):
    """An AWS::Bedrock::Prompt with one TEXT variant, and an AWS::Bedrock::PromptVersion.

    The template text is passed in (read from the profile's prompt file by the profile loader);
    `{{variable}}` placeholders become the prompt's input variables.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        text: str,
        variables: Sequence[str],
        model_id: str,
        max_tokens: int,
        temperature: float,
        encryption_key: kms.IKey,
        description: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        variant = bedrock.CfnPrompt.PromptVariantProperty(
            name="default",
            template_type="TEXT",
            model_id=model_id,
            inference_configuration=bedrock.CfnPrompt.PromptInferenceConfigurationProperty(
                text=bedrock.CfnPrompt.PromptModelInferenceConfigurationProperty(
                    max_tokens=max_tokens, temperature=temperature
                )
            ),
            template_configuration=bedrock.CfnPrompt.PromptTemplateConfigurationProperty(
                text=bedrock.CfnPrompt.TextPromptTemplateConfigurationProperty(
                    text=text,
                    input_variables=[
                        bedrock.CfnPrompt.PromptInputVariableProperty(name=v) for v in variables
                    ],
                )
            ),
        )
        self.prompt = bedrock.CfnPrompt(
            self,
            "Prompt",
            name=name,
            description=description or None,
            default_variant="default",
            variants=[variant],
            customer_encryption_key_arn=encryption_key.key_arn,
        )
        digest = config_digest(self.prompt, {"variants": [variant], "description": description})
        self.version = bedrock.CfnPromptVersion(
            self, "Version", prompt_arn=self.prompt.attr_arn, description=f"genai-stack config {digest}"
        )
        keep_published_versions(self.version)
