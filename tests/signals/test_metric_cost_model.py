"""The cost model's custom metrics (stacks/observability.py) are the ones the code emits.

The cost model counts series from declared metric sets (names, dimension names, and the number of
dimension values the profile gives); here every declared set's names and dimension names must be
exactly what running the code with the template's environment emits (tests/signals/emitters.py),
both ways: a metric the code emits and the model omits is unpriced, one the model prices and the code
does not emit is a phantom.
"""

from __future__ import annotations

import pytest

from genai_stack.config import builtin_profile_names, load_profile
from genai_stack.observability import custom_metric_sets


def declared(profile: str) -> set[tuple[str, str, frozenset[str]]]:
    return {
        (s.namespace, metric, frozenset(s.dimensions))
        for s in custom_metric_sets(load_profile(profile))
        for metric in s.metrics
    }


def captured(emitted, profile: str) -> set[tuple[str, str, frozenset[str]]]:
    return {
        (e.identity.namespace, e.identity.name, e.identity.dimension_names)
        for e in emitted[profile]
        if not e.identity.namespace.startswith(("AWS/", "/aws/"))
    }


@pytest.mark.parametrize("profile", builtin_profile_names())
def test_the_priced_metric_sets_are_the_emitted_ones(profile, emitted):
    model, code = declared(profile), captured(emitted, profile)
    assert code, f"{profile}: nothing of ours captured"
    assert model - code == set(), f"{profile}: priced but not emitted: {sorted(map(str, model - code))}"
    assert code - model == set(), f"{profile}: emitted but not priced: {sorted(map(str, code - model))}"


def test_a_gateway_series_count_follows_aliases_targets_and_tenants():
    """managed-api: copywriter (2 targets) and drafts (1), each plus `cache`, drafts plus
    `semantic-cache`, and the embedder (1): 3 + 3 + 1 = 7 alias-target pairs; 2 tenants: 14 series of
    each per-request metric."""
    sets = {
        (
            s.metrics[0]
            if s.metrics[0] in ("Satisfaction", "RoutedLarge") or "Semantic" in s.metrics[0]
            else False,
            s.dimensions,
        ): s
        for s in custom_metric_sets(load_profile("managed-api"))
        if s.namespace == "GenAiStack/Gateway"
    }
    assert sets[(False, ("alias", "service", "target", "tenant"))].series == 14
    assert sets[(False, ("alias", "service"))].series == 3
    assert sets[(False, ("service",))].series == 1
    # Ratings (gateway.feedback): the 6 chat alias-target pairs x 2 tenants x 2 prompt versions, and the
    # 2 chat aliases (the embedder's answers are not rated).
    assert sets[("Satisfaction", ("alias", "prompt_version", "service", "target", "tenant"))].series == 24
    assert sets[("Satisfaction", ("alias", "service"))].series == 2
    assert sets[("RoutedLarge", ("alias", "service"))].series == 1  # the one route, assistant
    # The semantic cache's lookups and hits, by alias: drafts alone uses it.
    assert sets[("SemanticCacheHit", ("alias", "service"))].series == 1
    assert sets[("SemanticCacheSimilarity", ("alias", "service"))].series == 1
