"""What AWS enforces at deploy time or on the first call, checked over every built-in profile's templates.

Each test here was written against a defect an outside review found in the synthesized templates (issue
"Deploys as written"); it fails on the templates as they were before the fix. The finer question, whether
each role's real calls are allowed on the exact ARNs AWS evaluates, is answered by tests/access/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from genai_stack.components.python_function import VPC_NETWORK_INTERFACE_ACTIONS
from tests.support.templates import identity_statements, references


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _log_group_arn_followed_by_text(node, log_groups: set[str]) -> bool:
    """Whether `node` is an Fn::Join that puts text after `GetAtt <LogGroup>.Arn` (which ends in `:*`)."""
    if not (isinstance(node, dict) and "Fn::Join" in node):
        return False
    _, parts = node["Fn::Join"]
    for position, part in enumerate(parts):
        if (
            isinstance(part, dict)
            and part.get("Fn::GetAtt", [None, None])[0] in log_groups
            and part["Fn::GetAtt"][1] == "Arn"
            and position < len(parts) - 1
        ):
            return True
    return False


def test_no_policy_appends_to_a_log_group_arn(synthesized):
    """`GetAtt <AWS::Logs::LogGroup>.Arn` ends in `:*` (CloudFormation user guide, AWS::Logs::LogGroup,
    "Return values"): `<Arn>:log-stream:*` is `...:log-group:NAME:*:log-stream:*` and matches no stream."""
    wrong = []
    for profile, stacks in synthesized.templates.items():
        for stack, template in stacks.items():
            log_groups = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
            for policy, statement in identity_statements(template):
                for resource in _as_list(statement.get("Resource", [])):
                    if _log_group_arn_followed_by_text(resource, log_groups):
                        wrong.append(f"{profile}/{stack}/{policy}/{statement.get('Sid')}")
    assert not wrong, f"log-stream ARNs built on a log group's Arn attribute: {wrong}"


def _function_roles(template: dict) -> Iterator[tuple[str, dict, str]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            if isinstance(role, dict) and "Fn::GetAtt" in role:
                yield logical_id, resource["Properties"], role["Fn::GetAtt"][0]


def _role_actions(template: dict, role_id: str) -> set[str]:
    """Actions allowed to `role_id` by policies in the same template (inline, attached or managed)."""
    actions: set[str] = set()
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        roles = _as_list(props.get("Roles", []))
        if resource["Type"] == "AWS::IAM::Role" and logical_id == role_id:
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif (
            resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {"Ref": role_id} in roles
        ):
            documents = [props["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                if statement.get("Effect", "Allow") == "Allow":
                    actions.update(_as_list(statement["Action"]))
    role = template["Resources"][role_id]["Properties"]
    for arn in role.get("ManagedPolicyArns", []):
        if "AWSLambdaVPCAccessExecutionRole" in str(arn):
            actions.update(VPC_NETWORK_INTERFACE_ACTIONS)
    return actions


def test_every_function_in_a_vpc_can_manage_its_network_interfaces(synthesized):
    """Lambda creates a VPC function's network interfaces with the function's own role (Lambda developer
    guide, configuration-vpc, "Required IAM permissions"); without them CreateFunction fails."""
    in_vpc = 0
    missing = []
    for profile, stacks in synthesized.templates.items():
        for stack, template in stacks.items():
            for function, props, role in _function_roles(template):
                if "VpcConfig" not in props:
                    continue
                in_vpc += 1
                lacking = set(VPC_NETWORK_INTERFACE_ACTIONS) - _role_actions(template, role)
                if lacking:
                    missing.append(f"{profile}/{stack}/{function}: {sorted(lacking)}")
    assert in_vpc, "no built-in profile has a function in a VPC: this test checks nothing"
    assert not missing, missing


def test_the_vpc_function_role_waits_for_its_policy(synthesized):
    """CloudFormation creates the function only after the policy that grants the ENI actions (else the
    create races the policy and fails as if the permission were missing)."""
    for stacks in synthesized.templates.values():
        for template in stacks.values():
            for function, props, role in _function_roles(template):
                if "VpcConfig" not in props:
                    continue
                depends = set(_as_list(template["Resources"][function].get("DependsOn", [])))
                policies = {
                    k
                    for k, r in template["Resources"].items()
                    if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
                }
                assert policies, function
                assert policies <= depends, (function, policies, depends)


@pytest.mark.parametrize("profile", ["managed-api", "customer-service"])
def test_knowledge_base_roles_can_encrypt_transient_ingestion_data(synthesized, profile):
    """Bedrock user guide, encryption-kb.html: with a customer key on the data source, the knowledge base
    role needs kms:GenerateDataKey and kms:Decrypt on it, or every ingestion job fails."""
    foundation = synthesized.template(profile, "Foundation")
    roles = [
        k
        for k, r in foundation["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "bedrock.amazonaws.com"}
        and k.startswith("KnowledgeBaseRole")
    ]
    assert roles
    for role in roles:
        assert {"kms:GenerateDataKey", "kms:Decrypt"} <= _role_actions(foundation, role), role


# Resources whose service uses their role while CloudFormation creates them, and the property that names
# it: Bedrock checks a knowledge base's access to the embedding model and vector store in
# CreateKnowledgeBase; SageMaker pulls a model's image and weights with its execution role when the
# endpoint is created (for an endpoint of inference components, with the role its configuration
# names); a new EC2 host reads its weights and signals its group with its instance role (the group's
# CreationPolicy waits for the signal). A policy of the role created in parallel is a race.
_ROLE_ON_CREATE = {
    "AWS::Bedrock::KnowledgeBase": "RoleArn",
    "AWS::SageMaker::Model": "ExecutionRoleArn",
    # An endpoint of inference components: its configuration names the role, its endpoint uses it.
    "AWS::SageMaker::EndpointConfig": "ExecutionRoleArn",
    # Model Monitor: the schedule's first job can start within the hour of its creation.
    "AWS::SageMaker::DataQualityJobDefinition": "RoleArn",
}


def _depends_on(template: dict, logical_id: str) -> set[str]:
    """Every resource `logical_id` waits for: DependsOn and references, transitively."""
    resources = template["Resources"]
    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        resource = resources[todo.pop()]
        direct = set(_as_list(resource.get("DependsOn", []))) | references(resource.get("Properties", {}))
        for other in direct & set(resources) - seen:
            seen.add(other)
            todo.append(other)
    return seen


def _roles_used_on_create(template: dict) -> Iterator[tuple[str, str]]:
    """(resource, role) for each resource whose service uses a role of the same stack on creation."""
    resources = template["Resources"]
    roles = {k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in _ROLE_ON_CREATE:
            for role in references(props.get(_ROLE_ON_CREATE[resource["Type"]])) & roles:
                yield logical_id, role
        elif resource["Type"] == "AWS::AutoScaling::AutoScalingGroup":
            for template_id in references(props.get("LaunchTemplate")):
                data = resources[template_id]["Properties"]["LaunchTemplateData"]
                for profile in references(data.get("IamInstanceProfile")):
                    for role in references(resources[profile]["Properties"]["Roles"]) & roles:
                        yield logical_id, role


def test_a_resource_whose_service_uses_its_role_on_creation_waits_for_the_role_s_policies(synthesized):
    checked, racing = 0, []
    for profile, stacks in synthesized.templates.items():
        for stack, template in stacks.items():
            for logical_id, role in _roles_used_on_create(template):
                policies = {
                    k
                    for k, r in template["Resources"].items()
                    if r["Type"] == "AWS::IAM::Policy"
                    and role in references(r["Properties"].get("Roles", []))
                }
                assert policies, f"{profile}/{stack}/{role} has no policy of its own"
                missing = policies - _depends_on(template, logical_id)
                racing += [f"{profile}/{stack}/{logical_id} does not wait for {p}" for p in sorted(missing)]
                checked += 1
    assert checked >= 8  # knowledge bases, models and host groups of the built-in profiles
    assert not racing, "\n".join(racing)
