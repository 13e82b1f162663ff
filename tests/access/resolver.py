"""Resolve a synthesized CloudFormation template's intrinsic functions into concrete strings, offline.

Every resource gets a deterministic fake physical name or id (or the name its properties set), and
`Ref` / `Fn::GetAtt` return what CloudFormation documents for that resource type ("Return values"
section of each type's page, table below). A type or attribute that is not in the table raises
`UnknownReturnValue`: the harness never guesses what an ARN looks like.

| Type | Ref | GetAtt used here | Page (CloudFormation Template Reference) |
|---|---|---|---|
| AWS::Logs::LogGroup | name | Arn = `arn:P:logs:R:A:log-group:NAME:*` | https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-loggroup.html |
| AWS::KMS::Key | key id | Arn = `arn:P:kms:R:A:key/ID`, KeyId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html |
| AWS::S3::Bucket | name | Arn = `arn:P:s3:::NAME`, DomainName | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucket.html |
| AWS::IAM::Role | name | Arn, RoleId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html |
| AWS::IAM::ManagedPolicy | ARN | PolicyArn | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-managedpolicy.html |
| AWS::IAM::InstanceProfile | name | Arn | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-instanceprofile.html |
| AWS::Lambda::Function | name | Arn = `arn:P:lambda:R:A:function:NAME` | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-function.html |
| AWS::DynamoDB::Table | name | Arn = `arn:P:dynamodb:R:A:table/NAME` | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-dynamodb-table.html |
| AWS::SQS::Queue | queue URL | Arn, QueueName, QueueUrl | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queue.html |
| AWS::SNS::Topic | topic ARN | TopicArn, TopicName | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-topic.html |
| AWS::StepFunctions::StateMachine | ARN | Arn, Name | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachine.html |
| AWS::SecretsManager::Secret | ARN | Id | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html |
| AWS::SecretsManager::SecretTargetAttachment | secret ARN | - | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secrettargetattachment.html |
| AWS::RDS::DBCluster | cluster identifier (lower case) | DBClusterArn, Endpoint.Address, MasterUserSecret.SecretArn (`secret:rds!cluster-UUID-XXXXXX`) | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbcluster.html |
| AWS::Bedrock::Guardrail | guardrail ARN | GuardrailArn, GuardrailId, Version (DRAFT) | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-guardrail.html |
| AWS::Bedrock::GuardrailVersion | `ID\\|VERSION` | GuardrailArn, GuardrailId, Version | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-guardrailversion.html |
| AWS::Bedrock::KnowledgeBase | knowledge base id | KnowledgeBaseArn, KnowledgeBaseId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-knowledgebase.html |
| AWS::Bedrock::DataSource | `KBID\\|DSID` | DataSourceId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-datasource.html |
| AWS::Bedrock::PromptVersion | - | Version ("1": a prompt's first) | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-promptversion.html |
| AWS::Bedrock::ApplicationInferenceProfile | ARN | InferenceProfileArn, InferenceProfileId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-bedrock-applicationinferenceprofile.html |
| AWS::SageMaker::Endpoint | ARN | EndpointName | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-endpoint.html |
| AWS::SageMaker::EndpointConfig | ARN | EndpointConfigName | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-endpointconfig.html |
| AWS::SageMaker::Model | ARN | ModelName | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-model.html |
| AWS::SageMaker::ModelPackageGroup | - | ModelPackageGroupArn | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-modelpackagegroup.html |
| AWS::EC2::VPC | VPC id | DefaultSecurityGroup, VpcId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-vpc.html |
| AWS::EC2::Subnet | subnet id | SubnetId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-subnet.html |
| AWS::EC2::SecurityGroup | group id (in a VPC) | GroupId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html |
| AWS::ElasticLoadBalancingV2::LoadBalancer | ARN | DNSName, LoadBalancerFullName | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-elasticloadbalancingv2-loadbalancer.html |
| AWS::CloudWatch::Alarm | name | Arn = `arn:P:cloudwatch:R:A:alarm:NAME` | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudwatch-alarm.html |
| AWS::AutoScaling::AutoScalingGroup | name (AutoScalingGroupName or generated) | - | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-autoscaling-autoscalinggroup.html |
| AWS::ElasticLoadBalancingV2::TargetGroup | ARN | TargetGroupArn, TargetGroupFullName = `targetgroup/NAME/ID` | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-elasticloadbalancingv2-targetgroup.html |
| AWS::Budgets::Budget | budget name | - | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-budgets-budget.html |
| AWS::S3Vectors::VectorBucket | ARN | VectorBucketArn | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3vectors-vectorbucket.html |
| AWS::S3Vectors::Index | ARN | IndexArn | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3vectors-index.html |
| AWS::Events::Rule | name | Arn | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-rule.html |
| AWS::ApiGateway::RestApi | REST API id | RootResourceId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-restapi.html |
| AWS::ApiGateway::Stage | stage name | - | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-stage.html |
| AWS::Lex::Bot | bot id | Arn = `arn:P:lex:R:A:bot/ID`, Id | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lex-bot.html |
| AWS::Lex::BotVersion | - | BotVersion ("1": a bot's first) | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lex-botversion.html |
| AWS::Lex::BotAlias | - | Arn = `arn:P:lex:R:A:bot-alias/BOTID/ALIASID`, BotAliasId | https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lex-botalias.html |

Intrinsic functions: Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::GetAZs,
Fn::Base64, Fn::ImportValue (an `Export` of another stack), Fn::GetStackOutput (an output of
another stack, by stack name and Region), pseudo parameters AWS::Partition, AWS::Region,
AWS::AccountId, AWS::URLSuffix, AWS::StackName, AWS::StackId; SSM parameter-typed Parameters and dynamic
references (`{{resolve:ssm:...}}`, `{{resolve:secretsmanager:...}}`) become fixed fake values.
(CloudFormation "Intrinsic function reference":
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html)
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]*)\}\}")


class UnknownReturnValue(KeyError):
    """A Ref or GetAtt this harness has no documented return value for."""


class UnresolvableValue(ValueError):
    """An intrinsic function or reference that cannot be resolved (missing output, bad shape)."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Physical:
    """What one resource is once deployed: its name (or the name CloudFormation generates) and
    the ids services assign. All fake, all deterministic."""

    stack: str
    logical_id: str
    type: str
    properties: Mapping[str, Any]
    resolver: Resolver

    def prop(self, name: str) -> Any:
        value = self.properties.get(name)
        return None if value is None else self.resolver.resolve(self.stack, value)

    @property
    def seed(self) -> str:
        return _digest(self.stack, self.logical_id)

    def generated_name(self, limit: int = 64, lower: bool = False) -> str:
        """CloudFormation's generated name: stack name, logical id, random suffix (Name type)."""
        name = f"{self.stack}-{self.logical_id}"[: limit - 13] + f"-{self.seed[:12].upper()}"
        return name.lower() if lower else name

    def name(self, name_property: str | None, limit: int = 64, lower: bool = False) -> str:
        explicit = self.prop(name_property) if name_property else None
        return str(explicit) if explicit else self.generated_name(limit, lower)

    def short_id(self, length: int, *, upper: bool = False) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        number = int(self.seed, 16)
        chars = []
        for _ in range(length):
            number, index = divmod(number, len(alphabet))
            chars.append(alphabet[index])
        text = "".join(chars)
        return text.upper() if upper else text

    @property
    def key_id(self) -> str:
        return str(uuid.UUID(self.seed[:32]))

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        r = self.resolver
        return f"arn:{r.partition}:{service}:{r.region if region else ''}:{r.account if account else ''}:{resource}"


Attribute = Callable[[Physical], Any]


def _log_group_name(p: Physical) -> str:
    return p.name("LogGroupName", 512)


def _kb_id(p: Physical) -> str:
    return p.short_id(10, upper=True)


def _guardrail_id(p: Physical) -> str:
    return p.short_id(12)


def _guardrail_version_parent(p: Physical) -> Physical:
    identifier = p.prop("GuardrailIdentifier")
    guardrail = p.resolver.find_by_value(p.stack, "AWS::Bedrock::Guardrail", identifier)
    return guardrail


def _cluster_id(p: Physical) -> str:
    return p.name("DBClusterIdentifier", 63, lower=True)


def _state_machine_name(p: Physical) -> str:
    return p.name("StateMachineName", 80)


def _secret_arn(p: Physical) -> str:
    return p.arn("secretsmanager", f"secret:{p.name('Name', 40)}-{p.short_id(6)}")


def _sg_id(p: Physical) -> str:
    return f"sg-{p.seed[:17]}"


def _queue_name(p: Physical) -> str:
    return p.name("QueueName", 80)


def _sagemaker_name(prop: str) -> Attribute:
    return lambda p: p.name(prop, 63)


# type -> {"Ref": fn, attribute: fn}; see the table in the module docstring for the pages.
RETURN_VALUES: dict[str, dict[str, Attribute]] = {
    "AWS::Logs::LogGroup": {
        "Ref": _log_group_name,
        # "arn:aws:logs:us-east-1:123456789012:log-group:/mystack-testgroup-12ABC1AB12A1:*"
        "Arn": lambda p: p.arn("logs", f"log-group:{_log_group_name(p)}:*"),
    },
    "AWS::KMS::Key": {
        "Ref": lambda p: p.key_id,
        "KeyId": lambda p: p.key_id,
        "Arn": lambda p: p.arn("kms", f"key/{p.key_id}"),
    },
    "AWS::S3::Bucket": {
        "Ref": lambda p: p.name("BucketName", 63, lower=True),
        "Arn": lambda p: f"arn:{p.resolver.partition}:s3:::{p.name('BucketName', 63, lower=True)}",
        "DomainName": lambda p: f"{p.name('BucketName', 63, lower=True)}.s3.{p.resolver.url_suffix}",
    },
    "AWS::IAM::Role": {
        "Ref": lambda p: p.name("RoleName", 64),
        "Arn": lambda p: p.arn("iam", f"role{p.prop('Path') or '/'}{p.name('RoleName', 64)}", region=False),
        "RoleId": lambda p: "AROA" + p.short_id(17, upper=True),
    },
    "AWS::IAM::ManagedPolicy": {
        "Ref": lambda p: p.arn(
            "iam", f"policy{p.prop('Path') or '/'}{p.name('ManagedPolicyName', 128)}", region=False
        ),
        "PolicyArn": lambda p: RETURN_VALUES["AWS::IAM::ManagedPolicy"]["Ref"](p),
    },
    "AWS::Budgets::Budget": {"Ref": lambda p: p.name("BudgetName", 100)},
    "AWS::IAM::InstanceProfile": {
        "Ref": lambda p: p.name("InstanceProfileName", 128),
        "Arn": lambda p: p.arn(
            "iam",
            f"instance-profile{p.prop('Path') or '/'}{p.name('InstanceProfileName', 128)}",
            region=False,
        ),
    },
    "AWS::Lambda::Function": {
        "Ref": lambda p: p.name("FunctionName", 64),
        "Arn": lambda p: p.arn("lambda", f"function:{p.name('FunctionName', 64)}"),
    },
    "AWS::DynamoDB::Table": {
        "Ref": lambda p: p.name("TableName", 255),
        "Arn": lambda p: p.arn("dynamodb", f"table/{p.name('TableName', 255)}"),
    },
    "AWS::SQS::Queue": {
        "Ref": lambda p: (
            f"https://sqs.{p.resolver.region}.{p.resolver.url_suffix}/{p.resolver.account}/{_queue_name(p)}"
        ),
        "Arn": lambda p: p.arn("sqs", _queue_name(p)),
        "QueueName": _queue_name,
        "QueueUrl": lambda p: RETURN_VALUES["AWS::SQS::Queue"]["Ref"](p),
    },
    "AWS::SNS::Topic": {
        "Ref": lambda p: p.arn("sns", p.name("TopicName", 256)),
        "TopicArn": lambda p: p.arn("sns", p.name("TopicName", 256)),
        "TopicName": lambda p: p.name("TopicName", 256),
    },
    "AWS::StepFunctions::StateMachine": {
        "Ref": lambda p: p.arn("states", f"stateMachine:{_state_machine_name(p)}"),
        "Arn": lambda p: p.arn("states", f"stateMachine:{_state_machine_name(p)}"),
        "Name": _state_machine_name,
    },
    "AWS::SecretsManager::Secret": {"Ref": _secret_arn, "Id": _secret_arn},
    "AWS::SecretsManager::SecretTargetAttachment": {
        "Ref": lambda p: p.prop("SecretId"),
    },
    "AWS::RDS::DBCluster": {
        "Ref": _cluster_id,
        "DBClusterArn": lambda p: p.arn("rds", f"cluster:{_cluster_id(p)}"),
        "Endpoint.Address": lambda p: (
            f"{_cluster_id(p)}.cluster-{p.short_id(12)}.{p.resolver.region}.rds.{p.resolver.url_suffix}"
        ),
        "Endpoint.Port": lambda p: "5432",
        # The secret Aurora creates for a managed master password: named `rds!cluster-<uuid>`
        # (Aurora user guide, "Password management with Amazon Aurora and AWS Secrets Manager"),
        # with Secrets Manager's six-character suffix.
        "MasterUserSecret.SecretArn": lambda p: p.arn(
            "secretsmanager", f"secret:rds!cluster-{uuid.UUID(p.seed[:32])}-{p.short_id(6)}"
        ),
    },
    "AWS::Bedrock::Guardrail": {
        "Ref": lambda p: p.arn("bedrock", f"guardrail/{_guardrail_id(p)}"),
        "GuardrailArn": lambda p: p.arn("bedrock", f"guardrail/{_guardrail_id(p)}"),
        "GuardrailId": _guardrail_id,
        "Version": lambda p: "DRAFT",
    },
    "AWS::Bedrock::GuardrailVersion": {
        "Ref": lambda p: f"{_guardrail_id(_guardrail_version_parent(p))}|1",
        "GuardrailArn": lambda p: RETURN_VALUES["AWS::Bedrock::Guardrail"]["GuardrailArn"](
            _guardrail_version_parent(p)
        ),
        "GuardrailId": lambda p: _guardrail_id(_guardrail_version_parent(p)),
        # The first version a new guardrail publishes is "1".
        "Version": lambda p: "1",
    },
    "AWS::Bedrock::KnowledgeBase": {
        "Ref": _kb_id,
        "KnowledgeBaseId": _kb_id,
        "KnowledgeBaseArn": lambda p: p.arn("bedrock", f"knowledge-base/{_kb_id(p)}"),
    },
    "AWS::Bedrock::DataSource": {
        "Ref": lambda p: f"{p.prop('KnowledgeBaseId')}|{p.short_id(10, upper=True)}",
        "DataSourceId": lambda p: p.short_id(10, upper=True),
    },
    "AWS::Bedrock::ApplicationInferenceProfile": {
        "Ref": lambda p: p.arn("bedrock", f"application-inference-profile/{p.short_id(12)}"),
        "InferenceProfileArn": lambda p: p.arn("bedrock", f"application-inference-profile/{p.short_id(12)}"),
        "InferenceProfileId": lambda p: p.short_id(12),
    },
    "AWS::Bedrock::Prompt": {
        "Ref": lambda p: p.arn("bedrock", f"prompt/{p.short_id(10, upper=True)}"),
        "Arn": lambda p: p.arn("bedrock", f"prompt/{p.short_id(10, upper=True)}"),
    },
    "AWS::Bedrock::PromptVersion": {
        # The first version a prompt publishes is "1"; a version's ARN is the prompt's with it.
        "Version": lambda p: "1",
    },
    "AWS::SageMaker::Endpoint": {
        "Ref": lambda p: p.arn("sagemaker", f"endpoint/{p.name('EndpointName', 63).lower()}"),
        "EndpointName": _sagemaker_name("EndpointName"),
    },
    "AWS::SageMaker::EndpointConfig": {
        "Ref": lambda p: p.arn("sagemaker", f"endpoint-config/{p.name('EndpointConfigName', 63).lower()}"),
        "EndpointConfigName": _sagemaker_name("EndpointConfigName"),
    },
    "AWS::SageMaker::Model": {
        "Ref": lambda p: p.arn("sagemaker", f"model/{p.name('ModelName', 63).lower()}"),
        "ModelName": _sagemaker_name("ModelName"),
    },
    "AWS::SageMaker::ModelPackageGroup": {
        "ModelPackageGroupArn": lambda p: p.arn(
            "sagemaker", f"model-package-group/{p.name('ModelPackageGroupName', 63).lower()}"
        ),
    },
    "AWS::EC2::VPC": {
        "Ref": lambda p: f"vpc-{p.seed[:17]}",
        "VpcId": lambda p: f"vpc-{p.seed[:17]}",
        "DefaultSecurityGroup": lambda p: f"sg-{_digest(p.seed, 'default')[:17]}",
    },
    "AWS::EC2::Subnet": {
        "Ref": lambda p: f"subnet-{p.seed[:17]}",
        "SubnetId": lambda p: f"subnet-{p.seed[:17]}",
    },
    "AWS::EC2::SecurityGroup": {"Ref": _sg_id, "GroupId": _sg_id},
    "AWS::ElasticLoadBalancingV2::LoadBalancer": {
        "Ref": lambda p: p.arn("elasticloadbalancing", f"loadbalancer/app/{p.short_id(20)}/{p.seed[:16]}"),
        "LoadBalancerFullName": lambda p: f"app/{p.short_id(20)}/{p.seed[:16]}",
        "DNSName": lambda p: (
            f"internal-{p.short_id(20)}-{int(p.seed[:8], 16)}.{p.resolver.region}.elb.{p.resolver.url_suffix}"
        ),
    },
    "AWS::AutoScaling::AutoScalingGroup": {"Ref": lambda p: p.name("AutoScalingGroupName", 255)},
    "AWS::CloudWatch::Alarm": {
        "Ref": lambda p: p.name("AlarmName", 255),
        "Arn": lambda p: p.arn("cloudwatch", f"alarm:{p.name('AlarmName', 255)}"),
    },
    "AWS::ElasticLoadBalancingV2::TargetGroup": {
        "Ref": lambda p: p.arn("elasticloadbalancing", f"targetgroup/{p.name('Name', 32)}/{p.seed[:16]}"),
        "TargetGroupArn": lambda p: p.arn(
            "elasticloadbalancing", f"targetgroup/{p.name('Name', 32)}/{p.seed[:16]}"
        ),
        "TargetGroupFullName": lambda p: f"targetgroup/{p.name('Name', 32)}/{p.seed[:16]}",
    },
    "AWS::S3Vectors::VectorBucket": {
        "Ref": lambda p: p.arn("s3vectors", f"bucket/{p.name('VectorBucketName', 63, lower=True)}"),
        "VectorBucketArn": lambda p: p.arn(
            "s3vectors", f"bucket/{p.name('VectorBucketName', 63, lower=True)}"
        ),
    },
    "AWS::S3Vectors::Index": {
        "Ref": lambda p: RETURN_VALUES["AWS::S3Vectors::Index"]["IndexArn"](p),
        "IndexArn": lambda p: f"{p.prop('VectorBucketArn')}/index/{p.name('IndexName', 63, lower=True)}",
    },
    "AWS::Events::Rule": {
        "Ref": lambda p: p.name("Name", 64),
        "Arn": lambda p: p.arn("events", f"rule/{p.name('Name', 64)}"),
    },
    "AWS::ApiGateway::RestApi": {
        "Ref": lambda p: p.short_id(10),
        "RootResourceId": lambda p: p.short_id(10)[::-1],
    },
    "AWS::ApiGateway::Stage": {"Ref": lambda p: p.prop("StageName")},
    # Lex ids: 10 upper-case letters and digits (the IAM service reference's bot and bot-alias ARNs:
    # arn:${Partition}:lex:${Region}:${Account}:bot/${BotId}, .../bot-alias/${BotId}/${BotAliasId}).
    "AWS::Lex::Bot": {
        "Ref": lambda p: p.short_id(10, upper=True),
        "Id": lambda p: p.short_id(10, upper=True),
        "Arn": lambda p: p.arn("lex", f"bot/{p.short_id(10, upper=True)}"),
    },
    "AWS::Lex::BotVersion": {"BotVersion": lambda p: "1"},
    "AWS::Lex::BotAlias": {
        "BotAliasId": lambda p: p.short_id(10, upper=True),
        "Arn": lambda p: p.arn("lex", f"bot-alias/{p.prop('BotId')}/{p.short_id(10, upper=True)}"),
    },
}


# Custom resources return what their handler puts in `Data` (CloudFormation, "Custom resources":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html);
# these are read from our handlers, as CloudFormation would see them right after a Create.
CUSTOM_RESOURCE_DATA: dict[str, dict[str, Attribute]] = {
    # lambdas/guardrail_window/handler.py: Data {Current, Previous}, each `GuardrailArn:Version`;
    # after a Create both name the version the properties name.
    "Custom::GuardrailVersionWindow": {
        "Current": lambda p: f"{p.prop('GuardrailArn')}:{p.prop('Version')}",
        "Previous": lambda p: f"{p.prop('GuardrailArn')}:{p.prop('Version')}",
    },
    # lambdas/model_deployer/endpoint_settings.py: Data {EndpointConfigName}; while the endpoint
    # does not exist (a Create), the template's own configuration (logic.py config_for_settings).
    "Custom::ApprovedModelEndpointConfig": {
        "EndpointConfigName": lambda p: p.prop("TemplateConfigName"),
    },
}
RETURN_VALUES.update(CUSTOM_RESOURCE_DATA)


class Resolver:
    """Resolves values of the templates of one deployment (one profile: every stack, one account
    and Region). `templates` maps CloudFormation stack names to templates."""

    def __init__(
        self,
        templates: Mapping[str, dict],
        *,
        account: str = "123456789012",
        region: str = "us-east-1",
        partition: str = "aws",
        url_suffix: str = "amazonaws.com",
    ) -> None:
        self.templates = templates
        self.account = account
        self.region = region
        self.partition = partition
        self.url_suffix = url_suffix
        self._exports: dict[str, tuple[str, Any]] | None = None

    # -- resources ---------------------------------------------------------------------------
    def resource(self, stack: str, logical_id: str) -> Physical:
        resources = self.templates[stack]["Resources"]
        if logical_id not in resources:
            raise UnresolvableValue(f"{stack}: no resource {logical_id!r}")
        resource = resources[logical_id]
        return Physical(stack, logical_id, resource["Type"], resource.get("Properties", {}), self)

    def ref(self, stack: str, logical_id: str) -> Any:
        return self.get_att(stack, logical_id, "Ref")

    def get_att(self, stack: str, logical_id: str, attribute: str) -> Any:
        physical = self.resource(stack, logical_id)
        table = RETURN_VALUES.get(physical.type)
        if table is None or attribute not in table:
            raise UnknownReturnValue(
                f"{stack}/{logical_id}: no documented return value for {physical.type} "
                f"{'Ref' if attribute == 'Ref' else 'GetAtt ' + attribute} in tests/access/resolver.py"
            )
        return table[attribute](physical)

    def find_by_value(self, stack: str, resource_type: str, value: Any) -> Physical:
        """The resource of `resource_type` (any stack) whose Ref or ARN-like attribute is `value`."""
        for name, template in self.templates.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] != resource_type:
                    continue
                for attribute, fn in RETURN_VALUES[resource_type].items():
                    if attribute.endswith("Arn") or attribute in ("Ref", "GuardrailId"):
                        physical = self.resource(name, logical_id)
                        if fn(physical) == value:
                            return physical
        raise UnresolvableValue(f"{stack}: no {resource_type} is {value!r}")

    # -- values ------------------------------------------------------------------------------
    def resolve(self, stack: str, value: Any) -> Any:
        if isinstance(value, str):
            return DYNAMIC_REFERENCE.sub(lambda m: self._dynamic_reference(m[1], m[2]), value)
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._intrinsic(stack, key, argument)
        return {key: self.resolve(stack, item) for key, item in value.items()}

    def _dynamic_reference(self, service: str, reference: str) -> str:
        return f"resolved-{service}-{_digest(reference)[:12]}"

    def _intrinsic(self, stack: str, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self._ref(stack, argument)
        if key == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(stack, logical_id, self.resolve(stack, attribute))
        if key == "Fn::Join":
            separator, items = argument
            return separator.join(str(item) for item in self.resolve(stack, items))
        if key == "Fn::Select":
            index, items = self.resolve(stack, argument)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = argument
            return str(self.resolve(stack, text)).split(separator)
        if key == "Fn::Sub":
            return self._sub(stack, argument)
        if key == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(stack, argument)).encode()).decode()
        if key == "Fn::ImportValue":
            return self._import(self.resolve(stack, argument))
        if key == "Fn::GetStackOutput":
            return self._stack_output(stack, self.resolve(stack, argument))
        raise UnresolvableValue(f"{stack}: intrinsic function {key} is not supported by the access harness")

    def _ref(self, stack: str, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{stack}/"
            + str(uuid.UUID(_digest(stack)[:32])),
        }
        if name in pseudo:
            return pseudo[name]
        if name.startswith("AWS::"):
            raise UnresolvableValue(f"{stack}: pseudo parameter {name} is not supported")
        parameters = self.templates[stack].get("Parameters", {})
        if name in parameters:
            parameter = parameters[name]
            if "Default" in parameter and str(parameter.get("Type", "")).startswith(
                "AWS::SSM::Parameter::Value"
            ):
                return self._dynamic_reference("ssm", str(parameter["Default"]))
            if "Default" in parameter:
                return parameter["Default"]
            raise UnresolvableValue(f"{stack}: parameter {name} has no default")
        return self.ref(stack, name)

    def _sub(self, stack: str, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {key: self.resolve(stack, value) for key, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(stack, logical_id, attribute))
            return str(self._ref(stack, name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _import(self, export_name: str) -> Any:
        if self._exports is None:
            self._exports = {}
            for name, template in self.templates.items():
                for output in template.get("Outputs", {}).values():
                    if "Export" in output:
                        exported = self.resolve(name, output["Export"]["Name"])
                        self._exports[exported] = (name, output["Value"])
        if export_name not in self._exports:
            raise UnresolvableValue(f"no stack exports {export_name!r}")
        stack, value = self._exports[export_name]
        return self.resolve(stack, value)

    def _stack_output(self, stack: str, argument: Mapping[str, Any]) -> Any:
        name, output = argument["StackName"], argument["OutputName"]
        region = argument.get("Region", self.region)
        if region != self.region:
            raise UnresolvableValue(
                f"{stack}: output {output} of {name} is read from another Region ({region})"
            )
        if name not in self.templates:
            raise UnresolvableValue(
                f"{stack}: Fn::GetStackOutput names stack {name!r}, not in this deployment"
            )
        outputs = self.templates[name].get("Outputs", {})
        if output not in outputs:
            raise UnresolvableValue(f"{stack}: stack {name} has no output {output!r}")
        return self.resolve(name, outputs[output]["Value"])
