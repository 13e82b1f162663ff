"""`genai-stack doctor`: each check against stubbed AWS answers (botocore Stubber, no network), one
passing and one failing case each, and the command's exit statuses."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber
from typer.testing import CliRunner

from genai_stack.cli import app
from genai_stack.cli import doctor as doc
from genai_stack.config import load_profile

REGION = "us-east-1"
ACCOUNT = "123456789012"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
NOVA = "amazon.nova-lite-v1:0"


class Stubs:
    """Clients with fake credentials; every call must have been stubbed, in order, per client."""

    def __init__(self) -> None:
        self.stubbers: dict[str, Stubber] = {}

    def client(self, service: str):
        client = boto3.client(
            service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.stubbers[service] = Stubber(client)
        self.stubbers[service].activate()
        return client

    def __getitem__(self, service: str) -> Stubber:
        return self.stubbers[service]

    def clients(self) -> doc.Clients:
        return doc.Clients(
            **{
                attr: self.client(service)
                for attr, service in (
                    ("sts", "sts"),
                    ("ssm", "ssm"),
                    ("apigateway", "apigateway"),
                    ("bedrock", "bedrock"),
                    ("sagemaker", "sagemaker"),
                    ("service_quotas", "service-quotas"),
                    ("ce", "ce"),
                    ("iam", "iam"),
                    ("ec2", "ec2"),
                    ("acm_pca", "acm-pca"),
                )
            }
        )

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    found = Stubs()
    yield found
    found.verify()


def statuses(rows: list[doc.Row]) -> list[str]:
    return [row.status for row in rows]


# --------------------------------------------------------------------------------------------------
# What the synthesized templates need


def test_requirements_come_from_the_cloud_assembly_and_the_templates():
    manifest = {
        "artifacts": {
            "a.assets": {
                "type": "cdk:asset-manifest",
                "properties": {
                    "requiresBootstrapStackVersion": 6,
                    "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version",
                },
            },
            "a": {"type": "aws:cloudformation:stack", "properties": {"requiresBootstrapStackVersion": 8}},
            "Tree": {"type": "cdk:tree"},
        }
    }
    ssm_ami = "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    templates = [
        {
            "Parameters": {
                "BootstrapVersion": {
                    "Type": "AWS::SSM::Parameter::Value<String>",
                    "Default": "/cdk-bootstrap/hnb659fds/version",
                },
                "Ami": {"Type": ssm_ami, "Default": "/genai-stack/ami/neuron"},
            },
            "Resources": {"S": {"Type": "AWS::SageMaker::MonitoringSchedule"}},
        },
        {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}},
    ]
    found = doc.requirements_from(manifest, templates)
    assert found.bootstrap_version == 8
    assert found.bootstrap_parameter == "/cdk-bootstrap/hnb659fds/version"
    assert found.ami_parameters == ("/genai-stack/ami/neuron",)
    assert found.uses_model_monitor is True
    assert doc.requirements_from(manifest, templates[1:]).uses_model_monitor is False


# --------------------------------------------------------------------------------------------------
# One check at a time


def test_credentials_of_another_account_fail():
    identity = {"Account": "111111111111", "Arn": "arn:aws:iam::111111111111:user/x"}
    assert statuses(doc.check_credentials(identity, account=None, region=REGION)) == ["ok"]
    assert statuses(doc.check_credentials(identity, account=ACCOUNT, region=REGION)) == ["fail"]


def test_bootstrap_version_must_reach_what_the_assets_need(stubs):
    ssm = stubs.client("ssm")
    name = "/cdk-bootstrap/hnb659fds/version"
    for value in ("27", "5"):
        stubs["ssm"].add_response(
            "get_parameter", {"Parameter": {"Name": name, "Value": value}}, {"Name": name}
        )
    stubs["ssm"].add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": name})
    check = dict(parameter=name, required=6, account=ACCOUNT, region=REGION)
    assert statuses(doc.check_bootstrap(ssm, **check)) == ["ok"]
    (old,) = doc.check_bootstrap(ssm, **check)
    assert old.status == "fail"
    assert "version 5, the assets need 6" in old.detail
    (missing,) = doc.check_bootstrap(ssm, **check)
    assert missing.status == "fail"
    assert f"cdk bootstrap aws://{ACCOUNT}/{REGION}" in missing.detail


def test_a_profile_whose_budgets_live_in_us_east_1_needs_that_region_bootstrapped_too(stubs, tmp_path):
    """ap-east-1's CloudFormation lacks AWS::Budgets: the profile's `-cost` stack deploys to us-east-1,
    which `cdk deploy --all` needs bootstrapped as well."""
    from tests.stacks.test_regions import hong_kong_profile

    name = "/cdk-bootstrap/hnb659fds/version"
    ssm = stubs.client("ssm")
    stubs["ssm"].add_response("get_parameter", {"Parameter": {"Name": name, "Value": "27"}}, {"Name": name})
    cost_ssm = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(cost_ssm) as cost:
        cost.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": name})
        clients = doc.Clients(*(None,) * 9, cost_ssm=cost_ssm)
        clients.ssm = ssm
        rows = doc.bootstrap_checks(
            hong_kong_profile(tmp_path),
            doc.Requirements(bootstrap_version=6, bootstrap_parameter=name),
            clients,
            ACCOUNT,
        )
        cost.assert_no_pending_responses()
    assert [(row.check, row.status) for row in rows] == [
        ("CDK bootstrap", "ok"),
        ("CDK bootstrap in us-east-1 (the hk-open-models-cost stack)", "fail"),
    ]
    assert f"cdk bootstrap aws://{ACCOUNT}/us-east-1" in rows[1].detail
    # A profile whose region has Budgets: one environment, one row.
    stubs["ssm"].add_response("get_parameter", {"Parameter": {"Name": name, "Value": "27"}}, {"Name": name})
    only = doc.bootstrap_checks(
        load_profile("managed-api"),
        doc.Requirements(bootstrap_version=6, bootstrap_parameter=name),
        clients,
        ACCOUNT,
    )
    assert [row.check for row in only] == ["CDK bootstrap"]


def test_existing_api_gateway_role_must_be_set(stubs):
    apigateway = stubs.client("apigateway")
    role = "arn:aws:iam::123456789012:role/platform-apigw-logs"
    stubs["apigateway"].add_response("get_account", {"cloudwatchRoleArn": role})
    stubs["apigateway"].add_response("get_account", {})
    assert statuses(doc.check_api_gateway_role(apigateway, setting="existing", stack_name="x")) == ["ok"]
    (row,) = doc.check_api_gateway_role(apigateway, setting="existing", stack_name="x")
    assert row.status == "fail"
    assert "'existing'" in row.detail


def test_create_warns_when_it_would_replace_someone_else_s_role(stubs):
    apigateway = stubs.client("apigateway")
    ours = "arn:aws:iam::123456789012:role/managed-api-orchestration-GatewayApiCloudWatchRole-AbC"
    theirs = "arn:aws:iam::123456789012:role/platform-apigw-logs"
    for arn in (None, ours, theirs):
        stubs["apigateway"].add_response("get_account", {"cloudwatchRoleArn": arn} if arn else {})
    stack = "managed-api-orchestration"
    assert statuses(doc.check_api_gateway_role(apigateway, setting="create", stack_name=stack)) == ["ok"]
    assert statuses(doc.check_api_gateway_role(apigateway, setting="create", stack_name=stack)) == ["ok"]
    (row,) = doc.check_api_gateway_role(apigateway, setting="create", stack_name=stack)
    assert row.status == "warn"
    assert theirs in row.detail


def availability(model: str, *, agreement: str = "AVAILABLE", entitled: bool = True, **overrides) -> dict:
    return {
        "modelId": model,
        "agreementAvailability": {"status": agreement},
        "authorizationStatus": "AUTHORIZED",
        "entitlementAvailability": "AVAILABLE" if entitled else "NOT_AVAILABLE",
        "regionAvailability": "AVAILABLE",
        **overrides,
    }


def test_the_availability_api_is_in_the_pinned_boto3():
    operations = boto3.client("bedrock", region_name=REGION).meta.service_model.operation_names
    assert {"GetFoundationModelAvailability", "GetUseCaseForModelAccess"} <= set(operations)


def test_models_offered_authorized_and_subscribed_pass(stubs):
    bedrock = stubs.client("bedrock")
    stubs["bedrock"].add_response("get_foundation_model_availability", availability(NOVA), {"modelId": NOVA})
    stubs["bedrock"].add_response(
        "get_foundation_model_availability", availability(HAIKU), {"modelId": HAIKU}
    )
    stubs["bedrock"].add_response("get_use_case_for_model_access", {"formData": b'{"companyName": "x"}'})
    rows = doc.check_model_access(bedrock, models=[NOVA, HAIKU])
    assert [(r.check, r.status) for r in rows] == [
        (f"Bedrock {NOVA}", "ok"),
        (f"Bedrock {HAIKU}", "ok"),
        ("Anthropic first-use form", "ok"),
    ]


def test_a_third_party_model_without_subscription_or_form_fails(stubs):
    bedrock = stubs.client("bedrock")
    stubs["bedrock"].add_response(
        "get_foundation_model_availability",
        availability(HAIKU, agreement="NOT_AVAILABLE", entitled=False),
        {"modelId": HAIKU},
    )
    stubs["bedrock"].add_client_error("get_use_case_for_model_access", "ResourceNotFoundException")
    subscription, form = doc.check_model_access(bedrock, models=[HAIKU])
    assert subscription.status == "fail"
    assert "Marketplace" in subscription.detail
    assert "aws-marketplace:Subscribe" in subscription.detail
    assert form.status == "fail"
    assert "put-use-case-for-model-access" in form.detail


def test_a_model_not_offered_or_denied_fails(stubs):
    bedrock = stubs.client("bedrock")
    stubs["bedrock"].add_response(
        "get_foundation_model_availability",
        availability(NOVA, regionAvailability="NOT_AVAILABLE"),
        {"modelId": NOVA},
    )
    stubs["bedrock"].add_response(
        "get_foundation_model_availability",
        availability(NOVA, authorizationStatus="NOT_AUTHORIZED"),
        {"modelId": NOVA},
    )
    assert statuses(doc.check_model_access(bedrock, models=[NOVA])) == ["fail"]
    (denied,) = doc.check_model_access(bedrock, models=[NOVA])
    assert "SCP" in denied.detail


def test_model_monitor_is_ok_for_an_existing_customer_and_unknown_otherwise(stubs):
    sagemaker = stubs.client("sagemaker")
    summary = {
        "MonitoringScheduleName": "s",
        "MonitoringScheduleArn": "arn:aws:sagemaker:us-east-1:123456789012:monitoring-schedule/s",
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        "MonitoringScheduleStatus": "Scheduled",
    }
    stubs["sagemaker"].add_response(
        "list_monitoring_schedules", {"MonitoringScheduleSummaries": [summary]}, {"MaxResults": 1}
    )
    stubs["sagemaker"].add_response(
        "list_monitoring_schedules", {"MonitoringScheduleSummaries": []}, {"MaxResults": 1}
    )
    assert statuses(doc.check_model_monitor(sagemaker)) == ["ok"]
    (row,) = doc.check_model_monitor(sagemaker)
    assert row.status == "warn"
    assert "closed to new customers" in row.detail


def test_ami_parameters_must_exist(stubs):
    ssm = stubs.client("ssm")
    pinned, public = "/genai-stack/ami/neuron-2.28", "/aws/service/deeplearning/ami/x/latest/ami-id"
    stubs["ssm"].add_response(
        "get_parameters",
        {"Parameters": [{"Name": public, "Value": "ami-0123456789abcdef0"}], "InvalidParameters": [pinned]},
        {"Names": [pinned, public]},
    )
    rows = doc.check_ami_parameters(ssm, names=[pinned, public])
    assert [(r.check, r.status) for r in rows] == [
        (f"AMI parameter {pinned}", "fail"),
        (f"AMI parameter {public}", "ok"),
    ]
    assert "put-parameter" in rows[0].detail


def test_the_auto_scaling_service_linked_role_must_exist_before_the_key_names_it(stubs):
    iam = stubs.client("iam")
    stubs["iam"].add_client_error(
        "get_role", service_error_code="NoSuchEntity", http_status_code=404,
        expected_params={"RoleName": "AWSServiceRoleForAutoScaling"},
    )  # fmt: skip
    stubs["iam"].add_response(
        "get_role",
        {
            "Role": {
                "Path": "/aws-service-role/autoscaling.amazonaws.com/",
                "RoleName": "AWSServiceRoleForAutoScaling",
                "RoleId": "AROAEXAMPLEEXAMPLE123",
                "Arn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling",
                "CreateDate": "2026-01-01T00:00:00Z",
            }
        },
        {"RoleName": "AWSServiceRoleForAutoScaling"},
    )
    missing = doc.check_auto_scaling_role(iam)
    assert statuses(missing) == ["fail"]
    assert "create-service-linked-role --aws-service-name autoscaling.amazonaws.com" in missing[0].detail
    assert statuses(doc.check_auto_scaling_role(iam)) == ["ok"]


def test_ec2_demand_is_vcpus_at_max_instances_per_quota():
    # self-hosted: 3 x inf2.8xlarge (32 vCPUs) on the Inf quota, 2 x g6.xlarge (4 vCPUs) on G and VT.
    assert doc.ec2_vcpu_demand(load_profile("self-hosted")) == {"L-1945791B": 96, "L-DB2E81BA": 8}


def quota(code: str, name: str, value: float) -> dict:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "QuotaName": name, "Value": value}}


def test_ec2_quotas_below_the_hosts_need_fail(stubs):
    quotas = stubs.client("service-quotas")
    inf = ("L-1945791B", "Running On-Demand Inf instances")
    stubs["service-quotas"].add_response(
        "get_service_quota", quota(*inf, 16), {"ServiceCode": "ec2", "QuotaCode": inf[0]}
    )
    stubs["service-quotas"].add_client_error(
        "get_service_quota",
        "NoSuchResourceException",
        expected_params={"ServiceCode": "ec2", "QuotaCode": inf[0]},
    )
    stubs["service-quotas"].add_response(
        "get_aws_default_service_quota", quota(*inf, 0), {"ServiceCode": "ec2", "QuotaCode": inf[0]}
    )
    assert statuses(doc.check_ec2_quotas(quotas, demand={inf[0]: 12})) == ["ok"]
    (row,) = doc.check_ec2_quotas(quotas, demand={inf[0]: 12})
    assert row.status == "fail"
    assert row.check == "EC2 quota Running On-Demand Inf instances"
    assert "--quota-code L-1945791B --desired-value 12" in row.detail


def test_sagemaker_demand_counts_endpoint_and_training_instances():
    demand = doc.sagemaker_instance_demand(load_profile("custom-model"))
    assert demand["ml.g6.2xlarge for endpoint usage"] == 3
    assert demand["ml.inf2.8xlarge for endpoint usage"] == 2
    assert demand["ml.g5.2xlarge for endpoint usage"] == 2
    assert demand["ml.g5.2xlarge for spot training job usage"] == 1
    imagery = doc.sagemaker_instance_demand(load_profile("product-imagery"))
    assert imagery == {
        "ml.g5.xlarge for endpoint usage": 2,
        "ml.g5.2xlarge for spot training job usage": 1,
        "ml.g5.2xlarge for training job usage": 1,  # the image evaluation job, on demand
    }


def sagemaker_quotas(stubs: Stubs, defaults: dict[str, float], applied: dict[str, float]) -> None:
    for operation, values in (
        ("list_aws_default_service_quotas", defaults),
        ("list_service_quotas", applied),
    ):
        stubs["service-quotas"].add_response(
            operation,
            {"Quotas": [{"QuotaName": n, "Value": v, "QuotaCode": "L-X"} for n, v in values.items()]},
            {"ServiceCode": "sagemaker"},
        )


def test_sagemaker_quotas_use_applied_values_over_defaults(stubs):
    quotas = stubs.client("service-quotas")
    name = "ml.g6.2xlarge for endpoint usage"
    sagemaker_quotas(stubs, {name: 0}, {name: 4})
    assert statuses(doc.check_sagemaker_quotas(quotas, demand={name: 3})) == ["ok"]
    sagemaker_quotas(stubs, {name: 0}, {})
    (row,) = doc.check_sagemaker_quotas(quotas, demand={name: 3})
    assert row.status == "fail"
    assert "0 instances; the profile asks up to 3" in row.detail


def logging_config(log_group: str) -> dict:
    return {
        "loggingConfig": {
            "cloudWatchConfig": {
                "logGroupName": log_group,
                "roleArn": "arn:aws:iam::123456789012:role/r",
            },
            "textDataDeliveryEnabled": True,
        }
    }


def test_invocation_logging_owned_by_someone_else_fails_without_take_over(stubs):
    bedrock = stubs.client("bedrock")
    stack = "managed-api-bedrock"
    for answer in ({}, logging_config(f"{stack}-InvocationLoggingLogs-x"), logging_config("team-b-logs")):
        stubs["bedrock"].add_response("get_model_invocation_logging_configuration", answer)
    stubs["bedrock"].add_response("get_model_invocation_logging_configuration", logging_config("team-b-logs"))
    check = dict(enabled=True, stack_name=stack)
    assert statuses(doc.check_invocation_logging(bedrock, take_over=False, **check)) == ["ok"]
    assert statuses(doc.check_invocation_logging(bedrock, take_over=False, **check)) == ["ok"]
    (foreign,) = doc.check_invocation_logging(bedrock, take_over=False, **check)
    assert foreign.status == "fail"
    assert "take_over" in foreign.detail
    assert statuses(doc.check_invocation_logging(bedrock, take_over=True, **check)) == ["warn"]


def test_the_cost_allocation_tag_must_be_active(stubs):
    ce = stubs.client("ce")
    key = "genai-stack:cost-center"
    for status in ("Active", "Inactive"):
        stubs["ce"].add_response(
            "list_cost_allocation_tags",
            {"CostAllocationTags": [{"TagKey": key, "Type": "UserDefined", "Status": status}]},
            {"TagKeys": [key]},
        )
    stubs["ce"].add_response("list_cost_allocation_tags", {"CostAllocationTags": []}, {"TagKeys": [key]})
    assert statuses(doc.check_cost_allocation_tag(ce, tag_key=key)) == ["ok"]
    (inactive,) = doc.check_cost_allocation_tag(ce, tag_key=key)
    assert inactive.status == "fail"
    assert f"TagKey={key},Status=Active" in inactive.detail
    assert statuses(doc.check_cost_allocation_tag(ce, tag_key=key)) == ["warn"]


def test_the_campaign_tags_are_checked_for_the_per_campaign_report(stubs):
    ce = stubs.client("ce")
    stubs["ce"].add_response(
        "list_cost_allocation_tags",
        {"CostAllocationTags": [{"TagKey": "campaign", "Type": "UserDefined", "Status": "Inactive"}]},
        {"TagKeys": ["campaign", "segment"]},
    )
    inactive, unknown = doc.check_report_tags(ce, keys=["campaign", "segment"])
    assert (inactive.status, unknown.status) == ("warn", "warn")  # the budgets do not depend on them
    assert inactive.detail.startswith("inactive: `genai-stack cost --by campaign`")
    assert "TagKey=campaign,Status=Active" in inactive.detail
    assert unknown.detail.startswith("not known to Billing yet")


def test_a_refused_call_is_a_failed_row_not_a_traceback(stubs):
    ce = stubs.client("ce")
    stubs["ce"].add_client_error("list_cost_allocation_tags", "AccessDeniedException", "not allowed")
    (row,) = doc._guarded("cost-allocation tag", lambda: doc.check_cost_allocation_tag(ce, tag_key="k"))
    assert row.status == "fail"
    assert "AccessDeniedException" in row.detail


# --------------------------------------------------------------------------------------------------
# The command: which checks run for a profile, the table, the exit status

PLACEHOLDER_VPCE = "vpce-0123456789abcdef0"  # profiles/managed-api.yaml


def endpoint(
    endpoint_id: str, *, service: str = f"com.amazonaws.{REGION}.execute-api", state: str = "available"
):
    return {"VpcEndpointId": endpoint_id, "ServiceName": service, "State": state, "VpcId": "vpc-1"}


def test_private_gateway_endpoints_must_exist_and_be_execute_api_endpoints(stubs):
    ec2 = stubs.client("ec2")
    ids = ["vpce-0a1b2c3d4e5f60718", "vpce-0a1b2c3d4e5f60719"]
    stubs["ec2"].add_response(
        "describe_vpc_endpoints",
        {"VpcEndpoints": [endpoint(ids[0]), endpoint(ids[1], service=f"com.amazonaws.{REGION}.s3")]},
        {"VpcEndpointIds": ids},
    )
    stubs["ec2"].add_client_error(
        "describe_vpc_endpoints",
        "InvalidVpcEndpointId.NotFound",
        "The Vpc Endpoint Id 'vpce-0123456789abcdef0' does not exist",
    )
    first, second = doc.check_private_endpoints(ec2, ids=ids, region=REGION)
    assert (first.status, second.status) == ("ok", "fail")
    assert "s3" in second.detail
    (row,) = doc.check_private_endpoints(ec2, ids=[PLACEHOLDER_VPCE], region=REGION)
    assert row.status == "fail"
    assert "does not exist" in row.detail
    assert "private_vpc_endpoint_ids" in row.detail


runner = CliRunner()
MANAGED_API = doc.Requirements(bootstrap_version=6, bootstrap_parameter="/cdk-bootstrap/hnb659fds/version")


def stub_managed_api(stubs: Stubs, *, bootstrap: str) -> doc.Clients:
    """The calls doctor makes for managed-api, in order per client."""
    clients = stubs.clients()
    stubs["sts"].add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops", "UserId": "AIDEXAMPLE"},
    )
    stubs["ssm"].add_response(
        "get_parameter",
        {"Parameter": {"Name": MANAGED_API.bootstrap_parameter, "Value": bootstrap}},
        {"Name": MANAGED_API.bootstrap_parameter},
    )
    stubs["apigateway"].add_response("get_account", {})
    stubs["ec2"].add_response(
        "describe_vpc_endpoints",
        {"VpcEndpoints": [endpoint(PLACEHOLDER_VPCE)]},
        {"VpcEndpointIds": [PLACEHOLDER_VPCE]},
    )
    for model in (NOVA, "amazon.titan-embed-text-v2:0", HAIKU):
        stubs["bedrock"].add_response(
            "get_foundation_model_availability", availability(model), {"modelId": model}
        )
    stubs["bedrock"].add_response("get_use_case_for_model_access", {"formData": b'{"companyName": "x"}'})
    stubs["bedrock"].add_response("get_model_invocation_logging_configuration", {})
    stubs["ce"].add_response(
        "list_cost_allocation_tags",
        {
            "CostAllocationTags": [
                {"TagKey": "genai-stack:cost-center", "Type": "UserDefined", "Status": "Active"}
            ]
        },
        {"TagKeys": ["genai-stack:cost-center"]},
    )
    stubs["ce"].add_response(
        "list_cost_allocation_tags",
        {"CostAllocationTags": [{"TagKey": "campaign", "Type": "UserDefined", "Status": "Active"}]},
        {"TagKeys": ["campaign"]},
    )
    return clients


@pytest.fixture
def no_synth(monkeypatch):
    monkeypatch.setattr(doc, "requirements_of", lambda name: MANAGED_API)


def test_a_clear_account_exits_0(stubs, monkeypatch, no_synth):
    clients = stub_managed_api(stubs, bootstrap="27")
    monkeypatch.setattr(doc, "make_clients", lambda region: clients)
    result = runner.invoke(app, ["doctor", "managed-api", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["clear"] is True
    checks = [row["check"] for row in document["checks"]]
    assert checks[:3] == ["credentials", "CDK bootstrap", "API Gateway CloudWatch role"]
    assert "Anthropic first-use form" in checks
    assert not any(c.startswith(("EC2", "SageMaker", "AMI", "Model Monitor")) for c in checks)


def test_anything_failed_exits_1_with_the_table_of_what_to_fix(stubs, monkeypatch, no_synth):
    clients = stub_managed_api(stubs, bootstrap="5")
    monkeypatch.setattr(doc, "make_clients", lambda region: clients)
    result = runner.invoke(app, ["doctor", "managed-api"])
    assert result.exit_code == 1, result.output
    assert "CDK bootstrap" in result.output
    assert "fail" in result.output
    assert "Fix the failed checks" in result.output


def test_no_credentials_is_a_clear_error_with_exit_2(monkeypatch, no_synth):
    class NoCredentials:
        def get_caller_identity(self):
            raise NoCredentialsError

    monkeypatch.setattr(doc, "make_clients", lambda region: doc.Clients(NoCredentials(), *(None,) * 8))
    result = runner.invoke(app, ["doctor", "managed-api"])
    assert result.exit_code == 2
    assert "no usable AWS credentials" in result.output


def test_doctor_has_help_with_an_example():
    result = runner.invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


CA = f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def describe_ca(stubs, status: str, arn: str = CA, key: str = "RSA_2048") -> None:
    stubs["acm-pca"].add_response(
        "describe_certificate_authority",
        {
            "CertificateAuthority": {
                "Arn": arn,
                "Status": status,
                "CertificateAuthorityConfiguration": {
                    "KeyAlgorithm": key,
                    "SigningAlgorithm": "SHA256WITHRSA" if key.startswith("RSA") else "SHA256WITHECDSA",
                    "Subject": {"CommonName": "bank internal CA"},
                },
            }
        },
        {"CertificateAuthorityArn": arn},
    )


def test_the_hosts_private_ca_must_be_active_and_let_acm_renew(stubs):
    acm_pca = stubs.client("acm-pca")
    describe_ca(stubs, "DISABLED")
    (row,) = doc.check_private_ca(acm_pca, arn=CA, account=ACCOUNT)
    assert row.status == "fail"
    assert "is DISABLED: ACM issues certificates from an ACTIVE CA only" in row.detail

    describe_ca(stubs, "ACTIVE")
    stubs["acm-pca"].add_response(
        "list_permissions",
        {"Permissions": [{"Principal": "acm.amazonaws.com", "Actions": ["IssueCertificate"]}]},
        {"CertificateAuthorityArn": CA},
    )
    (row,) = doc.check_private_ca(acm_pca, arn=CA, account=ACCOUNT)
    assert row.status == "warn"
    assert "ACM lacks GetCertificate, ListPermissions" in row.detail
    assert "create-permission --principal acm.amazonaws.com" in row.detail

    describe_ca(stubs, "ACTIVE")
    stubs["acm-pca"].add_response(
        "list_permissions",
        {
            "Permissions": [
                {
                    "Principal": "acm.amazonaws.com",
                    "Actions": ["IssueCertificate", "GetCertificate", "ListPermissions"],
                }
            ]
        },
        {"CertificateAuthorityArn": CA},
    )
    assert statuses(doc.check_private_ca(acm_pca, arn=CA, account=ACCOUNT)) == ["ok"]

    describe_ca(stubs, "ACTIVE", key="EC_prime256v1")  # an ECDSA CA, the default RSA certificate
    (row,) = doc.check_private_ca(acm_pca, arn=CA, account=ACCOUNT)
    assert row.status == "fail"
    assert "set hosting.tls.private_key_algorithm to EC_prime256v1 or EC_secp384r1" in row.detail

    shared = CA.replace(ACCOUNT, "210987654321")
    describe_ca(stubs, "ACTIVE", shared)
    (row,) = doc.check_private_ca(acm_pca, arn=shared, account=ACCOUNT)
    assert row.status == "warn"
    assert "another account" in row.detail


def test_the_interface_endpoints_come_from_the_templates(synthesized):
    """Every interface endpoint of a built-in profile's templates, by service (gateway endpoints are
    route-table entries, not in any zone)."""
    found = doc.requirements_from({}, synthesized.templates["managed-api"].values())
    assert found.interface_endpoints == ("bedrock-agent-runtime", "bedrock-runtime", "s3vectors")
    hosts = doc.requirements_from({}, synthesized.templates["self-hosted"].values())
    assert {"acm-pca", "bedrock-runtime", "ssm", "cloudformation"} <= set(hosts.interface_endpoints)
    assert "s3" not in hosts.interface_endpoints


def endpoint_services(stubs, offered: dict[str, list[str]]) -> None:
    names = [f"com.amazonaws.{REGION}.{service}" for service in offered]
    stubs["ec2"].add_response(
        "describe_vpc_endpoint_services",
        {
            "ServiceDetails": [
                {"ServiceName": n, "AvailabilityZones": z}
                for n, z in zip(names, offered.values(), strict=True)
            ]
        },
        {"ServiceNames": names},
    )


def test_interface_endpoints_must_be_offered_in_the_vpc_s_zones(stubs):
    ec2 = stubs.client("ec2")
    services = ("bedrock-agent-runtime", "bedrock-runtime")
    offered = {
        "bedrock-agent-runtime": ["us-east-1a", "us-east-1b", "us-east-1d"],
        "bedrock-runtime": ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"],
    }

    endpoint_services(stubs, offered)  # pinned to zones that offer both
    (row,) = doc.check_endpoint_zones(
        ec2, services=services, region=REGION, pinned=["us-east-1a", "us-east-1b"]
    )
    assert row.status == "ok"

    endpoint_services(stubs, offered)  # pinned to a zone agent runtime lacks
    (row,) = doc.check_endpoint_zones(
        ec2, services=services, region=REGION, pinned=["us-east-1a", "us-east-1c"]
    )
    assert row.status == "fail"
    assert "bedrock-agent-runtime is not offered in us-east-1c" in row.detail
    assert "['us-east-1a', 'us-east-1b', 'us-east-1d']" in row.detail

    endpoint_services(stubs, offered)  # not pinned, and a zone of the region lacks one: warn
    zones = [
        {"ZoneName": z, "State": "available"}
        for z in ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")
    ]
    stubs["ec2"].add_response(
        "describe_availability_zones",
        {"AvailabilityZones": zones},
        {"Filters": [{"Name": "zone-type", "Values": ["availability-zone"]}]},
    )
    (row,) = doc.check_endpoint_zones(ec2, services=services, region=REGION, pinned=None)
    assert row.status == "warn"
    assert row.detail.startswith("us-east-1c lack one of")
    assert "pin network.availability_zones" in row.detail

    stubs["ec2"].add_response(  # a service the region does not offer at all
        "describe_vpc_endpoint_services",
        {"ServiceDetails": []},
        {"ServiceNames": [f"com.amazonaws.{REGION}.bedrock-runtime"]},
    )
    (row,) = doc.check_endpoint_zones(ec2, services=["bedrock-runtime"], region=REGION, pinned=None)
    assert (row.status, row.detail) == (
        "fail",
        f"not offered in {REGION}: com.amazonaws.{REGION}.bedrock-runtime",
    )


def test_the_zones_are_pinned_only_when_every_new_vpc_names_them():
    from genai_stack.config import Network

    profile = load_profile("managed-api")
    assert doc.pinned_zones(profile) is None  # the built-in profile leaves the order to Fn::GetAZs
    pinned = Network(availability_zones=["us-east-1b", "us-east-1a"])
    gateway = profile.gateway.model_copy(update={"network": pinned})
    assert doc.pinned_zones(profile.model_copy(update={"gateway": gateway})) == ["us-east-1a", "us-east-1b"]


# --------------------------------------------------------------------------------------------------
# The Aurora vector store's admin: a master user's name cannot change.

CLUSTER_RESOURCE = {
    "StackResourceDetail": {
        "StackName": "customer-service-foundation",
        "LogicalResourceId": doc.AURORA_CLUSTER_LOGICAL_ID,
        "PhysicalResourceId": "customer-service-foundation-auroravectorstorecluster-abc123",
        "ResourceType": "AWS::RDS::DBCluster",
        "LastUpdatedTimestamp": "2026-03-01T00:00:00Z",
        "ResourceStatus": "UPDATE_COMPLETE",
    }
}
WHERE = {"StackName": "customer-service-foundation", "LogicalResourceId": doc.AURORA_CLUSTER_LOGICAL_ID}


def cluster(admin: str) -> dict:
    return {
        "DBClusters": [
            {
                "DBClusterIdentifier": "customer-service-foundation-auroravectorstorecluster-abc123",
                "MasterUsername": admin,
            }
        ]
    }


def test_a_cluster_0_1_created_keeps_its_admin_name_or_doctor_fails(stubs):
    rows = []
    for admin in ("postgres", "vectors_admin"):
        cloudformation, rds = stubs.client("cloudformation"), stubs.client("rds")
        stubs["cloudformation"].add_response("describe_stack_resource", CLUSTER_RESOURCE, WHERE)
        stubs["rds"].add_response(
            "describe_db_clusters",
            cluster(admin),
            {"DBClusterIdentifier": "customer-service-foundation-auroravectorstorecluster-abc123"},
        )
        rows += doc.check_vector_store_admin(
            cloudformation, rds, stack_name="customer-service-foundation", admin_username="vectors_admin"
        )
    failed, ok = rows
    assert failed.status == "fail"
    assert "has the admin 'postgres', the profile asks for 'vectors_admin'" in failed.detail
    assert "bedrock.aurora.admin_username: postgres with legacy_admin_reason" in failed.detail
    assert ok.status == "ok"


def test_no_cluster_yet_is_ok(stubs):
    cloudformation, rds = stubs.client("cloudformation"), stubs.client("rds")
    stubs["cloudformation"].add_client_error(
        "describe_stack_resource",
        service_error_code="ValidationError",
        service_message="Stack 'customer-service-foundation' does not exist",
        expected_params=WHERE,
    )
    (row,) = doc.check_vector_store_admin(
        cloudformation, rds, stack_name="customer-service-foundation", admin_username="vectors_admin"
    )
    assert row.status == "ok"
    assert "created with the admin vectors_admin" in row.detail


def test_the_cluster_logical_id_doctor_reads_is_the_pinned_one(synthesized):
    assert doc.AURORA_CLUSTER_LOGICAL_ID in synthesized.resources(
        "customer-service", "Foundation", "AWS::RDS::DBCluster"
    )


def test_a_kendra_knowledge_base_needs_an_active_genai_index(stubs):
    kendra = stubs.client("kendra")
    index = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    for edition, status in (
        ("GEN_AI_ENTERPRISE_EDITION", "ACTIVE"),
        ("ENTERPRISE_EDITION", "ACTIVE"),
        ("GEN_AI_ENTERPRISE_EDITION", "CREATING"),
    ):
        stubs["kendra"].add_response(
            "describe_index", {"Id": index, "Edition": edition, "Status": status}, {"Id": index}
        )
    stubs["kendra"].add_client_error("describe_index", "ResourceNotFoundException", "no such index")
    rows = [doc.check_kendra_index(kendra, name="manuals", index_id=index)[0] for _ in range(4)]
    assert [r.status for r in rows] == ["ok", "fail", "fail", "fail"]
    assert "ENTERPRISE_EDITION index: a knowledge base takes a GenAI index only" in rows[1].detail
    assert "is CREATING" in rows[2].detail
    assert "not an index of this account and region" in rows[3].detail
