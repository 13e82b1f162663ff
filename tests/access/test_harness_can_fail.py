"""The access rows fail when a needed statement is removed or granted on the wrong ARN: each test
edits a copy of a synthesized template and checks the row's verdict flips."""

from __future__ import annotations

import copy

from tests.access.conftest import deployment_of
from tests.access.rows import Call, function_rows, service_role_rows
from tests.access.rows.lambda_runtime import stream_arn

PROFILE = "managed-api"


def _function(deployment, package):
    return next(f for f in deployment.functions if f.package == package)


def _verdict(deployment, function, row: Call) -> bool:
    return deployment.decide(function.role, row.action, row.resource, row.context).allowed


def _edited(synthesized, stack: str, edit) -> dict[str, dict]:
    templates = copy.deepcopy(synthesized.templates[PROFILE])
    edit(templates[stack]["Resources"])
    return templates


def _statements(resources, path_suffix: str) -> list[dict]:
    for resource in resources.values():
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix):
            return resource["Properties"]["PolicyDocument"]["Statement"]
    raise KeyError(path_suffix)


def test_removing_a_needed_statement_makes_its_row_fail(synthesized, deployments):
    deployment = deployments[PROFILE]
    function = _function(deployment, "kb_ingestion")
    row = next(
        r
        for r in function_rows(function, deployment)
        if r.action == "bedrock:StartIngestionJob" and r.expect == "allow"
    )
    assert _verdict(deployment, function, row)

    def drop(resources):
        statements = _statements(resources, "Ingestion/Handler/Role/DefaultPolicy/Resource")
        statements[:] = [s for s in statements if "bedrock:StartIngestionJob" not in s["Action"]]

    edited = deployment_of(synthesized, PROFILE, _edited(synthesized, "Bedrock", drop))
    assert not _verdict(edited, _function(edited, "kb_ingestion"), row)


def test_removing_the_guardrail_deny_makes_the_no_guardrail_row_fail(synthesized, deployments):
    deployment = deployments[PROFILE]
    function = _function(deployment, "gateway")
    rows = [
        r
        for r in function_rows(function, deployment)
        if r.expect == "deny" and r.action == "bedrock:InvokeModel"
    ]
    without_guardrail = next(r for r in rows if "bedrock:GuardrailIdentifier" not in r.context)
    assert not _verdict(deployment, function, without_guardrail)

    def drop(resources):
        for resource in resources.values():
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                statements = resource["Properties"]["PolicyDocument"]["Statement"]
                statements[:] = [s for s in statements if s["Effect"] != "Deny"]
                for statement in statements:
                    statement.pop("Condition", None)

    edited = deployment_of(synthesized, PROFILE, _edited(synthesized, "Bedrock", drop))
    assert _verdict(edited, _function(edited, "gateway"), without_guardrail)


def test_a_log_stream_grant_appended_to_the_log_group_arn_fails_and_the_name_based_one_passes(synthesized):
    """`GetAtt LogGroup.Arn` ends in `:*`; `Arn + ":log-stream:*"` matches no stream."""

    def grant(resource_value):
        def edit(resources):
            statements = _statements(resources, "Ingestion/Handler/Role/DefaultPolicy/Resource")
            logs_statement = next(s for s in statements if "logs:PutLogEvents" in s["Action"])
            logs_statement["Resource"] = resource_value(resources)

        return edit

    def log_group(resources):
        return next(
            logical_id
            for logical_id, resource in resources.items()
            if resource["Type"] == "AWS::Logs::LogGroup"
            and resource.get("Metadata", {})
            .get("aws:cdk:path", "")
            .startswith(f"{PROFILE}/Bedrock/Ingestion/Handler/")
        )

    appended = grant(lambda r: {"Fn::Join": ["", [{"Fn::GetAtt": [log_group(r), "Arn"]}, ":log-stream:*"]]})
    by_name = grant(
        lambda r: {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":logs:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":log-group:",
                    {"Ref": log_group(r)},
                    ":log-stream:*",
                ],
            ]
        }
    )
    verdicts = []
    for edit in (appended, by_name):
        deployment = deployment_of(synthesized, PROFILE, _edited(synthesized, "Bedrock", edit))
        function = _function(deployment, "kb_ingestion")
        row = Call("logs:PutLogEvents", stream_arn(deployment, function.log_group), "test")
        verdicts.append(_verdict(deployment, function, row))
    assert verdicts == [False, True]


def test_a_knowledge_base_role_without_generate_data_key_fails_its_ingestion_row(synthesized, deployments):
    """Bedrock encrypts an ingestion job's transient data with the data source's key
    (encryption-kb): the service-role row fails once kms:GenerateDataKey is gone."""
    path = f"{PROFILE}/Bedrock/KnowledgeBaseRole-product-facts/Role/Resource"

    def transient_row(deployment):
        role = deployment.role(path)
        return role, next(
            r
            for r in service_role_rows(role, deployment)
            if r.action == "kms:GenerateDataKey" and "transient" in r.why
        )

    role, row = transient_row(deployments[PROFILE])
    assert deployments[PROFILE].decide(role, row.action, row.resource, row.context).allowed

    def drop(resources):
        for statement in _statements(
            resources, "KnowledgeBaseRole-product-facts/Role/DefaultPolicy/Resource"
        ):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != "kms:GenerateDataKey"] or ["kms:Decrypt"]

    edited = deployment_of(synthesized, PROFILE, _edited(synthesized, "Bedrock", drop))
    role, row = transient_row(edited)
    assert not edited.decide(role, row.action, row.resource, row.context).allowed
