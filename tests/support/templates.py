"""Reading synthesized templates: identity-policy statements, references between resources."""

from __future__ import annotations

from collections.abc import Iterator


def identity_statements(template: dict) -> Iterator[tuple[str, dict]]:
    """(policy logical id, statement) for every identity-policy statement in a template: the
    AWS::IAM::Policy and ManagedPolicy documents and the roles' inline policies."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement


def references(node: object) -> set[str]:
    """Logical IDs a template fragment refers to with Ref or Fn::GetAtt, at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            found.add(node["Fn::GetAtt"][0])
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


EGRESS_TYPES = ("AWS::EC2::InternetGateway", "AWS::EC2::EgressOnlyInternetGateway", "AWS::EC2::NatGateway")


def ways_out_of_the_vpc(resources: dict) -> list[str]:
    """Logical IDs of what would let a subnet reach beyond its VPC and endpoints: internet, egress-only
    and NAT gateways, and routes to 0.0.0.0/0 or to an IPv6 destination."""

    def leaves(resource: dict) -> bool:
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::Route":
            return props.get("DestinationCidrBlock") == "0.0.0.0/0" or "DestinationIpv6CidrBlock" in props
        return resource["Type"] in EGRESS_TYPES

    return [logical_id for logical_id, resource in resources.items() if leaves(resource)]
