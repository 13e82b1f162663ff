"""ModelMonitoring: dashboard widgets and alarms for the Bedrock models of a profile.

Metrics (Amazon Bedrock user guide, retrieved 2026-11-22): namespace AWS/Bedrock with dimension
ModelId — Invocations, InvocationLatency, InvocationThrottles, InvocationServerErrors,
InvocationClientErrors, InputTokenCount, OutputTokenCount (monitoring-runtime-metrics.html);
namespace AWS/Bedrock/Guardrails with dimensions GuardrailArn and GuardrailVersion —
InvocationsIntervened (monitoring-guardrails-cw-metrics.html).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from stacks.components.model_access import GuardrailRef
from stacks.components.monitoring import MonitoringHub

PERIOD = Duration.minutes(5)


def bedrock_metric(name: str, model_id: str, statistic: str = "Sum") -> cw.Metric:
    return cw.Metric(
        namespace="AWS/Bedrock",
        metric_name=name,
        dimensions_map={"ModelId": model_id},
        statistic=statistic,
        period=PERIOD,
    )


class ModelMonitoring(Construct):
    """Per model: a graph row (invocations, latency, throttles and errors, tokens) and two alarms
    (throttles, server errors) registered with the hub; one guardrail-interventions graph."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_ids: Sequence[str],
        guardrail: GuardrailRef | None,
        throttle_threshold: int,
        server_error_threshold: int,
        hub: MonitoringHub,
    ) -> None:
        super().__init__(scope, construct_id)
        widgets: list[cw.IWidget] = []
        self.alarms: list[cw.Alarm] = []
        for index, model_id in enumerate(model_ids):
            throttles = bedrock_metric("InvocationThrottles", model_id)
            server_errors = bedrock_metric("InvocationServerErrors", model_id)
            widgets += [
                cw.GraphWidget(
                    title=f"{model_id}: invocations and latency",
                    left=[bedrock_metric("Invocations", model_id)],
                    right=[bedrock_metric("InvocationLatency", model_id, "p90")],
                    width=8,
                ),
                cw.GraphWidget(
                    title=f"{model_id}: throttles and errors",
                    left=[throttles, server_errors, bedrock_metric("InvocationClientErrors", model_id)],
                    width=8,
                ),
                cw.GraphWidget(
                    title=f"{model_id}: tokens",
                    left=[
                        bedrock_metric("InputTokenCount", model_id),
                        bedrock_metric("OutputTokenCount", model_id),
                    ],
                    width=8,
                ),
            ]
            for kind, metric, threshold in (
                ("Throttles", throttles, throttle_threshold),
                ("ServerErrors", server_errors, server_error_threshold),
            ):
                alarm = cw.Alarm(
                    self,
                    f"{kind}{index}",
                    alarm_description=f"Bedrock {model_id}: {kind} reached {threshold} in 5 minutes",
                    metric=metric,
                    threshold=threshold,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
                hub.add_alarm(alarm)
                self.alarms.append(alarm)
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
