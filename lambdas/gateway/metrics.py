"""Gateway metrics in CloudWatch embedded metric format (Powertools), by alias, target and tenant."""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from lambdas.gateway.service import Usage

NAMESPACE = "GenAiStack/Gateway"


class EmfMetrics:
    """One EMF document per request: Latency, InputTokens, OutputTokens, EstimatedCost, CacheHit,
    Fallback, GuardrailIntervention, with dimensions alias, target and tenant."""

    def record(self, usage: Usage, *, tenant: str) -> None:
        metrics = EphemeralMetrics(namespace=NAMESPACE, service="gateway")
        metrics.add_dimension(name="alias", value=usage.alias)
        metrics.add_dimension(name="target", value=usage.target)
        metrics.add_dimension(name="tenant", value=tenant)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=usage.latency_ms)
        metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=usage.input_tokens)
        metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=usage.output_tokens)
        metrics.add_metric(name="EstimatedCost", unit=MetricUnit.NoUnit, value=usage.cost_usd)
        metrics.add_metric(name="CacheHit", unit=MetricUnit.Count, value=int(usage.cache_hit))
        metrics.add_metric(name="Fallback", unit=MetricUnit.Count, value=usage.fallbacks)
        metrics.add_metric(
            name="GuardrailIntervention", unit=MetricUnit.Count, value=int(usage.guardrail_intervened)
        )
        metrics.flush_metrics()
