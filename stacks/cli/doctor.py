"""`genai-stack doctor PROFILE`: what the target account and region lack for the profile.

What a stack cannot create but a deploy or the first request needs: the CDK
bootstrap, account-level settings (API Gateway's CloudWatch role, Bedrock invocation logging), model
access and Marketplace subscriptions, Model Monitor availability, AMI parameters, service quotas and
the cost-allocation tag. Every call is a read (Get*/List*), made with the default credential chain in
the profile's region. Each check is a function of the clients it needs (injected, so tests stub
them) returning rows; `run_checks` picks the checks the profile needs; the command prints the table.
docs/operations.md, "Before the first deploy", explains each check with its AWS page.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from botocore.exceptions import BotoCoreError, ClientError

from genai_stack.catalog import accelerator_instances, bedrock_catalog, cost_region
from genai_stack.cli.app import EXIT_ERROR, app, errors, fail, load_or_fail, report_checks
from genai_stack.config import Profile

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Row:
    """One finding: `detail` says what was found and, unless ok, what to do about it."""

    check: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Requirements:
    """What the synthesized templates of the profile need from the account (see `requirements_of`)."""

    bootstrap_version: int
    bootstrap_parameter: str
    ami_parameters: tuple[str, ...] = ()
    uses_model_monitor: bool = False
    # Services of the interface endpoints the templates create (e.g. "bedrock-runtime").
    interface_endpoints: tuple[str, ...] = ()


@dataclass
class Clients:
    """boto3 clients of the caller's account in the profile's region (stubbed in tests)."""

    sts: Any
    ssm: Any
    apigateway: Any
    bedrock: Any
    sagemaker: Any
    service_quotas: Any
    ce: Any
    iam: Any
    ec2: Any = None
    acm_pca: Any = None
    # SSM in the region of the budgets' stack, where it is not the profile's (stacks/cost_stack.py).
    cost_ssm: Any = None
    cloudformation: Any = None
    rds: Any = None
    kendra: Any = None


def make_clients(region: str) -> Clients:
    """The default credential chain (environment, profile, SSO, instance role), in the profile's region."""
    import boto3

    session = boto3.Session(region_name=region)
    budgets = cost_region(region)
    return Clients(
        sts=session.client("sts"),
        ssm=session.client("ssm"),
        apigateway=session.client("apigateway"),
        bedrock=session.client("bedrock"),
        sagemaker=session.client("sagemaker"),
        service_quotas=session.client("service-quotas"),
        ce=session.client("ce"),  # Cost Explorer has one endpoint (us-east-1); botocore resolves it
        iam=session.client("iam"),
        ec2=session.client("ec2"),
        acm_pca=session.client("acm-pca"),
        cost_ssm=boto3.Session(region_name=budgets).client("ssm") if budgets != region else None,
        cloudformation=session.client("cloudformation"),
        rds=session.client("rds"),
        kendra=session.client("kendra"),
    )


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


# --------------------------------------------------------------------------------------------------
# What the synthesized templates require

# Resource types of SageMaker Model Monitor (a profile that synthesizes any of them uses it).
MODEL_MONITOR_TYPES = frozenset(
    {
        "AWS::SageMaker::MonitoringSchedule",
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition",
        "AWS::SageMaker::ModelBiasJobDefinition",
        "AWS::SageMaker::ModelExplainabilityJobDefinition",
    }
)
_SSM_PARAMETER_TYPE = "AWS::SSM::Parameter::Value<"


def requirements_from(manifest: Mapping[str, Any], templates: Iterable[Mapping[str, Any]]) -> Requirements:
    """The bootstrap version is what the CDK CLI checks before it deploys: the highest
    `requiresBootstrapStackVersion` of the cloud assembly's stack and asset-manifest artifacts, read
    from the SSM parameter they name (default synthesizer: /cdk-bootstrap/hnb659fds/version; its file
    assets need version 6, the templates' CheckBootstrapVersion rule says the same). The AMI parameters
    are the SSM parameters the templates resolve at deploy time (`AWS::SSM::Parameter::Value<...>`)."""
    versions, parameters = [], set()
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties") or {}
        if "requiresBootstrapStackVersion" in properties:
            versions.append(int(properties["requiresBootstrapStackVersion"]))
            parameters.add(
                properties.get("bootstrapStackVersionSsmParameter", "/cdk-bootstrap/hnb659fds/version")
            )
    bootstrap_parameter = sorted(parameters)[0] if parameters else "/cdk-bootstrap/hnb659fds/version"
    ami, monitor, endpoints = set(), False, set()
    for template in templates:
        for resource in (template.get("Resources") or {}).values():
            props = resource.get("Properties") or {}
            if (
                resource.get("Type") == "AWS::EC2::VPCEndpoint"
                and props.get("VpcEndpointType") == "Interface"
            ):
                endpoints.add(_endpoint_service(props["ServiceName"]))
        for parameter in (template.get("Parameters") or {}).values():
            default = parameter.get("Default")
            if str(parameter.get("Type", "")).startswith(_SSM_PARAMETER_TYPE) and default not in parameters:
                ami.add(default)
        monitor |= any(
            r.get("Type") in MODEL_MONITOR_TYPES for r in (template.get("Resources") or {}).values()
        )
    return Requirements(
        bootstrap_version=max(versions, default=6),
        bootstrap_parameter=bootstrap_parameter,
        ami_parameters=tuple(sorted(ami)),
        uses_model_monitor=monitor,
        interface_endpoints=tuple(sorted(endpoints)),
    )


def _endpoint_service(name: Any) -> str:
    """com.amazonaws.<region>.<service> (a string, or a Join on AWS::Region) -> <service>."""
    if isinstance(name, dict):
        name = "".join(part if isinstance(part, str) else "<region>" for part in name["Fn::Join"][1])
    return name.split(".", 3)[3]


def requirements_of(profile_name: str) -> Requirements:
    """Synthesize the profile offline (as `cdk synth` would) and read what it needs."""
    from genai_stack.cli.synth import synthesize

    with tempfile.TemporaryDirectory() as outdir:
        (result,) = synthesize(profile_name, Path(outdir))
        manifest = json.loads((Path(outdir) / "manifest.json").read_text())
    return requirements_from(manifest, result.templates.values())


# --------------------------------------------------------------------------------------------------
# The checks


def check_credentials(identity: Mapping[str, Any], *, account: str | None, region: str) -> list[Row]:
    """`identity`: sts:GetCallerIdentity's answer (which needs no permission)."""
    caller = identity["Account"]
    if account and caller != account:
        return [
            Row(
                "credentials",
                "fail",
                f"the credentials are for account {caller}, the profile deploys to {account}: "
                "use credentials of the profile's account",
            )
        ]
    return [Row("credentials", "ok", f"account {caller} ({identity.get('Arn', '')}), region {region}")]


def check_bootstrap(ssm: Any, *, parameter: str, required: int, account: str, region: str) -> list[Row]:
    """CDK bootstrap: the version the synthesized assets need (CDK guide, "Bootstrapping";
    https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping.html)."""
    fix = f"run `npx cdk bootstrap aws://{account}/{region}` with the project's CDK CLI"
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        return [
            Row("CDK bootstrap", "fail", f"{parameter} not found: the environment is not bootstrapped; {fix}")
        ]
    if not value.isdigit() or int(value) < required:
        return [Row("CDK bootstrap", "fail", f"version {value}, the assets need {required} or later; {fix}")]
    return [Row("CDK bootstrap", "ok", f"version {value} (needs {required}; {parameter})")]


def check_api_gateway_role(
    apigateway: Any, *, setting: Literal["create", "existing"], stack_name: str
) -> list[Row]:
    """API Gateway's CloudWatch Logs role: access logging fails without it (API Gateway guide,
    "Permissions for CloudWatch logging"); one per account and region (AWS::ApiGateway::Account)."""
    role_arn = apigateway.get_account().get("cloudwatchRoleArn")
    name = "API Gateway CloudWatch role"
    if setting == "existing":
        if not role_arn:
            return [
                Row(
                    name,
                    "fail",
                    "gateway.api_gateway_account_role is 'existing' but the account has no CloudWatch Logs "
                    "role: the stage's access logging would fail. Deploy the profile that says 'create' "
                    "first, or say 'create' in this one",
                )
            ]
        return [Row(name, "ok", f"set: {role_arn}")]
    if not role_arn:
        return [
            Row(
                name, "ok", "none set yet: this profile creates it (gateway.api_gateway_account_role: create)"
            )
        ]
    if role_arn.rsplit("/", 1)[-1].startswith(f"{stack_name}-"):
        return [Row(name, "ok", f"set by this profile: {role_arn}")]
    return [
        Row(
            name,
            "warn",
            f"already set to {role_arn}; deploying replaces it with this profile's role for every API of "
            "the account and region. Say 'existing' in gateway.api_gateway_account_role to keep it",
        )
    ]


def base_models(profile: Profile) -> list[str]:
    """The foundation models behind the profile's models and inference profiles, and its evaluation
    judge (which need not be listed), in order."""
    if profile.bedrock is None:
        return []
    catalog = bedrock_catalog()
    judge = [profile.evaluation.judge] if profile.evaluation is not None else []
    ids = [
        catalog.model_of(m).model_id
        for m in [*profile.bedrock.models, *profile.bedrock.inference_profiles, *judge]
    ]
    return list(dict.fromkeys(ids))


def _third_party(model_id: str) -> bool:
    return not model_id.startswith("amazon.")


SUBSCRIBE_FIX = (
    "subscribe before the first request: the caller of the first invocation needs aws-marketplace:Subscribe, "
    "Unsubscribe and ViewSubscriptions (the gateway's role has none), so invoke the model once from the "
    "console playground as an administrator, or run `aws bedrock list-foundation-model-agreement-offers "
    "--model-id {model}` and `aws bedrock create-foundation-model-agreement --model-id {model} "
    "--offer-token ...`"
)


def _model_availability(bedrock: Any, model: str) -> Row:
    check = f"Bedrock {model}"
    found = bedrock.get_foundation_model_availability(modelId=model)
    if found.get("regionAvailability") != "AVAILABLE":
        return Row(
            check,
            "fail",
            f"not offered in {bedrock.meta.region_name}: use an inference profile or another model",
        )
    if found.get("authorizationStatus") != "AUTHORIZED":
        return Row(
            check, "fail", "not authorized for these credentials: an IAM policy or SCP denies this model"
        )
    if _third_party(model):
        agreement = found.get("agreementAvailability") or {}
        status = agreement.get("status")
        if status == "PENDING":
            return Row(
                check, "warn", "Marketplace subscription in progress (up to 15 minutes): run doctor again"
            )
        if status == "ERROR":
            return Row(check, "fail", f"Marketplace subscription failed: {agreement.get('errorMessage', '')}")
        if status != "AVAILABLE" or found.get("entitlementAvailability") != "AVAILABLE":
            return Row(
                check, "fail", "no AWS Marketplace subscription yet: " + SUBSCRIBE_FIX.format(model=model)
            )
        return Row(check, "ok", "offered, authorized, Marketplace subscription active")
    return Row(check, "ok", "offered and authorized")


def check_model_access(bedrock: Any, *, models: Sequence[str]) -> list[Row]:
    """Model access per model and, for third-party models, the AWS Marketplace subscription and the
    Anthropic first-use form (Bedrock user guide, "Access Amazon Bedrock foundation models":
    https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html)."""
    operations = bedrock.meta.service_model.operation_names
    by_model: dict[str, Row] = {}
    for model in models:
        if "GetFoundationModelAvailability" in operations:
            by_model[model] = _model_availability(bedrock, model)
            continue
        try:  # an older botocore: only whether the model is offered here
            bedrock.get_foundation_model(modelIdentifier=model)
            by_model[model] = Row(
                f"Bedrock {model}", "warn", "offered; subscription not checkable with this boto3"
            )
        except ClientError as error:
            by_model[model] = Row(
                f"Bedrock {model}", "fail", f"{_code(error)}: not offered or not allowed here"
            )
    rows = list(by_model.values())
    anthropic = [m for m in models if m.startswith("anthropic.")]
    if anthropic and "GetUseCaseForModelAccess" in operations:
        rows.append(_anthropic_form(bedrock, entitled=all(by_model[m].status == "ok" for m in anthropic)))
    return rows


def _anthropic_form(bedrock: Any, *, entitled: bool) -> Row:
    """Anthropic asks first-time customers for use-case details once per account, or once in the
    organization's management account (model-access page); PutUseCaseForModelAccess submits them."""
    check = "Anthropic first-use form"
    try:
        submitted = bool(bedrock.get_use_case_for_model_access().get("formData"))
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        submitted = False
    if submitted:
        return Row(check, "ok", "submitted in this account")
    if entitled:
        return Row(
            check,
            "ok",
            "not in this account, but the Anthropic models are already subscribed (organization form)",
        )
    return Row(
        check,
        "fail",
        "not submitted: Anthropic models refuse the first call until it is. Submit it in the Bedrock console "
        "(model catalog, an Anthropic model) or with `aws bedrock put-use-case-for-model-access`, unless "
        "your organization's management account has submitted it for the organization",
    )


def check_model_monitor(sagemaker: Any) -> list[Row]:
    """SageMaker Model Monitor is no longer open to new customers (SageMaker guide, "Data capture":
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html). No API says
    whether an account counts as existing; monitoring schedules already in the region show it does."""
    schedules = sagemaker.list_monitoring_schedules(MaxResults=1).get("MonitoringScheduleSummaries", [])
    if schedules:
        return [
            Row(
                "Model Monitor",
                "ok",
                "this account already runs monitoring schedules here (an existing customer)",
            )
        ]
    return [
        Row(
            "Model Monitor",
            "warn",
            "cannot be checked: Model Monitor is closed to new customers and no API tells whether "
            "this account may still create schedules. Ask AWS (your account team or support) before "
            "deploying, or turn the profile's Model Monitor schedules off",
        )
    ]


def check_ami_parameters(ssm: Any, *, names: Sequence[str]) -> list[Row]:
    """The SSM parameters the host templates resolve at deploy time (a missing one fails the stack)."""
    rows = []
    for start in range(0, len(names), 10):  # GetParameters takes at most 10 names
        batch = list(names[start : start + 10])
        found = ssm.get_parameters(Names=batch)
        values = {p["Name"]: p["Value"] for p in found.get("Parameters", [])}
        for name in batch:
            if name in values:
                rows.append(Row(f"AMI parameter {name}", "ok", values[name]))
            else:
                rows.append(
                    Row(
                        f"AMI parameter {name}",
                        "fail",
                        "not found in this region: create it with the AMI id to pin (`aws ssm "
                        f"put-parameter --name {name} --type String --data-type aws:ec2:image "
                        "--value ami-...`)",
                    )
                )
    return rows


AUTO_SCALING_SERVICE_LINKED_ROLE = "AWSServiceRoleForAutoScaling"


def check_auto_scaling_role(iam: Any) -> list[Row]:
    """The platform key's policy names EC2 Auto Scaling's service-linked role (it launches the hosts with
    KMS-encrypted volumes: EC2 Auto Scaling user guide, "Required AWS KMS key policy for use with encrypted
    volumes"). KMS refuses a key policy whose principal does not exist, and the role is created only by the
    first Auto Scaling group of the account, so in a fresh account the foundation stack would fail."""
    check = f"IAM role {AUTO_SCALING_SERVICE_LINKED_ROLE}"
    try:
        iam.get_role(RoleName=AUTO_SCALING_SERVICE_LINKED_ROLE)
    except ClientError as error:
        if _code(error) != "NoSuchEntity":
            raise
        return [
            Row(
                check,
                "fail",
                "missing: the platform key's policy names it, and KMS refuses a policy whose principal does "
                "not exist. Create it once per account: `aws iam create-service-linked-role "
                "--aws-service-name autoscaling.amazonaws.com`",
            )
        ]
    return [Row(check, "ok", "exists")]


# The vector store cluster's logical ID in `<profile>-foundation` (pinned: test_stateful.py).
AURORA_CLUSTER_LOGICAL_ID = "AuroraVectorStoreCluster518200D0"


def check_vector_store_admin(
    cloudformation: Any, rds: Any, *, stack_name: str, admin_username: str
) -> list[Row]:
    """The deployed cluster's master user is the profile's `bedrock.aurora.admin_username`. A cluster's
    master user name cannot be changed (ModifyDBCluster has no parameter for it), and `cdk diff` marks
    a changed MasterUsername as one that may replace the cluster: a cluster genai-stack 0.1 created
    has the admin `postgres`, which its profile must keep (docs/profiles/customer-service.md,
    "Upgrading from 0.1")."""
    check = "Aurora vector store admin"
    try:
        resource = cloudformation.describe_stack_resource(
            StackName=stack_name, LogicalResourceId=AURORA_CLUSTER_LOGICAL_ID
        )
    except ClientError as error:
        if _code(error) != "ValidationError":  # no such stack, or no cluster in it yet
            raise
        return [Row(check, "ok", f"no cluster deployed yet: it is created with the admin {admin_username}")]
    identifier = resource["StackResourceDetail"]["PhysicalResourceId"]
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    current = cluster["MasterUsername"]
    if current == admin_username:
        return [Row(check, "ok", f"cluster {identifier}: admin {current}, as the profile says")]
    keep = f"bedrock.aurora.admin_username: {current}" + (
        " with legacy_admin_reason" if current == "postgres" else ""
    )
    return [
        Row(
            check,
            "fail",
            f"cluster {identifier} has the admin {current!r}, the profile asks for {admin_username!r}: a "
            "cluster's master user name cannot change, and the deploy could replace the cluster (its vectors "
            f"stay in the retained old one). Keep the name: {keep} (docs/profiles/customer-service.md)",
        )
    ]


ACM_RENEWAL_ACTIONS = frozenset({"IssueCertificate", "GetCertificate", "ListPermissions"})


def check_private_ca(acm_pca: Any, *, arn: str, account: str, key_algorithm: str = "RSA_2048") -> list[Row]:
    """The AWS Private CA the hosts' certificate comes from (hosting.tls.private_ca_arn): ACM can issue
    a private certificate only from an ACTIVE CA (AWS Private CA user guide, "CA status"), and renews it
    only when a CA of the same account grants acm.amazonaws.com IssueCertificate, GetCertificate and
    ListPermissions (AWS Private CA API reference, "Permission"); a CA of another account needs a
    resource-based policy, which only its owner can read. The certificate's key (`key_algorithm`,
    hosting.tls.private_key_algorithm) must be of the CA key's family, RSA or EC (ACM API reference,
    RequestCertificate, KeyAlgorithm)."""
    check = "Private CA for the hosts' certificate"
    authority = acm_pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    status = authority.get("Status")
    if status != "ACTIVE":
        return [Row(check, "fail", f"{arn} is {status}: ACM issues certificates from an ACTIVE CA only")]
    ca_key = authority.get("CertificateAuthorityConfiguration", {}).get("KeyAlgorithm", "")
    if ca_key.split("_")[0] != key_algorithm.split("_")[0]:
        return [
            Row(
                check,
                "fail",
                f"{arn} has a {ca_key} key; the hosts' certificate is requested with {key_algorithm}, and "
                "ACM issues a private certificate only with a key of the CA's family: set "
                "hosting.tls.private_key_algorithm to "
                + ("RSA_2048" if ca_key.startswith("RSA") else "EC_prime256v1 or EC_secp384r1"),
            )
        ]
    if arn.split(":")[4] != account:
        return [
            Row(
                check,
                "warn",
                f"{arn} is ACTIVE in another account: its owner must share it and allow this account to "
                "issue and renew certificates with a resource-based policy",
            )
        ]
    granted: set[str] = set()
    for permission in acm_pca.list_permissions(CertificateAuthorityArn=arn).get("Permissions", []):
        if permission.get("Principal") == "acm.amazonaws.com":
            granted |= set(permission.get("Actions", []))
    if missing := sorted(ACM_RENEWAL_ACTIONS - granted):
        return [
            Row(
                check,
                "warn",
                f"{arn} is ACTIVE, but ACM lacks {', '.join(missing)} on it, so the certificate is issued "
                "but never renewed: `aws acm-pca create-permission --principal acm.amazonaws.com "
                f"--certificate-authority-arn {arn} "
                "--actions IssueCertificate GetCertificate ListPermissions`",
            )
        ]
    return [Row(check, "ok", f"{arn} is ACTIVE and lets ACM renew")]


def pinned_zones(profile: Profile) -> list[str] | None:
    """The zones of the profile's new VPCs when every one names them; None when one does not."""
    networks = [
        network
        for network in (
            profile.hosting.network if profile.hosting else None,
            profile.gateway.network if profile.gateway else None,
        )
        if network is not None and network.existing_vpc_id is None
    ]
    if any(not network.availability_zones for network in networks):
        return None
    return sorted({zone for network in networks for zone in network.availability_zones})


def check_endpoint_zones(
    ec2: Any, *, services: Sequence[str], region: str, pinned: Sequence[str] | None
) -> list[Row]:
    """An interface endpoint is created in each of its VPC's subnets and fails in a zone its service
    does not offer ("The VPC endpoint service ... does not support the availability zone of the
    subnet"); DescribeVpcEndpointServices lists a service's zones by name for this account (EC2 API
    reference). `pinned`: the zones the profile names (network.availability_zones), or None when a
    VPC takes the first zones of Fn::GetAZs, whose order CloudFormation does not guarantee."""
    check = "Interface endpoint zones"
    names = [f"com.amazonaws.{region}.{service}" for service in services]
    details = ec2.describe_vpc_endpoint_services(ServiceNames=names)["ServiceDetails"]
    offered = {d["ServiceName"]: set(d.get("AvailabilityZones", [])) for d in details}
    if absent := [name for name in names if name not in offered]:
        return [Row(check, "fail", f"not offered in {region}: {', '.join(absent)}")]
    everywhere = set.intersection(*offered.values())
    if pinned is not None:
        gaps = [
            f"{name.rsplit('.', 1)[-1]} is not offered in {zone}"
            for zone in pinned
            for name in names
            if zone not in offered[name]
        ]
        if gaps:
            return [
                Row(
                    check,
                    "fail",
                    "; ".join(gaps) + f": pin network.availability_zones to zones of {sorted(everywhere)}",
                )
            ]
        return [Row(check, "ok", f"{', '.join(pinned)} offer {', '.join(services)}")]
    zones = {
        zone["ZoneName"]
        for zone in ec2.describe_availability_zones(
            Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
        )["AvailabilityZones"]
        if zone.get("State") == "available"
    }
    if lacking := sorted(zones - everywhere):
        return [
            Row(
                check,
                "warn",
                f"{', '.join(lacking)} lack one of {', '.join(services)}, and a VPC without "
                "network.availability_zones takes the region's first zones in an order CloudFormation "
                f"does not guarantee: pin network.availability_zones to two or more of {sorted(everywhere)}",
            )
        ]
    return [Row(check, "ok", f"every zone of {region} offers {', '.join(services)}")]


# EC2 On-Demand vCPU quotas by instance family (EC2 user guide, "Amazon EC2 instance quotas":
# https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html; the codes are the
# Service Quotas codes of those quotas, and GetServiceQuota returns the name, shown in the row).
EC2_ON_DEMAND_QUOTAS: dict[str, tuple[str, str]] = {
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "inf": ("L-1945791B", "Running On-Demand Inf instances"),
}


def ec2_vcpu_demand(profile: Profile) -> dict[str, int]:
    """vCPUs of the hosts at max_instances, summed per On-Demand quota code."""
    demand: dict[str, int] = defaultdict(int)
    for host in profile.hosting.hosts if profile.hosting else ():
        family = re.match(r"[a-z]+", host.instance_type).group(0)
        code, _ = EC2_ON_DEMAND_QUOTAS[family]
        demand[code] += host.max_instances * accelerator_instances()[host.instance_type].vcpus
    return dict(demand)


def _quota_value(service_quotas: Any, service: str, code: str) -> tuple[float, str]:
    try:
        quota = service_quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
    except ClientError as error:
        if _code(error) != "NoSuchResourceException":
            raise
        quota = service_quotas.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]
    return float(quota["Value"]), quota.get("QuotaName", code)


def check_ec2_quotas(service_quotas: Any, *, demand: Mapping[str, int]) -> list[Row]:
    rows = []
    for code, vcpus in sorted(demand.items()):
        value, name = _quota_value(service_quotas, "ec2", code)
        check = f"EC2 quota {name}"
        if value < vcpus:
            rows.append(
                Row(
                    check,
                    "fail",
                    f"{value:g} vCPUs; the hosts need up to {vcpus} at max_instances. Request an "
                    "increase: `aws service-quotas request-service-quota-increase --service-code ec2 "
                    f"--quota-code {code} --desired-value {vcpus}` (instances already running also count)",
                )
            )
        else:
            rows.append(
                Row(
                    check,
                    "ok",
                    f"{value:g} vCPUs, the hosts need up to {vcpus} (running instances also count)",
                )
            )
    return rows


def sagemaker_instance_demand(profile: Profile) -> dict[str, int]:
    """Instances per SageMaker quota name ("<type> for endpoint usage", "... for training job usage",
    "... for spot training job usage"; SageMaker endpoints and quotas, AWS General Reference:
    https://docs.aws.amazon.com/general/latest/gr/sagemaker.html)."""
    demand: dict[str, int] = defaultdict(int)
    for endpoint in profile.inference.endpoints if profile.inference else ():
        demand[f"{endpoint.instance_type} for endpoint usage"] += endpoint.max_instances
    for pipeline in profile.training.pipelines if profile.training else ():
        kind = "spot training job usage" if pipeline.spot else "training job usage"
        demand[f"{pipeline.instance_type} for {kind}"] += pipeline.instance_count  # schedules may overlap
        if pipeline.image_evaluation is not None:  # a second, on-demand job after the training job
            demand[f"{pipeline.image_evaluation.instance_type} for training job usage"] += 1
    return dict(demand)


def _sagemaker_quotas(service_quotas: Any) -> dict[str, float]:
    """Quota name -> value: the applied values, then AWS's defaults for quotas never changed (Service
    Quotas lists only the applied values it has)."""
    values: dict[str, float] = {}
    for operation in ("list_aws_default_service_quotas", "list_service_quotas"):  # applied values win
        for page in service_quotas.get_paginator(operation).paginate(ServiceCode="sagemaker"):
            values.update({q["QuotaName"]: float(q["Value"]) for q in page.get("Quotas", [])})
    return values


def check_sagemaker_quotas(service_quotas: Any, *, demand: Mapping[str, int]) -> list[Row]:
    values = _sagemaker_quotas(service_quotas)
    rows = []
    for name, instances in sorted(demand.items()):
        check = f"SageMaker quota {name}"
        if name not in values:
            rows.append(
                Row(check, "warn", "no such quota in this region: is the instance type offered here?")
            )
        elif values[name] < instances:
            rows.append(
                Row(
                    check,
                    "fail",
                    f"{values[name]:g} instances; the profile asks up to {instances}. Request an "
                    "increase in the Service Quotas console (Amazon SageMaker)",
                )
            )
        else:
            rows.append(Row(check, "ok", f"{values[name]:g} instances, the profile asks up to {instances}"))
    return rows


def check_invocation_logging(bedrock: Any, *, enabled: bool, take_over: bool, stack_name: str) -> list[Row]:
    """Bedrock model invocation logging is one setting per account and region; the profile's custom
    resource refuses to overwrite someone else's unless take_over is set (docs/operations.md)."""
    config = bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or {}
    log_group = (config.get("cloudWatchConfig") or {}).get("logGroupName")
    bucket = (config.get("s3Config") or {}).get("bucketName")
    check = "Bedrock invocation logging"
    if not (log_group or bucket):
        state = "not configured: this profile configures it" if enabled else "not configured"
        return [Row(check, "ok", state)]
    where = " and ".join(
        x for x in (f"log group {log_group}" if log_group else "", f"bucket {bucket}" if bucket else "") if x
    )
    if not enabled:
        return [Row(check, "ok", f"owned elsewhere ({where}); this profile leaves it alone")]
    if log_group and log_group.startswith(f"{stack_name}-"):
        return [Row(check, "ok", f"set by this profile ({where})")]
    if take_over:
        return [Row(check, "warn", f"set by someone else ({where}); take_over: true replaces it")]
    return [
        Row(
            check,
            "fail",
            f"set by someone else ({where}): the deploy fails rather than overwrite it. Set "
            "bedrock.invocation_logging.take_over: true to replace it, or enabled: false to leave it",
        )
    ]


def check_report_tags(ce: Any, *, keys: Sequence[str]) -> list[Row]:
    """`genai-stack cost PROFILE --by KEY` splits spend by the tags of the profile's campaign profiles
    (bedrock.application_inference_profiles[].tags); Cost Explorer groups only by active
    cost-allocation tags ("Activating user-defined cost allocation tags", Billing guide). A warning:
    the budgets do not depend on them."""
    listed = ce.list_cost_allocation_tags(TagKeys=list(keys)).get("CostAllocationTags", [])
    status = {t["TagKey"]: t.get("Status") for t in listed}
    rows = []
    for key in keys:
        check = f"report tag {key}"
        if status.get(key) == "Active":
            rows.append(Row(check, "ok", "active"))
            continue
        state = "inactive" if key in status else "not known to Billing yet (up to 24 hours after first use)"
        rows.append(
            Row(
                check,
                "warn",
                f"{state}: `genai-stack cost --by {key}` puts the spend in its no-tag row until it is "
                f"activated (`aws ce update-cost-allocation-tags-status --cost-allocation-tags-status "
                f"TagKey={key},Status=Active`, in the management account)",
            )
        )
    return rows


def check_kendra_index(kendra: Any, *, name: str, index_id: str) -> list[Row]:
    """A knowledge base on a Kendra index needs a GenAI Enterprise Edition index (Bedrock user guide,
    "Build a knowledge base with an Amazon Kendra GenAI index"), and CreateKnowledgeBase fails on one
    that is not ACTIVE (DescribeIndex: Edition, Status)."""
    check = f"Kendra index of {name}"
    try:
        index = kendra.describe_index(Id=index_id)
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return [Row(check, "fail", f"{index_id} is not an index of this account and region")]
        raise
    edition, status = index.get("Edition"), index.get("Status")
    if edition != "GEN_AI_ENTERPRISE_EDITION":
        return [
            Row(check, "fail", f"{index_id} is a {edition} index: a knowledge base takes a GenAI index only")
        ]
    if status != "ACTIVE":
        return [
            Row(
                check, "fail", f"{index_id} is {status}: the knowledge base can be created on an ACTIVE index"
            )
        ]
    return [Row(check, "ok", f"{index_id}: GenAI Enterprise Edition, ACTIVE (English content only)")]


def check_cost_allocation_tag(ce: Any, *, tag_key: str) -> list[Row]:
    """Budgets and anomaly monitors filter on the tag only once it is an active cost-allocation tag
    (Billing guide, "Activating user-defined cost allocation tags":
    https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/activating-tags.html)."""
    tags = ce.list_cost_allocation_tags(TagKeys=[tag_key]).get("CostAllocationTags", [])
    check = f"cost-allocation tag {tag_key}"
    if not tags:
        return [
            Row(
                check,
                "warn",
                "not known to Billing yet (keys appear up to 24 hours after a resource carries them): "
                "activate it after the first deploy, or the budget and anomaly monitor see no spend",
            )
        ]
    if tags[0].get("Status") != "Active":
        return [
            Row(
                check,
                "fail",
                "inactive: the budget and anomaly monitor see no spend. Run `aws ce "
                "update-cost-allocation-tags-status --cost-allocation-tags-status "
                f"TagKey={tag_key},Status=Active`",
            )
        ]
    return [Row(check, "ok", "active")]


# --------------------------------------------------------------------------------------------------
# Running them


def _guarded(check: str, run: Callable[[], list[Row]]) -> list[Row]:
    """A failed call is a row, not a traceback: the caller lacks a permission or the call is refused."""
    try:
        return run()
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        return [Row(check, "fail", f"could not check: {_code(error)} {message}".strip())]
    except BotoCoreError as error:
        return [Row(check, "fail", f"could not check: {error}")]


def check_private_endpoints(ec2: Any, *, ids: Sequence[str], region: str) -> list[Row]:
    """A PRIVATE API is associated with each of `ids` at deploy: each must be an execute-api interface
    endpoint of this region, or the deploy fails ("Create a private API", API Gateway guide:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-private-api-create.html)."""
    name = "Gateway private VPC endpoints"
    service = f"com.amazonaws.{region}.execute-api"
    try:
        found = ec2.describe_vpc_endpoints(VpcEndpointIds=list(ids))["VpcEndpoints"]
    except ClientError as error:
        if _code(error).startswith("InvalidVpcEndpointId"):
            return [
                Row(
                    name,
                    "fail",
                    f"{error.response['Error'].get('Message', 'not found')}: "
                    f"gateway.private_vpc_endpoint_ids must name existing {service} endpoints "
                    f"(aws ec2 describe-vpc-endpoints --filters Name=service-name,Values={service})",
                )
            ]
        raise
    rows = []
    by_id = {endpoint["VpcEndpointId"]: endpoint for endpoint in found}
    for endpoint_id in ids:
        endpoint = by_id.get(endpoint_id)
        if endpoint is None:
            rows.append(Row(name, "fail", f"{endpoint_id} not found in {region}"))
        elif endpoint.get("ServiceName") != service:
            rows.append(
                Row(
                    name,
                    "fail",
                    f"{endpoint_id} is an endpoint of {endpoint.get('ServiceName')}, not {service}",
                )
            )
        elif endpoint.get("State", "").lower() != "available":
            rows.append(Row(name, "warn", f"{endpoint_id} is {endpoint.get('State')}, not available yet"))
        else:
            rows.append(Row(name, "ok", f"{endpoint_id}: {service} in {endpoint.get('VpcId')}"))
    return rows


def bootstrap_checks(
    profile: Profile, requirements: Requirements, clients: Clients, account: str
) -> list[Row]:
    """The CDK bootstrap of every environment the profile deploys to: its region, and us-east-1 too
    when its budgets live there (a region whose CloudFormation lacks AWS::Budgets, docs/regions.md)."""
    environments = [("CDK bootstrap", clients.ssm, profile.region)]
    if (budgets := cost_region(profile.region)) != profile.region:
        environments.append(
            (f"CDK bootstrap in {budgets} (the {profile.name}-cost stack)", clients.cost_ssm, budgets)
        )
    rows = []
    for name, ssm, region in environments:
        found = _guarded(
            name,
            lambda ssm=ssm, region=region: check_bootstrap(
                ssm,
                parameter=requirements.bootstrap_parameter,
                required=requirements.bootstrap_version,
                account=account,
                region=region,
            ),
        )
        rows += [Row(name, row.status, row.detail) for row in found]
    return rows


def run_checks(profile: Profile, requirements: Requirements, clients: Clients) -> list[Row]:
    """Every check the profile needs, in deploy order. Raises when there are no usable credentials
    (sts:GetCallerIdentity needs no permission, so its failure means no credentials at all)."""
    region = profile.region
    identity = clients.sts.get_caller_identity()
    rows = check_credentials(identity, account=profile.account, region=region)
    account = profile.account or identity["Account"]
    rows += bootstrap_checks(profile, requirements, clients, account)
    if profile.gateway is not None:
        rows += _guarded(
            "API Gateway CloudWatch role",
            lambda: check_api_gateway_role(
                clients.apigateway,
                setting=profile.gateway.api_gateway_account_role,
                stack_name=f"{profile.name}-orchestration",
            ),
        )
    if profile.gateway is not None and profile.gateway.endpoint == "private":
        rows += _guarded(
            "Gateway private VPC endpoints",
            lambda: check_private_endpoints(
                clients.ec2, ids=profile.gateway.private_vpc_endpoint_ids, region=region
            ),
        )
    if models := base_models(profile):
        rows += _guarded("Bedrock model access", lambda: check_model_access(clients.bedrock, models=models))
    if profile.bedrock is not None:
        logging = profile.bedrock.invocation_logging
        rows += _guarded(
            "Bedrock invocation logging",
            lambda: check_invocation_logging(
                clients.bedrock,
                enabled=logging.enabled,
                take_over=logging.take_over,
                stack_name=f"{profile.name}-bedrock",
            ),
        )
    if profile.bedrock is not None and any(
        kb.vector_store == "aurora_pgvector" for kb in profile.bedrock.knowledge_bases
    ):
        rows += _guarded(
            "Aurora vector store admin",
            lambda: check_vector_store_admin(
                clients.cloudformation,
                clients.rds,
                stack_name=f"{profile.name}-foundation",
                admin_username=profile.bedrock.aurora.admin_username,
            ),
        )
    for kb in (k for k in profile.bedrock.knowledge_bases if k.on_kendra) if profile.bedrock else ():
        rows += _guarded(
            f"Kendra index of {kb.name}",
            lambda kb=kb: check_kendra_index(clients.kendra, name=kb.name, index_id=kb.kendra_index_id),
        )
    if requirements.uses_model_monitor:
        rows += _guarded("Model Monitor", lambda: check_model_monitor(clients.sagemaker))
    if requirements.ami_parameters:
        rows += _guarded(
            "AMI parameters", lambda: check_ami_parameters(clients.ssm, names=requirements.ami_parameters)
        )
    if profile.hosting is not None and profile.hosting.tls and (ca := profile.hosting.tls.private_ca_arn):
        rows += _guarded(
            "Private CA for the hosts' certificate",
            lambda: check_private_ca(
                clients.acm_pca,
                arn=ca,
                account=account,
                key_algorithm=profile.hosting.tls.private_key_algorithm,
            ),
        )
    if requirements.interface_endpoints:
        rows += _guarded(
            "Interface endpoint zones",
            lambda: check_endpoint_zones(
                clients.ec2,
                services=requirements.interface_endpoints,
                region=region,
                pinned=pinned_zones(profile),
            ),
        )
    if ec2 := ec2_vcpu_demand(profile):
        rows += _guarded("EC2 Auto Scaling role", lambda: check_auto_scaling_role(clients.iam))
        rows += _guarded("EC2 quotas", lambda: check_ec2_quotas(clients.service_quotas, demand=ec2))
    if sagemaker := sagemaker_instance_demand(profile):
        rows += _guarded(
            "SageMaker quotas", lambda: check_sagemaker_quotas(clients.service_quotas, demand=sagemaker)
        )
    rows += _guarded(
        "cost-allocation tag",
        lambda: check_cost_allocation_tag(clients.ce, tag_key=profile.cost_allocation.tag_key),
    )
    report = (
        sorted({key for app in profile.bedrock.application_inference_profiles for key in app.tags})
        if profile.bedrock
        else []
    )
    if report:
        rows += _guarded("report tags", lambda: check_report_tags(clients.ce, keys=report))
    return rows


@app.command()
def doctor(
    profile: Annotated[str, typer.Argument(help="A built-in profile name or a profile file.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check the target account before the first deploy: read-only calls with your AWS credentials in
    the profile's region. Exit status 1 and a table of what to fix when a deploy or the first request
    would fail; warnings alone exit 0.

    Checks (where the profile uses them): CDK bootstrap version, API Gateway's CloudWatch role, Bedrock
    model access and Marketplace subscriptions (Anthropic first-use form), invocation-logging owner,
    Model Monitor availability, AMI parameters, the hosts' private CA, the zones of the interface
    endpoints, EC2 and SageMaker instance quotas, cost-allocation tag.

    [b]Example[/]: AWS_PROFILE=prod genai-stack doctor managed-api
    """
    loaded = load_or_fail(profile)
    with errors.status(f"Synthesizing {loaded.name} (offline) to see what it needs"):
        requirements = requirements_of(profile)
    try:
        rows = run_checks(loaded, requirements, make_clients(loaded.region))
    except (BotoCoreError, ClientError) as error:
        fail(f"no usable AWS credentials for {loaded.region}: {error}", EXIT_ERROR)
    report_checks(
        rows,
        command="doctor",
        profile=loaded,
        json_output=json_output,
        verdict="clear",
        clear="Nothing blocks the deploy.",
        failed_message="Fix the failed checks before deploying.",
    )
