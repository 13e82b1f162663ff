"""Guardrail and prompt versions: a configuration change publishes a new version, no change keeps it."""

from __future__ import annotations

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms

from genai_stack.catalog import guardrail_profile
from genai_stack.components.guardrail import Guardrail
from genai_stack.components.prompt_template import PromptTemplate
from genai_stack.config import Guardrail as GuardrailSettings

BASE = GuardrailSettings(blocked_input_message="No.", blocked_output_message="No.")


def guardrail_version_description(settings: GuardrailSettings, stack_id: str, app: App) -> str:
    stack = Stack(app, stack_id, env=Environment(account="123456789012", region="us-east-1"))
    guardrail = Guardrail(
        stack,
        "Guardrail",
        name="g",
        settings=settings,
        encryption_key=kms.Key(stack, "Key"),
        cross_region_profile=guardrail_profile("us-east-1"),
        log_retention_days=30,
    )
    return guardrail.version.description


def test_the_guardrail_version_changes_with_the_configuration_and_only_then():
    app = App()
    first = guardrail_version_description(BASE, "A", app)
    same = guardrail_version_description(BASE, "B", app)
    stricter = BASE.model_copy(update={"blocked_output_message": "Blocked by policy."})
    changed = guardrail_version_description(stricter, "C", app)
    assert first == same
    assert first != changed


def prompt_version_description(text: str, stack_id: str, app: App) -> str:
    stack = Stack(app, stack_id, env=Environment(account="123456789012", region="us-east-1"))
    prompt = PromptTemplate(
        stack,
        "Prompt",
        name="p",
        text=text,
        variables=["name"],
        model_id="amazon.nova-lite-v1:0",
        max_tokens=100,
        temperature=0.2,
        encryption_key=kms.Key(stack, "Key"),
    )
    return prompt.version.description


def test_the_prompt_version_changes_with_the_template_and_only_then():
    app = App()
    assert prompt_version_description("Hi {{name}}", "A", app) == prompt_version_description(
        "Hi {{name}}", "B", app
    )
    assert prompt_version_description("Hi {{name}}", "C", app) != prompt_version_description(
        "Hello {{name}}", "D", app
    )
