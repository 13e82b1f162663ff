"""ModelMonitoring: dashboard widgets and alarms for the Bedrock models of a profile.

Metrics (Amazon Bedrock user guide, retrieved 2026-11-22): namespace AWS/Bedrock with dimension
ModelId — Invocations, InvocationLatency, InvocationThrottles, InvocationServerErrors,
InvocationClientErrors, InputTokenCount, OutputTokenCount (monitoring-runtime-metrics.html);
namespace AWS/Bedrock/Guardrails with dimensions GuardrailArn and GuardrailVersion —
InvocationsIntervened (monitoring-guardrails-cw-metrics.html).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from genai_stack.components.model_access import GuardrailRef
from genai_stack.components.monitoring import MonitoringHub

PERIOD = Duration.minutes(5)


def bedrock_metric(name: str, model_id: str, statistic: str = "Sum") -> cw.Metric:
    return cw.Metric(
        namespace="AWS/Bedrock",
        metric_name=name,
        dimensions_map={"ModelId": model_id},
        statistic=statistic,
        period=PERIOD,
    )


@dataclass(frozen=True)
class MonitoredProfile:
    """An application inference profile of this profile: its label, ARN and ID (CloudFormation
    attributes InferenceProfileArn and InferenceProfileId)."""

    label: str
    arn: str
    profile_id: str


def profile_metric(name: str, profile: MonitoredProfile, statistic: str = "Sum") -> cw.IMetric:
    """A Bedrock metric of calls made through `profile`. Bedrock records such calls under the profile
    as ModelId; AWS's pages do not say whether the value is the profile's ARN or its ID (a call may
    name either: "modelId ... the ID or ARN of an inference profile", Bedrock API reference,
    InvokeModel), so both series are summed; each is this profile's alone."""
    by_arn = bedrock_metric(name, profile.arn, statistic)
    by_id = bedrock_metric(name, profile.profile_id, statistic)
    key = name.lower()  # ids unique within a graph that shows several of these
    return cw.MathExpression(
        expression=f"FILL({key}arn, 0) + FILL({key}id, 0)",
        using_metrics={f"{key}arn": by_arn, f"{key}id": by_id},
        label=f"{profile.label} {name}",
        period=PERIOD,
    )


def tokens_widget(label: str, metric: Callable[[str], cw.IMetric], width: int) -> cw.GraphWidget:
    """Input and output tokens of one model or profile (`metric` makes the named metric)."""
    return cw.GraphWidget(
        title=f"{label}: tokens", left=[metric("InputTokenCount"), metric("OutputTokenCount")], width=width
    )


class ModelMonitoring(Construct):
    """Dashboard rows for the profile's models and system inference profiles (account-wide: every
    caller of the account shows there, so they get no alarm) and, per application inference profile
    of this profile (the gateway's and the campaigns', where its own traffic is counted), a row and
    two alarms (throttles, server errors) registered with the hub; one guardrail-interventions graph.
    Alarms on a base model's metrics would fire for another profile's traffic in the same account."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_ids: Sequence[str],
        profiles: Sequence[MonitoredProfile] = (),
        guardrail: GuardrailRef | None,
        throttle_threshold: int,
        server_error_threshold: int,
        hub: MonitoringHub,
    ) -> None:
        super().__init__(scope, construct_id)
        widgets: list[cw.IWidget] = []
        self.alarms: list[cw.Alarm] = []
        for model_id in model_ids:
            widgets += [
                cw.GraphWidget(
                    title=f"{model_id} (whole account): invocations and latency",
                    left=[bedrock_metric("Invocations", model_id)],
                    right=[bedrock_metric("InvocationLatency", model_id, "p90")],
                    width=8,
                ),
                cw.GraphWidget(
                    title=f"{model_id} (whole account): throttles and errors",
                    left=[
                        bedrock_metric("InvocationThrottles", model_id),
                        bedrock_metric("InvocationServerErrors", model_id),
                        bedrock_metric("InvocationClientErrors", model_id),
                    ],
                    width=8,
                ),
                tokens_widget(f"{model_id} (whole account)", lambda n, m=model_id: bedrock_metric(n, m), 8),
            ]
        for index, profile in enumerate(profiles):
            throttles = profile_metric("InvocationThrottles", profile)
            server_errors = profile_metric("InvocationServerErrors", profile)
            widgets += [
                cw.GraphWidget(
                    title=f"{profile.label}: invocations, throttles and errors",
                    left=[profile_metric("Invocations", profile), throttles, server_errors],
                    width=12,
                ),
                tokens_widget(profile.label, lambda n, p=profile: profile_metric(n, p), 12),
            ]
            for kind, metric, threshold in (
                ("Throttles", throttles, throttle_threshold),
                ("ServerErrors", server_errors, server_error_threshold),
            ):
                # Bedrock publishes these only for periods with invocations (and FILL makes the
                # missing form 0): no data is no call, hence no throttle or error.
                self.alarms.append(
                    hub.alarm(
                        self,
                        f"{kind}{index}",
                        metric=metric,
                        threshold=threshold,
                        description=(
                            f"Bedrock through {profile.label}: {kind} reached {threshold} in 5 minutes"
                        ),
                        missing=cw.TreatMissingData.NOT_BREACHING,
                    )
                )
        if guardrail is not None:
            widgets.append(
                cw.GraphWidget(
                    title="Guardrail interventions",
                    left=[
                        cw.Metric(
                            namespace="AWS/Bedrock/Guardrails",
                            metric_name="InvocationsIntervened",
                            dimensions_map={
                                "GuardrailArn": guardrail.arn,
                                "GuardrailVersion": guardrail.version,
                            },
                            statistic="Sum",
                            period=PERIOD,
                        )
                    ],
                    width=24,
                )
            )
        hub.add_section("Amazon Bedrock models", widgets)
