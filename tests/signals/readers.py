"""What the synthesized templates READ: every metric identity an alarm or a dashboard widget watches.

An identity is (namespace, metric name, dimension name -> value), the key CloudWatch stores a metric
under: "each unique combination of dimensions is a separate metric" (CloudWatch user guide, "Metrics
concepts", Dimensions: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html).
An alarm or widget that names any other combination sees no data.

Sources read:
- AWS::CloudWatch::Alarm: MetricName/Namespace/Dimensions, or each MetricStat inside `Metrics`
  (its math expressions are kept as text: they read only the MetricStats by id);
- AWS::CloudWatch::Dashboard: DashboardBody (an Fn::Join of strings and intrinsics) resolved with the
  access harness's Resolver, so dimension values that are Refs/GetAtts/stack outputs become the same
  physical names the emitters see; each widget's `metrics` rows `[Namespace, MetricName, Dim, Value,
  ..., {options}]` (with the `"."` shorthand: the value of the row above) and math rows `{expression}`.
- SEARCH expressions `SEARCH('{Namespace,Dim1,Dim2} MetricName="X"', ...)`: a schema in braces
  matches only metrics whose dimension NAMES are exactly those ("CloudWatch search expression
  syntax": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.access.resolver import Resolver


@dataclass(frozen=True)
class Identity:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted (name, value)

    @classmethod
    def of(cls, namespace: str, name: str, dimensions: Mapping[str, Any]) -> Identity:
        return cls(namespace, name, tuple(sorted((k, str(v)) for k, v in dimensions.items())))

    @property
    def dimension_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.dimensions)

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.namespace} {self.name} {{{dims}}}"


@dataclass(frozen=True)
class Search:
    """A SEARCH expression: namespace and exact dimension-name schema, metric name or free term."""

    namespace: str
    dimension_names: frozenset[str]
    metric_name: str | None
    term: str | None
    expression: str
    # Exact dimension-value terms (`service="managed-api-gateway"`): only series with these values.
    dimension_values: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.expression


@dataclass(frozen=True)
class Reader:
    """One metric an alarm or widget reads. `key` is stable: profile/stack/where/metric."""

    profile: str
    stack: str  # construct id (Bedrock, Observability, ...)
    where: str  # alarm logical id, or "Dashboard: <widget title>"
    read: Identity | Search

    @property
    def key(self) -> str:
        what = self.read.name if isinstance(self.read, Identity) else self.read.metric_name or self.read.term
        return f"{self.profile}/{self.stack}/{self.where}/{what}"


_SEARCH = re.compile(r"SEARCH\(\s*'\{([^}]*)\}\s*([^']*)'")
_EXACT = re.compile(r'([A-Za-z0-9_.:-]+)\s*=\s*"([^"]+)"')


def parse_searches(expression: str) -> Iterator[Search]:
    """SEARCH('{Namespace,Dim...} MetricName="X" Dim="value" term', ...): exact terms are `Name="value"`
    (MetricName, or a dimension's value), the rest a partial-match term."""
    for match in _SEARCH.finditer(expression):
        schema = [part.strip().strip('"') for part in match[1].split(",")]
        rest = match[2]
        exact = dict(_EXACT.findall(rest))
        name = exact.pop("MetricName", None)
        term = _EXACT.sub("", rest).strip() or None
        yield Search(schema[0], frozenset(schema[1:]), name, term, expression, tuple(sorted(exact.items())))


_INSIGHTS = re.compile(
    r"SELECT\s+\w+\((\w+)\)\s+FROM\s+SCHEMA\(([^)]*)\)(?:\s+WHERE\s+(.*?))?\s*(?:GROUP BY|ORDER BY|LIMIT|$)",
    re.IGNORECASE,
)
_WHERE_EQUALS = re.compile(r"(\w+)\s*=\s*'([^']*)'")


def parse_insights(expression: str) -> Iterator[Search]:
    """A Metrics Insights query `SELECT FUNC(Metric) FROM SCHEMA("Namespace", Dim...) WHERE Dim = 'v'`
    (alarms may use these, not SEARCH): SCHEMA, like SEARCH's braces, matches only metrics with exactly
    those dimension names; `=` conditions are exact values ("Metrics Insights query components and
    syntax": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-querylanguage.html)."""
    match = _INSIGHTS.search(expression)
    if match:
        schema = [part.strip().strip('"') for part in match[2].split(",")]
        exact = tuple(sorted(_WHERE_EQUALS.findall(match[3] or "")))
        yield Search(schema[0], frozenset(schema[1:]), match[1], None, expression, exact)


def _dims(resolver: Resolver, stack_name: str, dimensions: list[dict] | None) -> dict[str, str]:
    resolved = resolver.resolve(stack_name, dimensions or [])
    return {d["Name"]: d["Value"] for d in resolved}


def alarm_readers(
    profile: str, construct_id: str, stack_name: str, template: dict, resolver: Resolver
) -> Iterator[Reader]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        if "MetricName" in props:
            identity = Identity.of(
                props["Namespace"], props["MetricName"], _dims(resolver, stack_name, props.get("Dimensions"))
            )
            yield Reader(profile, construct_id, logical_id, identity)
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                identity = Identity.of(
                    metric["Namespace"],
                    metric["MetricName"],
                    _dims(resolver, stack_name, metric.get("Dimensions")),
                )
                yield Reader(profile, construct_id, logical_id, identity)
            elif "Expression" in query:
                for search in parse_searches(query["Expression"]):
                    yield Reader(profile, construct_id, logical_id, search)
                for search in parse_insights(query["Expression"]):
                    yield Reader(profile, construct_id, logical_id, search)


def dashboard_body(resolver: Resolver, stack_name: str, resource: dict) -> dict:
    body = resolver.resolve(stack_name, resource["Properties"]["DashboardBody"])
    return json.loads(body)


def widget_rows(widget: dict) -> Iterator[tuple[str, Identity | Search]]:
    """A metric widget's rows as identities (with the "." shorthand filled in) or searches."""
    title = widget.get("properties", {}).get("title", "?")
    previous: list[Any] = []
    for row in widget.get("properties", {}).get("metrics", []):
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        items = [item for item in row if not isinstance(item, dict)]
        if "expression" in options and not items:
            for search in parse_searches(options["expression"]):
                yield title, search
            continue
        if "..." in items:
            raise NotImplementedError(
                f"widget {title!r}: the '...' shorthand is not read by the contract test"
            )
        items = [previous[i] if item == "." and i < len(previous) else item for i, item in enumerate(items)]
        previous = items
        namespace, name, rest = items[0], items[1], items[2:]
        yield title, Identity.of(namespace, name, dict(zip(rest[::2], rest[1::2], strict=True)))


def dashboard_readers(
    profile: str, construct_id: str, stack_name: str, template: dict, resolver: Resolver
) -> Iterator[Reader]:
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        for widget in dashboard_body(resolver, stack_name, resource)["widgets"]:
            if widget.get("type") != "metric":
                continue
            for title, read in widget_rows(widget):
                yield Reader(profile, construct_id, f"Dashboard: {title}", read)
