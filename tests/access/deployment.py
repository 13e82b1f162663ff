"""One profile's stacks as AWS would hold them once deployed: roles with the identity policies
attached to them, Lambda functions with their roles, and the resource policies (KMS key policies,
S3 bucket policies, SNS topic policies, SQS queue policies), all resolved to concrete strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from genai_stack.retired_roles import RETIRED_METADATA
from tests.access.aws_managed import aws_managed_policy
from tests.access.evaluator import Decision, Policy, Request, ResourcePolicy, evaluate
from tests.access.resolver import Resolver


@dataclass
class Role:
    stack: str
    logical_id: str
    path: str  # aws:cdk:path
    name: str
    arn: str
    service_principals: tuple[str, ...]
    policies: list[Policy] = field(default_factory=list)


@dataclass
class Function:
    stack: str
    logical_id: str
    path: str
    name: str
    arn: str
    handler: str
    role: Role
    properties: Mapping[str, Any]  # resolved

    @property
    def package(self) -> str | None:
        """`lambdas.<package>.handler.<fn>` -> package; None for functions not built from lambdas/."""
        parts = self.handler.split(".")
        return parts[1] if parts[0] == "lambdas" and len(parts) > 2 else None

    @property
    def environment(self) -> Mapping[str, str]:
        return (self.properties.get("Environment") or {}).get("Variables") or {}

    @property
    def log_group(self) -> str:
        """Where Lambda sends the function's logs: LoggingConfig.LogGroup, else /aws/lambda/NAME
        (Lambda developer guide, "Sending Lambda function logs to CloudWatch Logs":
        https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html)."""
        return (self.properties.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{self.name}"


AUTO_SCALING_SLR = "AWSServiceRoleForAutoScaling"


def _path(resource: Mapping[str, Any], logical_id: str) -> str:
    return resource.get("Metadata", {}).get("aws:cdk:path", logical_id)


class Deployment:
    """The resolved IAM picture of one profile (every stack, one account and Region)."""

    def __init__(
        self,
        profile: str,
        templates: Mapping[str, dict],
        *,
        account: str,
        region: str,
        guardrail_enforced: bool = True,
        cost_tag: tuple[str, str] | None = None,
    ) -> None:
        self.profile = profile
        # The profile's cost-allocation tag (key, value); None: read from the built-in profile.
        self.cost_tag = cost_tag
        # The profile's bedrock.guardrail.mandatory: whether IAM must refuse a generation call without
        # the guardrail (rows deny it) or only the code passes it (rows/gateway.py).
        self.guardrail_enforced = guardrail_enforced
        self.templates = templates
        self.resolver = Resolver(templates, account=account, region=region)
        self.account = account
        self.region = region
        self.partition = self.resolver.partition

    def arn(
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
    ) -> str:
        """An ARN in AWS's format `arn:partition:service:region:account:resource`."""
        return f"arn:{self.partition}:{service}:{self.region if region is None else region}:{self.account if account is None else account}:{resource}"

    def _resources(self, *types: str):
        for stack, template in self.templates.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] in types:
                    yield stack, logical_id, resource

    @cached_property
    def managed_policies(self) -> dict[str, Policy]:
        """Customer managed policies of this deployment by ARN."""
        result = {}
        for stack, logical_id, resource in self._resources("AWS::IAM::ManagedPolicy"):
            arn = self.resolver.ref(stack, logical_id)
            document = self.resolver.resolve(stack, resource["Properties"]["PolicyDocument"])
            result[arn] = Policy(f"{_path(resource, logical_id)}", document)
        return result

    @cached_property
    def roles(self) -> dict[str, Role]:
        """Roles by name, with every identity policy attached to them."""
        roles: dict[str, Role] = {}
        retired: set[str] = set()
        for stack, logical_id, resource in self._resources("AWS::IAM::Role"):
            props = resource["Properties"]
            if RETIRED_METADATA in resource.get("Metadata", {}):
                # Kept unused for one release (stacks/retired_roles.py); tests/stacks/test_retired_roles.py
                # checks that nothing uses them.
                retired.add(self.resolver.ref(stack, logical_id))
                continue
            if "PermissionsBoundary" in props:
                raise NotImplementedError(
                    f"{_path(resource, logical_id)}: permission boundaries are not modelled"
                )
            trust = self.resolver.resolve(stack, props["AssumeRolePolicyDocument"])
            services = tuple(
                s
                for statement in trust["Statement"]
                for s in _as_list((statement.get("Principal") or {}).get("Service", []))
            )
            role = Role(
                stack,
                logical_id,
                _path(resource, logical_id),
                self.resolver.ref(stack, logical_id),
                self.resolver.get_att(stack, logical_id, "Arn"),
                services,
            )
            for inline in self.resolver.resolve(stack, props.get("Policies", [])):
                role.policies.append(Policy(f"{role.path}:{inline['PolicyName']}", inline["PolicyDocument"]))
            for arn in self.resolver.resolve(stack, props.get("ManagedPolicyArns", [])):
                role.policies.append(self._managed(arn, role.path))
            roles[role.name] = role
        for stack, logical_id, resource in self._resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            props = resource["Properties"]
            attached = self.resolver.resolve(stack, props.get("Roles", []))
            if not attached:
                continue
            if resource["Type"] == "AWS::IAM::Policy":
                document = self.resolver.resolve(stack, props["PolicyDocument"])
                policy = Policy(_path(resource, logical_id), document)
            else:
                policy = self.managed_policies[self.resolver.ref(stack, logical_id)]
            for name in attached:
                if name not in retired:
                    roles[name].policies.append(policy)
        if any(True for _ in self._resources("AWS::AutoScaling::AutoScalingGroup")):
            roles[AUTO_SCALING_SLR] = self._auto_scaling_service_linked_role()
        return roles

    def _auto_scaling_service_linked_role(self) -> Role:
        """Not a role of ours: EC2 Auto Scaling launches the groups' instances as its service-linked
        role (created by AWS, not in any template). Its AWS-defined policy grants no use of customer
        managed keys, so what it may do with our key comes from the key policy alone ("Required AWS
        KMS key policy for use with encrypted volumes":
        https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html)."""
        path = f"aws-service-role/autoscaling.amazonaws.com/{AUTO_SCALING_SLR}"
        arn = f"arn:{self.partition}:iam::{self.account}:role/{path}"
        return Role("", "", path, AUTO_SCALING_SLR, arn, ("autoscaling.amazonaws.com",))

    def _managed(self, arn: str, where: str) -> Policy:
        if arn.startswith(f"arn:{self.partition}:iam::aws:policy/"):
            return aws_managed_policy(arn)
        if arn in self.managed_policies:
            return self.managed_policies[arn]
        raise KeyError(
            f"{where}: managed policy {arn} is neither an AWS managed policy known to the harness nor in this deployment"
        )

    @cached_property
    def functions(self) -> list[Function]:
        by_arn = {role.arn: role for role in self.roles.values()}
        functions = []
        for stack, logical_id, resource in self._resources("AWS::Lambda::Function"):
            props = self.resolver.resolve(
                stack, {k: v for k, v in resource["Properties"].items() if k != "Code"}
            )
            functions.append(
                Function(
                    stack,
                    logical_id,
                    _path(resource, logical_id),
                    self.resolver.ref(stack, logical_id),
                    self.resolver.get_att(stack, logical_id, "Arn"),
                    props["Handler"],
                    by_arn[props["Role"]],
                    props,
                )
            )
        return functions

    @cached_property
    def resource_policies(self) -> dict[str, ResourcePolicy]:
        """Resource policies by the ARN of the resource they protect (a bucket's covers its objects)."""
        result: dict[str, ResourcePolicy] = {}
        for stack, logical_id, resource in self._resources("AWS::KMS::Key"):
            document = self.resolver.resolve(stack, resource["Properties"]["KeyPolicy"])
            arn = self.resolver.get_att(stack, logical_id, "Arn")
            result[arn] = ResourcePolicy(
                "kms", Policy(f"{_path(resource, logical_id)} (key policy)", document)
            )
        for kind, rtype, targets in (
            ("s3", "AWS::S3::BucketPolicy", "Bucket"),
            ("sns", "AWS::SNS::TopicPolicy", "Topics"),
            ("sqs", "AWS::SQS::QueuePolicy", "Queues"),
        ):
            for stack, logical_id, resource in self._resources(rtype):
                props = resource["Properties"]
                document = self.resolver.resolve(stack, props["PolicyDocument"])
                policy = ResourcePolicy(kind, Policy(_path(resource, logical_id), document))
                for target in _as_list(self.resolver.resolve(stack, props[targets])):
                    if kind == "s3":
                        target = f"arn:{self.partition}:s3:::{target}"
                    elif kind == "sqs":  # QueueUrl -> ARN
                        target = self.arn("sqs", target.rsplit("/", 1)[-1])
                    result[target] = policy
        return result

    def resource_policy_for(self, resource: str) -> ResourcePolicy | None:
        if resource in self.resource_policies:
            return self.resource_policies[resource]
        if resource.startswith(f"arn:{self.partition}:s3:::") and "/" in resource:
            return self.resource_policies.get(resource.split("/", 1)[0])
        if resource.startswith("arn:") and resource.split(":")[2] == "kms":
            # A key this deployment does not own: its policy is unknown, so nothing can be said.
            raise KeyError(f"no key policy for {resource} in this deployment")
        return None

    def role(self, name_or_path: str) -> Role:
        for role in self.roles.values():
            if name_or_path in (role.name, role.path):
                return role
        raise KeyError(name_or_path)

    def decide(self, role: Role, action: str, resource: str, context: Mapping[str, Any]) -> Decision:
        request = Request(role.arn, action, resource, {**_default_context(role, self), **context})
        return evaluate(request, role.policies, self.resource_policy_for(resource))


def _default_context(role: Role, deployment: Deployment) -> dict[str, Any]:
    """Keys present in every request an SDK makes with a role session ("AWS global condition
    context keys": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
    The SDKs call AWS over HTTPS, so aws:SecureTransport is true."""
    return {
        "aws:PrincipalArn": role.arn,
        "aws:PrincipalAccount": deployment.account,
        "aws:PrincipalType": "AssumedRole",
        "aws:RequestedRegion": deployment.region,
        "aws:SecureTransport": True,
    }


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
