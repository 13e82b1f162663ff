"""The public constructs check their props when created, with a profile's error quality: the
construct, the prop, the value and what is allowed; a dict where a settings object belongs is a
TypeError that names the type (it was an AttributeError deep inside)."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, Aws, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from genai_stack.config import ProfileError, load_profile
from genai_stack.constructs import (
    FEATURE_FLAGS,
    BudgetAlert,
    CostControls,
    Guardrail,
    GuardrailSettings,
    ProfileStacks,
    PropsError,
)

SETTINGS = GuardrailSettings(blocked_input_message="No.", blocked_output_message="No.")


@pytest.fixture
def stack() -> Stack:
    return Stack(App(), "S", env=Environment(account="123456789012", region="us-east-1"))


def cost(stack: Stack, **overrides):
    props = {
        "tag_key": "team",
        "tag_value": "support",
        "monthly_limit_usd": 500,
        "alerts": [BudgetAlert(percent=80, kind="ACTUAL")],
        "anomaly_threshold_usd": 50,
        "topic": sns.Topic(stack, f"T{len(stack.node.children)}"),
    }
    return CostControls(stack, f"Cost{len(stack.node.children)}", **{**props, **overrides})


def test_cost_controls_refuse_a_negative_budget_and_an_alert_beyond_the_profile_rules(stack):
    with pytest.raises(PropsError) as error:
        cost(stack, monthly_limit_usd=-5)
    assert (
        str(error.value)
        == "CostControls('Cost1'): monthly_limit_usd: -5 is not allowed: input should be greater than 0"
    )
    with pytest.raises(
        PropsError,
        match=r"alerts\[1\]\.percent: 2000(\.0)? is not allowed: input should be less than or equal to 1000",
    ):
        cost(stack, alerts=[BudgetAlert(percent=80, kind="ACTUAL"), BudgetAlert(percent=2000, kind="ACTUAL")])
    with pytest.raises(PropsError, match=r"alerts: .*at least 1 item"):
        cost(stack, alerts=[])
    cost(stack)  # the defaults are valid


def test_a_dict_for_a_typed_prop_is_a_type_error_naming_the_type(stack):
    with pytest.raises(TypeError, match=r"CostControls\('Cost\d'\): topic is a dict; it takes sns.ITopic"):
        cost(stack, topic={"arn": "x"})
    key = kms.Key(stack, "Key")
    with pytest.raises(TypeError, match=r"Guardrail\('G'\): settings is a dict; it takes GuardrailSettings"):
        Guardrail(
            stack,
            "G",
            name="g",
            settings={"blocked_input_message": "No."},
            encryption_key=key,
            log_retention_days=30,
        )


def test_a_guardrail_name_bedrock_would_refuse_is_refused_at_construction(stack):
    """AWS::Bedrock::Guardrail Name: 1 to 50 characters of ^[0-9a-zA-Z-_]+$ (its resource schema)."""
    key = kms.Key(stack, "Key")
    for name in ("support guardrail", "x" * 51, ""):
        with pytest.raises(PropsError, match=r"^Guardrail\('G'\): name: "):
            Guardrail(stack, "G", name=name, settings=SETTINGS, encryption_key=key, log_retention_days=30)
    # Its log group's retention: the periods CloudWatch Logs accepts, as in a profile.
    with pytest.raises(
        PropsError, match=r"^Guardrail\('G'\): log_retention_days: 8 is not a CloudWatch Logs retention"
    ):
        Guardrail(stack, "G", name="g", settings=SETTINGS, encryption_key=key, log_retention_days=8)
    Guardrail(
        stack, "G", name="support_guardrail-1", settings=SETTINGS, encryption_key=key, log_retention_days=30
    )


def test_standard_tier_takes_the_region_s_guardrail_profile_unless_none_is_known():
    stack = Stack(App(), "S", env=Environment(account="123456789012", region="us-east-1"))
    guardrail = Guardrail(
        stack, "G", name="g", settings=SETTINGS, encryption_key=kms.Key(stack, "K"), log_retention_days=30
    )
    assert guardrail.profile_arns  # us.guardrail.v1:0 in its destination regions
    agnostic = Stack(App(), "A")
    with pytest.raises(PropsError, match="cross_region_profile: the STANDARD tier needs"):
        Guardrail(
            agnostic,
            "G",
            name="g",
            settings=SETTINGS,
            encryption_key=kms.Key(agnostic, "K"),
            log_retention_days=30,
        )


def test_profile_stacks_need_the_project_s_feature_flags_on_the_app():
    """Without them aws-cdk-lib's old defaults apply and a profile fails deep in jsii (an access-log
    bucket's ACL) or synthesizes to other resources than the tested ones: said at once instead."""
    with pytest.raises(
        PropsError, match=r"ProfileStacks\('Team'\): the App lacks \d+ of genai-stack's \d+ feature flags"
    ):
        ProfileStacks(App(), "Team", profile=load_profile("customer-service"))
    first = next(iter(FEATURE_FLAGS))
    partial = App(context={flag: value for flag, value in FEATURE_FLAGS.items() if flag != first})
    with pytest.raises(PropsError, match=re.escape(first)):
        ProfileStacks(partial, "Team", profile=load_profile("customer-service"))


def test_an_environment_is_validated_for_its_region_and_needs_a_concrete_account():
    profile = load_profile("custom-model")
    with pytest.raises(ProfileError) as error:
        ProfileStacks(
            App(), "Eu", profile=profile, env=Environment(account="123456789012", region="eu-west-1")
        )
    message = str(error.value)
    assert "custom-model as account 123456789012, region eu-west-1: bedrock.models[0]" in message
    assert "call it through eu.amazon.nova-micro-v1:0" in message
    assert "gateway: needs the bedrock section" not in message  # it was reported after any bedrock error
    with pytest.raises(PropsError, match=r"env\.account: give a concrete account"):
        ProfileStacks(
            App(),
            "X",
            profile=load_profile("managed-api"),
            env=Environment(account=Aws.ACCOUNT_ID, region="us-east-1"),
        )
    with pytest.raises(ProfileError, match="name: 'Support_Prod' is not allowed"):
        load_profile("managed-api").for_environment(name="Support_Prod")


def test_a_function_bundle_keeps_its_scripts_executable_whatever_the_installed_mode(tmp_path):
    """The gateway's wrapper script must be executable in the asset (Lambda runs it); an installer that
    drops a wheel's mode bits must not break it. A team's code folder gets the same treatment."""
    from aws_cdk import DockerImage

    from genai_stack.components.python_function import _CopyPackage

    code = tmp_path / "functions" / "hello"
    code.mkdir(parents=True)
    (code / "handler.py").write_text("def on_event(event, context):\n    return {}\n")
    (code / "bootstrap").write_text("#!/bin/sh\nexec python3 -m hello.runtime\n")
    (code / "bootstrap").chmod(0o644)
    (code / "notes.txt").write_text("not a script\n")
    out = tmp_path / "out"
    assert _CopyPackage("hello", tmp_path / "functions").try_bundle(
        str(out), image=DockerImage.from_registry("x")
    )
    assert (out / "hello" / "bootstrap").stat().st_mode & 0o111 == 0o111
    assert (out / "hello" / "handler.py").stat().st_mode & 0o111 == 0
    assert (out / "hello" / "notes.txt").stat().st_mode & 0o111 == 0
    assert (code / "bootstrap").stat().st_mode & 0o111 == 0  # the source is left as it was


def test_a_bundle_with_another_package_imports_its_handler_from_the_bundle_alone(tmp_path):
    """The login rotation function imports the pgvector schema's Data API helpers: its bundle holds both
    packages, and its handler imports from the bundle with nothing else on the path."""
    import subprocess
    import sys

    from aws_cdk import DockerImage

    from genai_stack.components.python_function import _CopyPackage, package_code

    out = tmp_path / "out"
    assert _CopyPackage("login_rotation", None, ("pgvector_schema",)).try_bundle(
        str(out), image=DockerImage.from_registry("x")
    )
    assert sorted(p.name for p in (out / "lambdas").iterdir()) == [
        "__init__.py",
        "login_rotation",
        "pgvector_schema",
    ]
    # Run from the bundle (the first entry of sys.path is the working directory, as in Lambda's task root).
    probe = (
        "import lambdas.login_rotation.handler, lambdas.pgvector_schema.logic as schema; "
        "print(lambdas.login_rotation.handler.__file__); print(schema.__file__)"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter on a probe this test wrote
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=out, check=True
    )
    files = result.stdout.split()
    assert len(files) == 2
    assert all(file.startswith(str(out)) for file in files), files
    with pytest.raises(ValueError, match="with_packages: no package nothing_here"):
        package_code("login_rotation", None, ("nothing_here",))
