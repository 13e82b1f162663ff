"""Reading policies out of synthesized templates."""

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
