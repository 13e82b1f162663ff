"""Compliance: the cdk-nag rule pack and every acknowledgement of a finding, each with its reason.

Stacks call `acknowledge(resource, ACK)` next to the resource the finding is about; the finding id
and the reason live here so that a reviewer sees every exception to the rules in one file.
checkov skips work the same way (`skip_checkov(resource, SKIP)`): they are written into the resource's
template metadata, where checkov reads them and where a template diff shows them. cfn-lint exceptions,
if any, live in `.cfnlintrc` with their reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import Acknowledgment, CfnResource, Stack, Token, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct, IValidation

# Resource types that hold data or identity: retained on stack deletion, logical IDs pinned by
# tests/stacks/test_stateful.py (a changed logical ID means CloudFormation replaces the resource).
STATEFUL_RESOURCE_TYPES: frozenset[str] = frozenset(
    {
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::S3Vectors::VectorBucket",
        "AWS::S3Vectors::Index",
        "AWS::OpenSearchServerless::Collection",
        "AWS::RDS::DBCluster",
        "AWS::RDS::DBInstance",
        "AWS::EFS::FileSystem",
        "AWS::SageMaker::ModelPackageGroup",
    }
)


@dataclass(frozen=True)
class Acknowledgement:
    """One accepted cdk-nag finding: the exact rule id (with `[finding]` where the rule has several)."""

    finding: str
    reason: str

    def on(self, resource: str) -> Acknowledgement:
        """The same acknowledgement for one wildcard resource, as cdk-nag names the finding:
        `AwsSolutions-IAM5[Resource::<resource>]`."""
        return Acknowledgement(finding=f"{self.finding}[Resource::{resource}]", reason=self.reason)

    def on_resolved(self, resource: str) -> PendingAcknowledgement:
        """`on(nag_resource(scope, resource))`, named once the app has resolved its cross-stack
        references: a bucket of another stack is read through Fn::GetStackOutput, and cdk-nag names the
        finding after that resolved form, which does not exist while the construct is built. For a
        resource of the same stack it names what `nag_resource` names at once."""
        return PendingAcknowledgement(acknowledgement=self, resource=resource)


@dataclass(frozen=True)
class PendingAcknowledgement:
    """An acknowledgement for one policy resource (a token), named when the app has resolved it:
    `acknowledge` registers it as a construct validation, and those run after the references are
    resolved and before the validation plugins (cdk-nag)."""

    acknowledgement: Acknowledgement
    resource: str


# The acknowledgements in force. Each is defined here with its finding and reason and applied with
# `acknowledge(...)` next to its resource. None so far: the foundation passes the AWS Solutions pack
# as it is (the access-log bucket counts as compliant for S1 because it is a log delivery target).


@dataclass(frozen=True)
class CheckovSkip:
    """One accepted checkov failure: the check id and why it does not apply to that resource."""

    check: str
    reason: str


ACCESS_LOG_BUCKET_NOT_LOGGED = CheckovSkip(
    check="CKV_AWS_18",
    reason=(
        "This bucket is the target of the other buckets' S3 server access logs; logging it into itself "
        "would log its own log deliveries, and a second log bucket would only move the finding."
    ),
)


INVOCATION_LOGGING_NO_RESOURCE_TYPE = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "bedrock:Get/Put/DeleteModelInvocationLoggingConfiguration act on a per-account, per-region setting "
        "and have no resource type in the Service Authorization Reference, so they accept only Resource '*'."
    ),
)

LOG_STREAM_WILDCARD = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "Lambda names the log streams of its function at run time; the statement is limited to the streams "
        "of the function's own log group."
    ),
)

PROVIDER_FRAMEWORK_BASIC_EXECUTION = Acknowledgement(
    finding="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    reason=(
        "The role of the CDK custom resource provider framework's own function, created by aws-cdk-lib; "
        "it only writes its logs and invokes our handler."
    ),
)

PROVIDER_FRAMEWORK_INVOKE = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The CDK provider framework invokes the handler function by ARN and by ARN:* so that any "
        "version or alias of that one function can be called; no other function is reachable."
    ),
)

KNOWLEDGE_BASE_DOCUMENTS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The knowledge base reads every document under its own prefix of the data bucket "
        "(s3:GetObject on <bucket>/knowledge-bases/<name>/*); document names are not known in advance."
    ),
)

EVIDENCE_OBJECTS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The evidence copy function reads each new log object under its source prefix (the access-log "
        "bucket, the data bucket's bedrock-invocation-logs/) and writes its copy under the same name in "
        "the write-once bucket: log writers name their objects at delivery time. It has no delete, "
        "retention or other rights on the buckets, and no one can remove a locked copy (Object Lock): a "
        "second put of a name only adds a version."
    ),
)

EVIDENCE_LOST_QUEUE = Acknowledgement(
    finding="AwsSolutions-SQS3",
    reason=(
        "The evidence copy function's lost queue is itself where failed events end (its asynchronous "
        "invocation's on-failure destination): nothing consumes it but an operator's redrive, and its "
        "messages stay 14 days with an alarm on any."
    ),
)

RANDOM_PASSWORD_NO_RESOURCE = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "secretsmanager:GetRandomPassword generates a password and touches no secret: it has no resource "
        "type in the Service Authorization Reference, so it accepts only Resource '*'. The login rotation "
        "function's other Secrets Manager rights name the Bedrock login's secret alone."
    ),
)

SERVERLESS_WRITER_NO_ENHANCED_MONITORING = CheckovSkip(
    check="CKV_AWS_118",
    reason=(
        "The vector store's only instance is an Aurora Serverless v2 writer that pauses at 0 ACU; OS-level "
        "enhanced monitoring would add log ingestion for a store that standard RDS metrics (capacity, "
        "ACU utilisation) already describe."
    ),
)

# checkov's three Lambda checks, for every function of ours (PythonFunction) and the CDK provider
# framework's own functions. Each reason covers every kind of caller these functions have. Sources:
# - "Configuring reserved concurrency for a function" (you can reserve up to the unreserved account
#   concurrency minus 100): https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
# - "Lambda quotas" (new AWS accounts have reduced concurrency quotas):
#   https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# - "AWS::Lambda::Function DeadLetterConfig" (the dead-letter queue for failed asynchronous invocations):
#   https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-function-deadletterconfig.html
# - "Using AWS Lambda with CloudFormation" (CloudFormation invokes the function asynchronously with a
#   callback URL): https://docs.aws.amazon.com/lambda/latest/dg/services-cloudformation.html
LAMBDA_NO_RESERVED_CONCURRENCY = CheckovSkip(
    check="CKV_AWS_115",
    reason=(
        "No reserved concurrency: a reservation is carved out of the account's regional pool, Lambda keeps "
        "at least 100 of it unreserved, and new accounts start on a reduced concurrency quota, where a "
        "reservation may not fit at all (Lambda guide, configuration-concurrency and gettingstarted-limits). "
        "The gateway's callers are throttled before it by API Gateway (the account's throttle, and per "
        "tenant by usage plans); the other functions run on schedules, deployments, queue messages and "
        "document uploads."
    ),
)

LAMBDA_NO_DEAD_LETTER_QUEUE = CheckovSkip(
    check="CKV_AWS_116",
    reason=(
        "No function dead-letter queue: Lambda sends only failed asynchronous invocations there "
        "(AWS::Lambda::Function DeadLetterConfig). API Gateway (the gateway), the provider framework (custom "
        "resource handlers) and Step Functions (pipeline steps) invoke synchronously and get the error back; "
        "the deployer's SQS queue has its own dead-letter queue; CloudFormation fails the resource that gets "
        "no answer; EventBridge retries the scheduled functions, whose next run catches up."
    ),
)

LAMBDA_OUTSIDE_VPC = CheckovSkip(
    check="CKV_AWS_117",
    reason=(
        "Not in a VPC: the function calls only AWS service endpoints (Bedrock, SageMaker, S3, DynamoDB, the "
        "RDS Data API, CloudWatch, ...) over TLS, authorised by IAM, and reaches no private host; a VPC "
        "would add NAT or endpoint cost and no protection. Functions that call private hosts (the gateway of "
        "a self-hosted profile) are in the VPC and carry no such skip."
    ),
)


def lambda_checkov_skips(*, in_vpc: bool) -> tuple[CheckovSkip, ...]:
    """The checkov skips of one Lambda function: CKV_AWS_117 only for a function without a VpcConfig
    (for one with a VpcConfig, checkov passes it and the skip would match nothing)."""
    return (
        LAMBDA_NO_RESERVED_CONCURRENCY,
        LAMBDA_NO_DEAD_LETTER_QUEUE,
        *(() if in_vpc else (LAMBDA_OUTSIDE_VPC,)),
    )


# For functions outside a VPC (the provider framework's own); PythonFunction calls
# lambda_checkov_skips(in_vpc=...) so that a function in a VPC gets no CKV_AWS_117 skip.
LAMBDA_CHECKOV_SKIPS = lambda_checkov_skips(in_vpc=False)

# aws-cdk-lib's own handler that strips the rules of a new VPC's default security group (the
# restrictDefaultSecurityGroup feature flag): a stack-level singleton created by ec2.Vpc.
VPC_DEFAULT_SG_PROVIDER_CHECKOV_SKIPS = (
    CheckovSkip(
        check="CKV_AWS_115",
        reason=(
            "aws-cdk-lib's handler that empties a new VPC's default security group runs only when "
            "CloudFormation creates or updates that VPC; there is no traffic to reserve concurrency for."
        ),
    ),
    CheckovSkip(
        check="CKV_AWS_116",
        reason=(
            "CloudFormation invokes this custom-resource handler asynchronously and waits for its answer at "
            "the response URL (Lambda guide, services-cloudformation); a failure fails the deployment, and a "
            "queued event could no longer be answered."
        ),
    ),
    CheckovSkip(
        check="CKV_AWS_117",
        reason=(
            "Calls only the EC2 control plane (RevokeSecurityGroupIngress/Egress on the VPC's default "
            "security group) during deployment; it reaches no private host."
        ),
    ),
)


# None left on every gateway API: APIG3 (no WAF) no longer fires on a public API, which has its web ACL,
# and APIG6 (no execution logging) on none, whose stages log at ERROR into a group of ours
# (stacks/components/gateway_protection.py). Kept as the hook ModelGateway applies.
GATEWAY_API_FINDINGS: tuple[Acknowledgement, ...] = ()

# gateway.endpoint: private. AWS WAF can sit in front of a private API too; it is not added there.
GATEWAY_PRIVATE_NO_WAF = Acknowledgement(
    finding="AwsSolutions-APIG3",
    reason=(
        "gateway.endpoint private: the API has no internet endpoint; its resource policy denies every "
        "request that does not come through the listed execute-api VPC endpoints of the bank's network, "
        "where callers also need a tenant key and are throttled by their usage plan. The web ACL, its "
        "fixed monthly fee and its 8 KB body rule guard the public endpoint."
    ),
)

# The account-level role API Gateway uses to write CloudWatch logs (gateway.api_gateway_account_role:
# create). It serves every API of the account and region, so it cannot be narrowed to our log group.
API_GATEWAY_ACCOUNT_ROLE = Acknowledgement(
    finding="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    + "AmazonAPIGatewayPushToCloudWatchLogs]",
    reason=(
        "API Gateway's CloudWatch Logs role is one setting per account and region, used by every REST API "
        "there, not only this one; AWS documents this managed policy as what that role needs (API Gateway "
        "guide, 'Permissions for CloudWatch logging')."
    ),
)

GATEWAY_IAM_AUTH = (
    Acknowledgement(
        finding="AwsSolutions-COG4",
        reason=(
            "No Cognito user pool: gateway.auth: iam. Every method takes AWS_IAM authorization (SigV4), so "
            "only principals of this account whose identity policy grants execute-api:Invoke on the method "
            "(the customer assistant's function: POST /v1/chat/completions only) reach it; another "
            "account's principals would also need the API's resource policy to allow them (API Gateway "
            "guide, 'How API Gateway resource policies affect authorization workflow'), and a public "
            "API has none."
        ),
    ),
)

GATEWAY_API_KEY_AUTH = (
    Acknowledgement(
        finding="AwsSolutions-COG4",
        reason=(
            "No Cognito user pool: callers are services with bearer keys (what OpenAI clients send), "
            "checked by the key authorizer against the key table and metered by the tenant's usage plan; "
            "gateway.auth: iam for SigV4-signed callers."
        ),
    ),
)

GATEWAY_STAGE_CHECKOV_SKIPS = (
    CheckovSkip(
        check="CKV_AWS_120",
        reason=(
            "No API Gateway response cache: answers are cached by the gateway itself (exact match, only for "
            "deterministic requests, keyed on the guardrail version), which a stage cache cannot do."
        ),
    ),
)


# No CKV_AWS_59 skip on the gateway's methods: checkov 3.3.30 passes an AWS::ApiGateway::Method whose
# AuthorizationType is NONE when ApiKeyRequired is true (checkov/cloudformation/checks/resource/aws/
# APIGatewayAuthorization.py), and with `auth: iam` the AuthorizationType is AWS_IAM.


LAMBDA_NETWORK_INTERFACES = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A function in a VPC: Lambda creates, describes and deletes the function's network interfaces with "
        "its execution role (the actions of AWSLambdaVPCAccessExecutionRole). ec2:DescribeNetworkInterfaces "
        "and ec2:DescribeSubnets accept only Resource '*'; the write actions are limited to EC2 resources "
        "of this account and region because the interface, subnet and security-group ids are not known "
        "before deploy (Lambda developer guide, configuration-vpc, 'Required IAM permissions')."
    ),
)

SESSION_MANAGER_MANAGED_POLICY = Acknowledgement(
    finding="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
    + "AmazonSSMManagedInstanceCore]",
    reason=(
        "Session Manager is the only way onto the model hosts (no SSH, no public IP); AWS documents this "
        "managed policy as what the SSM agent needs, and its actions have no narrower resources."
    ),
)

MODEL_WEIGHTS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A model host reads every file of its model under models/<name>/ of the artifacts bucket; the file "
        "names vary by model."
    ),
)

WHEELHOUSE = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A GPU model host installs vLLM from the wheelhouse under wheels/vllm-<version>/ of the artifacts "
        "bucket (genai-stack wheelhouse); the wheel file names vary by release and Python ABI."
    ),
)

COMPILED_MODEL = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A Neuron model host writes the model it compiled under models/<name>/neuron-compiled/ of the "
        "artifacts bucket; the key and file names depend on the Neuron release and the settings."
    ),
)

NAMESPACED_METRICS = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "cloudwatch:PutMetricData has no resource type; the statement is limited to the hosts' own namespace "
        "with the cloudwatch:namespace condition key."
    ),
)

INTERNAL_HTTP_LISTENER = (
    CheckovSkip(
        check="CKV_AWS_2",
        reason=(
            "The profile chose plain HTTP to this internal load balancer (hosting.tls.allow_plaintext) and "
            "said why in hosting.tls.reason, which the listener's genai-stack:plaintext-reason metadata and "
            "`genai-stack plan` show; the load balancer is in private subnets and admits only the gateway's "
            "security group."
        ),
    ),
    CheckovSkip(
        check="CKV_AWS_103", reason="The same internal HTTP listener: no TLS policy applies to plain HTTP."
    ),
)


def internal_load_balancer(no_access_logs: bool) -> tuple[Acknowledgement, ...]:
    if not no_access_logs:
        return ()
    return (
        Acknowledgement(
            finding="AwsSolutions-ELB2",
            reason="No access-log bucket was given for this load balancer, so its access logs are off.",
        ),
    )


def enable_checks(scope: IConstruct) -> None:
    """Run the AWS Solutions pack on every resource below `scope` at synth (cdk-nag 3 plugin API).

    A finding that is not acknowledged fails the synthesis with the validation report.
    """
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


CUSTOM_MODEL_SERVING = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "A customization pipeline creates its on-demand deployment or Provisioned Throughput when it "
        "first runs, so the resource id in the ARN does not exist at synthesis; the statement is held to "
        "the resources carrying the profile's genai-stack:profile tag, which the pipeline puts on them "
        "(aws:ResourceTag is a condition key of InvokeModel, GetCustomModelDeployment and "
        "GetProvisionedModelThroughput on those resource types)."
    ),
)


def acknowledge(scope: IConstruct, *acknowledgements: Acknowledgement | PendingAcknowledgement) -> None:
    for pending in acknowledgements:
        if isinstance(pending, PendingAcknowledgement):
            scope.node.add_validation(_AcknowledgeWhenResolved(scope, pending))
    now = [
        Acknowledgment(id=a.finding, reason=a.reason)
        for a in acknowledgements
        if isinstance(a, Acknowledgement)
    ]
    if now:
        Validations.of(scope).acknowledge(*now)


def acknowledge_provider_framework(provider: cr.Provider, handler: lambda_.Function) -> None:
    """The findings on the CDK provider framework's own function, which aws-cdk-lib creates."""
    framework = provider.node.find_child("framework-onEvent")
    handler_id = Stack.of(handler).get_logical_id(handler.node.default_child)
    acknowledge(
        framework.role,
        PROVIDER_FRAMEWORK_BASIC_EXECUTION,
        PROVIDER_FRAMEWORK_INVOKE.on(f"<{handler_id}.Arn>:*"),
    )
    skip_checkov(framework.node.default_child, *LAMBDA_CHECKOV_SKIPS)


def skip_checkov(resource: CfnResource, *skips: CheckovSkip) -> None:
    """Write checkov's inline skip metadata (`Metadata.checkov.skip`) onto one resource."""
    existing = (resource.get_metadata("checkov") or {}).get("skip", [])
    resource.add_metadata(
        "checkov", {"skip": [*existing, *({"id": s.check, "comment": s.reason} for s in skips)]}
    )


LAMBDA_TASK_VERSIONS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "aws-cdk-lib's LambdaInvoke task allows the task's function and its versions/aliases "
        "(<function ARN>:*); no other function is reachable."
    ),
)
STATE_MACHINE_DELIVERY_AND_TRACING = Acknowledgement(
    finding="AwsSolutions-IAM5[Resource::*]",
    reason=(
        "aws-cdk-lib's statements for a state machine's log delivery (logs:CreateLogDelivery, "
        "PutResourcePolicy, DescribeLogGroups, ...) and X-Ray (xray:PutTraceSegments, GetSamplingRules, "
        "...): these actions have no resource type in the Service Authorization Reference, only '*'."
    ),
)


def nag_resource(scope: IConstruct, value: str) -> str:
    """A policy resource as cdk-nag 3 names it in an IAM5 finding id (its flattenCfnReference): the
    resolved value with Fn::Join flattened, `{"Ref": X}` as `<X>`, `{"Fn::GetAtt": [A, B]}` as `<A.B>`,
    `${...}` as `<...>`; a literal string unchanged. Use it with `Acknowledgement.on(...)`."""

    def visit(node: Any) -> str:
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict) and "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(visit(item) for item in items)
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{visit(resource)}.{visit(attribute)}>"
        if isinstance(node, dict) and "Ref" in node:
            return f"<{visit(node['Ref'])}>"
        return json.dumps(node, separators=(",", ":"))

    return visit(Stack.of(scope).resolve(value)) if Token.is_unresolved(value) else value


@jsii.implements(IValidation)
class _AcknowledgeWhenResolved:
    def __init__(self, scope: IConstruct, pending: PendingAcknowledgement) -> None:
        self._scope, self._pending = scope, pending

    def validate(self) -> list[str]:
        resolved = nag_resource(self._scope, self._pending.resource)
        acknowledge(self._scope, self._pending.acknowledgement.on(resolved))
        return []
