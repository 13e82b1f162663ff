"""The contract between readers (alarms, widgets) and emitters (AWS services, our code).

A read identity has an emitter when
- its namespace is an AWS service's (tests/signals/aws_metrics.json): the metric name is in a
  documented group, the dimension NAME set equals one documented set, and every dimension VALUE names
  a resource of the same deployment (VALUE_KINDS below: a FunctionName is one of this profile's
  functions, an ApiName the Name of one of its REST APIs, ...);
- otherwise: a captured identity of our own code (tests/signals/emitters.py) with equal namespace,
  name, dimension names AND values.
A SEARCH reads every metric of its namespace whose dimension names are exactly the schema's, with the
metric name given (or, for a free term, a metric name containing it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from tests.access.deployment import Deployment
from tests.signals.emitters import Emitted
from tests.signals.readers import Identity, Search

AWS_TABLE = Path(__file__).with_name("aws_metrics.json")


@cache
def aws_table() -> dict[str, list[dict]]:
    return {k: v for k, v in json.loads(AWS_TABLE.read_text()).items() if not k.startswith("_")}


def _attribute(deployment: Deployment, resource_type: str, attribute: str) -> set[str]:
    found = set()
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == resource_type:
                found.add(str(deployment.resolver.get_att(stack, logical_id, attribute)))
    return found


def _property(deployment: Deployment, resource_type: str, name: str) -> set[str]:
    found = set()
    for stack, template in deployment.templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == resource_type and name in resource.get("Properties", {}):
                found.add(str(deployment.resolver.resolve(stack, resource["Properties"][name])))
    return found


def _variants(deployment: Deployment) -> set[str]:
    found = set()
    for stack, template in deployment.templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SageMaker::EndpointConfig":
                for variant in resource["Properties"].get("ProductionVariants", []):
                    found.add(str(deployment.resolver.resolve(stack, variant["VariantName"])))
    return found


_MODEL_ARN = re.compile(r":(?:foundation-model|inference-profile|application-inference-profile)/([^\"*]+)")


def _model_ids(deployment: Deployment) -> set[str]:
    """Bedrock model ids this deployment may invoke: the ids in its roles' and managed policies."""
    policies = [p for role in deployment.roles.values() for p in role.policies]
    policies += list(deployment.managed_policies.values())
    documents = json.dumps([p.document for p in policies])
    return set(_MODEL_ARN.findall(documents))


def endpoint_kinds(deployment: Deployment) -> dict[str, str]:
    """SageMaker endpoint name -> "async" (its configuration has AsyncInferenceConfig) or "real-time"."""
    configs = {}
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::SageMaker::EndpointConfig":
                name = deployment.resolver.get_att(stack, logical_id, "EndpointConfigName")
                configs[name] = "async" if "AsyncInferenceConfig" in resource["Properties"] else "real-time"
    kinds = {}
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::SageMaker::Endpoint":
                name = deployment.resolver.get_att(stack, logical_id, "EndpointName")
                config = deployment.resolver.resolve(stack, resource["Properties"]["EndpointConfigName"])
                kinds[name] = configs.get(config, "real-time")
    return kinds


ANY = None  # a dimension whose values are not resources of the deployment (stage, method, zone)
VALUE_KINDS: dict[str, Callable[[Deployment], set[str]] | None] = {
    "FunctionName": lambda d: {f.name for f in d.functions},
    "ApiName": lambda d: _property(d, "AWS::ApiGateway::RestApi", "Name"),
    "LoadBalancer": lambda d: _attribute(
        d, "AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancerFullName"
    ),
    "TargetGroup": lambda d: _attribute(d, "AWS::ElasticLoadBalancingV2::TargetGroup", "TargetGroupFullName"),
    "QueueName": lambda d: _attribute(d, "AWS::SQS::Queue", "QueueName"),
    "StateMachineArn": lambda d: _attribute(d, "AWS::StepFunctions::StateMachine", "Arn"),
    "EndpointName": lambda d: set(endpoint_kinds(d)),
    "VariantName": _variants,
    "InferenceComponentName": lambda d: _property(
        d, "AWS::SageMaker::InferenceComponent", "InferenceComponentName"
    ),
    # A model the profile may invoke, or one of its application inference profiles (ARN or ID: calls
    # through a profile are recorded under it, stacks/components/model_monitoring.py).
    "ModelId": lambda d: (
        _model_ids(d)
        | _attribute(d, "AWS::Bedrock::ApplicationInferenceProfile", "InferenceProfileArn")
        | _attribute(d, "AWS::Bedrock::ApplicationInferenceProfile", "InferenceProfileId")
    ),
    "GuardrailArn": lambda d: _attribute(d, "AWS::Bedrock::Guardrail", "GuardrailArn"),
    "GuardrailVersion": lambda d: _attribute(d, "AWS::Bedrock::GuardrailVersion", "Version") | {"DRAFT"},
    "Operation": lambda d: {"ApplyGuardrail"},
    "Resource": ANY,
    "Stage": ANY,
    "Method": ANY,
    "ExecutedVersion": ANY,
    "AvailabilityZone": ANY,
}


def is_aws_namespace(namespace: str) -> bool:
    return namespace.startswith(("AWS/", "/aws/"))


def check_aws(identity: Identity, deployment: Deployment) -> str | None:
    """None when AWS documents this identity for a resource of the deployment, else why not."""
    groups = aws_table().get(identity.namespace)
    if groups is None:
        return f"namespace {identity.namespace} is not in tests/signals/aws_metrics.json"
    named = [g for g in groups if identity.name in g["metrics"]]
    if not named:
        return f"AWS documents no metric {identity.name} in {identity.namespace}"
    names = identity.dimension_names
    shaped = [g for g in named if any(frozenset(s) == names for s in g["dimension_sets"])]
    if not shaped:
        documented = sorted({"{" + ", ".join(s) + "}" for g in named for s in g["dimension_sets"]})
        return f"{identity.name} is documented with dimensions {' or '.join(documented)}, not {{{', '.join(sorted(names))}}}"
    problems = []
    for name, value in identity.dimensions:
        kind = VALUE_KINDS.get(name, ANY)
        if kind is not None and value not in (valid := kind(deployment)):
            problems.append(f"{name}={value!r} names no resource of this deployment (it has {sorted(valid)})")
    if problems:
        return "; ".join(problems)
    wanted = {g.get("endpoint_kind") for g in shaped}
    if None not in wanted and "EndpointName" in names:
        kind = endpoint_kinds(deployment).get(dict(identity.dimensions)["EndpointName"])
        if kind not in wanted:
            page = shaped[0]["source"]["url"]
            return f"{identity.name} is published only for {'/'.join(sorted(wanted))} endpoints; this one is {kind} ({page})"
    return None


def nearest(identity: Identity, emitted: Iterable[Emitted]) -> str:
    same = [
        e for e in emitted if (e.identity.namespace, e.identity.name) == (identity.namespace, identity.name)
    ]
    if not same:
        same = [e for e in emitted if e.identity.namespace == identity.namespace]
    if not same:
        return "nothing emits this namespace"
    best = max(same, key=lambda e: len(set(e.identity.dimensions) & set(identity.dimensions)))
    names = ", ".join(sorted(best.identity.dimension_names))
    return f"nearest: {best.identity} by {best.emitter} (emitted with dimensions {{{names}}})"


def check_own(identity: Identity, emitted: Iterable[Emitted]) -> str | None:
    emitted = list(emitted)
    if any(e.identity == identity for e in emitted):
        return None
    return f"no emitter of {identity}; {nearest(identity, emitted)}"


def search_matches(search: Search, identity: Identity) -> bool:
    if identity.namespace != search.namespace or identity.dimension_names != search.dimension_names:
        return False
    if search.metric_name is not None and identity.name != search.metric_name:
        return False
    values = dict(identity.dimensions)
    if any(values.get(name) != value for name, value in search.dimension_values):
        return False
    return search.term is None or search.term.lower() in identity.name.lower()


def check_search(search: Search, emitted: Iterable[Emitted]) -> str | None:
    emitted = list(emitted)
    if is_aws_namespace(search.namespace):
        return f"SEARCH over AWS namespace {search.namespace} is not checked by the contract test"
    if any(search_matches(search, e.identity) for e in emitted):
        return None
    candidates = sorted(
        {
            f"{e.identity.name} {{{', '.join(sorted(e.identity.dimension_names))}}}"
            for e in emitted
            if e.identity.namespace == search.namespace
        }
    )
    return f"SEARCH schema {{{search.namespace}, {', '.join(sorted(search.dimension_names))}}} matches nothing emitted; emitted in {search.namespace}: {candidates or 'nothing'}"


def check(read: Identity | Search, deployment: Deployment, emitted: Iterable[Emitted]) -> str | None:
    if isinstance(read, Search):
        return check_search(read, emitted)
    if is_aws_namespace(read.namespace):
        return check_aws(read, deployment)
    return check_own(read, emitted)


def reads(read: Identity | Search, shape: tuple[str, str, frozenset[str]]) -> bool:
    """Whether a reader reads metrics of this emitted shape (namespace, name, dimension names)."""
    namespace, name, names = shape
    if isinstance(read, Search):
        shape_only = Search(
            read.namespace, read.dimension_names, read.metric_name, read.term, read.expression
        )
        return search_matches(shape_only, Identity.of(namespace, name, dict.fromkeys(names, "")))
    return (read.namespace, read.name, read.dimension_names) == shape
