"""PythonFunction: a Lambda function from a package under `lambdas/` (or a code folder of the caller's),
packaged without Docker."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import jsii
from aws_cdk import (
    ArnFormat,
    AssetHashType,
    BundlingOptions,
    CfnDynamicReference,
    CfnDynamicReferenceService,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from genai_stack import LAMBDAS_DIR, compliance
from genai_stack.props import refuse_dicts

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Powertools for AWS Lambda (Python), the version the tests run against (pyproject.toml). Its public
# layer ARN is resolved at deploy time from the SSM parameter that the Powertools team publishes per
# region, architecture, Python version and release ("Install > Using SSM Parameter Store" in the
# Powertools docs): no layer version number is hard-coded here.
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_PARAMETER = f"/aws/service/powertools/python/arm64/python3.14/{POWERTOOLS_VERSION}"


@jsii.implements(ILocalBundling)
class _CopyPackage:
    """Bundles `lambdas/__init__.py` and `lambdas/<package>/` (no __pycache__), on this machine; for a
    caller's code folder, `<code_dir>/<package>/` at the asset's root."""

    def __init__(self, package: str, code_dir: Path | None = None, with_packages: Sequence[str] = ()) -> None:
        self.package = package
        self.code_dir = code_dir
        self.with_packages = tuple(with_packages)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:
        source, target = (
            (self.code_dir, Path(output_dir))
            if self.code_dir
            else (LAMBDAS_DIR, Path(output_dir) / "lambdas")
        )
        target.mkdir(parents=True, exist_ok=True)
        if not self.code_dir:
            shutil.copy2(LAMBDAS_DIR / "__init__.py", target / "__init__.py")
        for package in (self.package, *self.with_packages):
            shutil.copytree(
                source / package,
                target / package,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                dirs_exist_ok=True,
            )
            _scripts_executable(target / package)
        return True


def _scripts_executable(folder: Path) -> None:
    """Scripts (`#!` first line; the gateway's AWS_LAMBDA_EXEC_WRAPPER `bootstrap`) are executable in
    the bundle, whatever mode the installed copy has (an installer may not keep a wheel's mode bits).
    Lambda runs a wrapper script itself, so it must be executable ("Modifying the runtime environment",
    wrapper scripts: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html)."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".py":
            with path.open("rb") as file:
                if file.read(2) == b"#!":
                    path.chmod(path.stat().st_mode | 0o755)


def handler_module(package: str, code_dir: str | Path | None = None) -> str:
    """The module Lambda imports: `lambdas.<package>.handler`, or `<package>.handler` from a caller's
    code folder."""
    return f"{package}.handler" if code_dir else f"lambdas.{package}.handler"


def package_code(
    package: str, code_dir: str | Path | None = None, with_packages: Sequence[str] = ()
) -> lambda_.Code:
    """The code asset of one function package (and the packages whose modules it imports,
    `with_packages`); its hash is that of the bundled files only."""
    root = Path(code_dir).resolve() if code_dir else LAMBDAS_DIR
    if not (root / package / "handler.py").is_file():
        raise ValueError(
            f"{root / package / 'handler.py'} does not exist (PythonFunction package={package!r})"
        )
    missing = [name for name in with_packages if not (root / name / "__init__.py").is_file()]
    if missing:
        raise ValueError(f"with_packages: no package {', '.join(missing)} under {root}")
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=AssetHashType.OUTPUT,
        # The image is never pulled: local bundling always succeeds (no Docker on the build machines).
        # CDK caches a bundle by source path and bundling options, not by the local bundler: the
        # package in the environment keeps two functions' bundles apart.
        bundling=BundlingOptions(
            image=DockerImage.from_registry("local-bundling-only"),
            local=_CopyPackage(package, Path(code_dir).resolve() if code_dir else None, with_packages),
            environment={
                "GENAI_STACK_PACKAGE": ",".join((package, *with_packages)),
                **({"GENAI_STACK_CODE": str(root)} if code_dir else {}),
            },
        ),
    )


# The construct context key ProfileStacks sets to the profile's name (stacks/stage.py).
PROFILE_CONTEXT = "genai-stack:profile-name"


def profile_scoped(scope: Construct, name: str) -> str:
    """`<profile>-<name>` under a profile's stacks, `name` elsewhere (a construct used on its own).
    For names that CloudWatch keys metrics by and that every profile would otherwise share in one
    account and region: Powertools' `service` dimension, API Gateway's ApiName."""
    profile = scope.node.try_get_context(PROFILE_CONTEXT)
    return f"{profile}-{name}" if profile else name


@refuse_dicts
class PythonFunction(Construct):
    """Python 3.14 on arm64 with the Powertools layer, a KMS-encrypted log group and encrypted environment.

    The handler is `lambdas.<package>.handler.on_event` (this project's functions), or
    `<package>.handler.on_event` from `code_dir`, a folder of the caller's that holds `<package>/`.
    The role may write only to the function's own log group; add what the code calls.
    `with_packages` bundles other packages beside it whose modules the code imports.

    Example::

        from genai_stack.constructs import PythonFunction

        fn = PythonFunction(
            stack, "Summarize", package="summarize", code_dir="functions",  # functions/summarize/handler.py
            description="Summarizes a ticket", encryption_key=key, log_retention_days=30,
        )
        fn.function.add_environment("MODEL_ID", "amazon.nova-lite-v1:0")
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: str,
        description: str,
        encryption_key: kms.IKey,
        log_retention_days: int,
        code_dir: str | Path | None = None,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = 60,
        memory_size: int = 256,
        vpc: ec2.IVpc | None = None,
        subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] = (),
        with_packages: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = encrypted_log_group(
            self, "Logs", encryption_key=encryption_key, days=log_retention_days
        )
        # Its own role, allowed to write only to its own log group (instead of the managed
        # AWSLambdaBasicExecutionRole policy, which allows every log group of the account).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description[:1000],
        )
        own_streams = log_stream_arn(self.log_group)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[own_streams],
            )
        )
        # Powertools' service name: its logs say it, and its Metrics add it to every metric as the
        # dimension `service` (EMF), so an alarm on such a metric must name it too (emf_dimensions).
        # Scoped to the profile: two profiles in one account and region must not share a series.
        self.service_name = profile_scoped(self, package.replace("_", "-"))
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            CfnDynamicReference(CfnDynamicReferenceService.SSM, POWERTOOLS_PARAMETER).to_string(),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"{handler_module(package, code_dir)}.on_event",
            code=package_code(package, code_dir, with_packages),
            description=description,
            layers=[powertools],
            environment={"POWERTOOLS_SERVICE_NAME": self.service_name, **(environment or {})},
            environment_encryption=encryption_key,
            log_group=self.log_group,
            role=self.role,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_size,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=list(security_groups) or None,
        )
        if vpc is not None:
            statements = vpc_network_interfaces_statements(self)
            for statement in statements:
                self.role.add_to_policy(statement)
            compliance.acknowledge(
                self.role,
                *(
                    compliance.LAMBDA_NETWORK_INTERFACES.on(compliance.nag_resource(self, resource))
                    for statement in statements
                    for resource in statement.resources
                ),
            )
        resource = self.function.node.default_child
        compliance.skip_checkov(resource, *compliance.lambda_checkov_skips(in_vpc=vpc is not None))
        compliance.acknowledge(
            self.role, compliance.LOG_STREAM_WILDCARD.on(compliance.nag_resource(self, own_streams))
        )

    def emf_dimensions(self, **dimensions: str) -> dict[str, str]:
        """The dimensions of a metric this function publishes with Powertools Metrics: the ones the
        code adds and `service`, which Powertools adds whenever POWERTOOLS_SERVICE_NAME is set
        (Powertools for AWS Lambda (Python), Metrics: "service ... used as a dimension",
        https://docs.aws.amazon.com/powertools/python/latest/core/metrics/)."""
        return {**dimensions, "service": self.service_name}


def encrypted_log_group(
    scope: Construct, construct_id: str, *, encryption_key: kms.IKey, days: int
) -> logs.LogGroup:
    """A KMS-encrypted log group with a retention in days (the profile validates the number), retained."""
    log_group = logs.LogGroup(
        scope, construct_id, encryption_key=encryption_key, removal_policy=RemovalPolicy.RETAIN
    )
    # RetentionDays is an enum of names in Python; the profile already holds a valid number of days.
    log_group.node.default_child.retention_in_days = days
    return log_group


def log_stream_arn(log_group: logs.ILogGroup, stream: str = "*") -> str:
    """The ARN that logs:CreateLogStream and logs:PutLogEvents evaluate for a stream of `log_group`:
    `arn:<partition>:logs:<region>:<account>:log-group:<name>:log-stream:<stream>` (Service Authorization
    Reference, Amazon CloudWatch Logs, resource type log-stream).

    Built from the group's *name*: `GetAtt <AWS::Logs::LogGroup>.Arn` (`log_group.log_group_arn`) already
    ends in `:*` (CloudFormation user guide, AWS::Logs::LogGroup "Return values"), so appending
    `:log-stream:*` to it gives `...:log-group:<name>:*:log-stream:*`, which matches no stream at all.
    """
    return Stack.of(log_group).format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{log_group.log_group_name}:log-stream:{stream}",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


# The network-interface actions a function in a VPC needs on its execution role; Lambda creates and
# deletes the function's ENIs with it (Lambda developer guide, "Giving Lambda functions access to
# resources in an Amazon VPC" > "Required IAM permissions": ec2:CreateNetworkInterface,
# ec2:DescribeNetworkInterfaces, ec2:DescribeSubnets, ec2:DeleteNetworkInterface,
# ec2:AssignPrivateIpAddresses, ec2:UnassignPrivateIpAddresses — the content of the managed policy
# AWSLambdaVPCAccessExecutionRole). A role CDK does not create gets none of these from CDK: without them
# Lambda refuses to create the function ("The provided execution role does not have permissions to call
# CreateNetworkInterface on EC2").
VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
VPC_WRITE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
VPC_NETWORK_INTERFACE_ACTIONS = VPC_DESCRIBE_ACTIONS + VPC_WRITE_ACTIONS


def vpc_network_interfaces_statements(scope: Construct) -> list[iam.PolicyStatement]:
    """The ENI statements of a VPC function's role. The Describe actions accept only Resource '*'
    (configuration-vpc: "This action only works if it's allowed on all resources"); the others are
    limited to EC2 resources of this account and region, the form the same page gives for
    DeleteNetworkInterface (`arn:aws:ec2:<region>:<account>:*/*`): CreateNetworkInterface names the
    new interface, the subnet and the security groups, and their ids are not known before deploy."""
    stack = Stack.of(scope)
    return [
        iam.PolicyStatement(
            sid="DescribeVpcNetworkInterfaces", actions=list(VPC_DESCRIBE_ACTIONS), resources=["*"]
        ),
        iam.PolicyStatement(
            sid="ManageVpcNetworkInterfaces",
            actions=list(VPC_WRITE_ACTIONS),
            resources=[f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:*/*"],
        ),
    ]
