"""Gateway metrics in CloudWatch embedded metric format (Powertools).

Three documents, each with Powertools' `service` dimension (POWERTOOLS_SERVICE_NAME, scoped to the
profile by the stack), and each read by an alarm or a dashboard widget (tests/signals):
- per request, by alias, target and tenant: Latency, InputTokens, OutputTokens, EstimatedCost,
  CacheHit, Fallback, GuardrailIntervention, and TimeToFirstToken for streamed answers (the
  dashboard's breakdowns);
- per request, by alias only: Requests, FellBack (1 when a target other than the first answered) and
  EstimatedCost, so that alarms can watch an alias without SEARCH (alarms cannot use SEARCH
  expressions) and without one series per tenant and target;
- per unexpected error (a bug of ours, answered with a plain 500): UnhandledErrors, by service only.
  The handler catches it, so Lambda's own Errors metric never counts it;
- per request to a route (routing.py): RoutedLarge (1 when the large alias answers, 0 for the
  small one) by alias (the route's name): its average is the share sent to the large alias;
- per semantic cache lookup (semantic_cache.py), by alias: SemanticCacheHit (1 or 0: its average is
  the hit rate, its sample count the lookups) and SemanticCacheErrors (store or embedding failures,
  each a miss); per hit, by alias: SemanticCacheSimilarity (of the stored question it answered),
  SemanticCacheSavedTokens and SemanticCacheSavedCost (what the stored answer cost when the model
  gave it, in tokens and USD at the gateway's prices);
- per rating (POST /v1/feedback): Satisfaction (the score, 0 to 1) by alias, target, tenant and
  prompt_version (the dashboard's breakdown), and by alias only (its alarm: the average over an hour,
  and its sample count, the number of ratings).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .feedback import Answered as Rated
from .semantic_cache import Probe
from .service import Usage

NAMESPACE = "GenAiStack/Gateway"


def _document() -> EphemeralMetrics:
    # service=None: Powertools reads POWERTOOLS_SERVICE_NAME, which the template sets per profile.
    return EphemeralMetrics(namespace=NAMESPACE)


class EmfMetrics:
    """The per-request documents (see the module docstring)."""

    def record(self, usage: Usage, *, tenant: str) -> None:
        metrics = _document()
        metrics.add_dimension(name="alias", value=usage.alias)
        metrics.add_dimension(name="target", value=usage.target)
        metrics.add_dimension(name="tenant", value=tenant)
        if usage.user:  # a hash, as a property of the document: never a dimension (a series per user)
            metrics.add_metadata(key="user", value=usage.user)
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=usage.latency_ms)
        metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=usage.input_tokens)
        metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=usage.output_tokens)
        metrics.add_metric(name="EstimatedCost", unit=MetricUnit.NoUnit, value=usage.cost_usd)
        metrics.add_metric(name="CacheHit", unit=MetricUnit.Count, value=int(usage.cache_hit))
        metrics.add_metric(name="Fallback", unit=MetricUnit.Count, value=usage.fallbacks)
        metrics.add_metric(
            name="GuardrailIntervention", unit=MetricUnit.Count, value=int(usage.guardrail_intervened)
        )
        if usage.time_to_first_token_ms is not None:  # streamed answers only
            metrics.add_metric(
                name="TimeToFirstToken", unit=MetricUnit.Milliseconds, value=usage.time_to_first_token_ms
            )
        metrics.flush_metrics()
        per_alias = _document()
        per_alias.add_dimension(name="alias", value=usage.alias)
        per_alias.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        per_alias.add_metric(name="FellBack", unit=MetricUnit.Count, value=int(usage.fallbacks > 0))
        per_alias.add_metric(name="EstimatedCost", unit=MetricUnit.NoUnit, value=usage.cost_usd)
        per_alias.flush_metrics()

    def record_rating(self, rated: Rated, score: float) -> None:
        metrics = _document()
        metrics.add_dimension(name="alias", value=rated.alias)
        metrics.add_dimension(name="target", value=rated.target)
        metrics.add_dimension(name="tenant", value=rated.tenant)
        metrics.add_dimension(name="prompt_version", value=rated.prompt_version)
        metrics.add_metric(name="Satisfaction", unit=MetricUnit.NoUnit, value=score)
        metrics.flush_metrics()
        per_alias = _document()
        per_alias.add_dimension(name="alias", value=rated.alias)
        per_alias.add_metric(name="Satisfaction", unit=MetricUnit.NoUnit, value=score)
        per_alias.flush_metrics()

    def record_semantic(self, probe: Probe) -> None:
        lookup = _document()
        lookup.add_dimension(name="alias", value=probe.alias)
        lookup.add_metric(name="SemanticCacheHit", unit=MetricUnit.Count, value=int(probe.hit))
        lookup.add_metric(name="SemanticCacheErrors", unit=MetricUnit.Count, value=probe.errors)
        lookup.flush_metrics()
        if not probe.hit:
            return
        hit = _document()
        hit.add_dimension(name="alias", value=probe.alias)
        hit.add_metric(name="SemanticCacheSimilarity", unit=MetricUnit.NoUnit, value=probe.similarity)
        hit.add_metric(name="SemanticCacheSavedTokens", unit=MetricUnit.Count, value=probe.saved_tokens)
        hit.add_metric(name="SemanticCacheSavedCost", unit=MetricUnit.NoUnit, value=probe.saved_usd)
        hit.flush_metrics()

    def record_route(self, route: str, *, large: bool) -> None:
        metrics = _document()
        metrics.add_dimension(name="alias", value=route)
        metrics.add_metric(name="RoutedLarge", unit=MetricUnit.Count, value=int(large))
        metrics.flush_metrics()


def record_unhandled_error() -> None:
    metrics = _document()
    metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
