"""ModelNetwork: a private VPC, the one the model hosts (and, with self-hosted targets, the gateway) run
in, or the gateway's own (gateway.network)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.python_function import encrypted_log_group
from genai_stack.config import Network

E = ec2.InterfaceVpcEndpointAwsService
# What the hosts call without internet: Session Manager (SSM, SSM messages, EC2 messages), CloudWatch
# Logs and metrics, CloudFormation (the host's SignalResource after /health, model_host_fleet.py).
# What the gateway may call from the VPC (each only when it does, as every interface endpoint is
# billed per hour and zone): Bedrock runtime (models, ApplyGuardrail), agent runtime (Retrieve),
# SageMaker runtime, S3 Vectors (the semantic cache: an interface endpoint only,
# com.amazonaws.<region>.s3vectors, whose private DNS answers the SDK's s3vectors.<region>.api.aws:
# Amazon S3 user guide, "VPC endpoints for S3 Vectors"), AWS Private CA (the certificate of the CA it
# trusts for the hosts' HTTPS, read at cold start). S3 (weights) and DynamoDB (gateway cache) use free
# gateway endpoints.
HOST_ENDPOINTS = {"Ssm": E.SSM, "SsmMessages": E.SSM_MESSAGES, "Ec2Messages": E.EC2_MESSAGES,
                  "Logs": E.CLOUDWATCH_LOGS, "Monitoring": E.CLOUDWATCH_MONITORING,
                  "CloudFormation": E.CLOUDFORMATION}  # fmt: skip
GATEWAY_ENDPOINTS = {"BedrockRuntime": E.BEDROCK_RUNTIME, "BedrockAgentRuntime": E.BEDROCK_AGENT_RUNTIME,
                     "SageMakerRuntime": E.SAGEMAKER_RUNTIME, "S3Vectors": E.S3_VECTORS,
                     "PrivateCa": E.PRIVATE_CERTIFICATE_AUTHORITY}  # fmt: skip


class ModelNetwork(Construct):
    """A new VPC with private subnets only (public subnets and NAT gateways only when
    `nat_gateways` > 0), flow logs to a KMS-encrypted log group, the S3 and DynamoDB gateway endpoints,
    and interface endpoints: the hosts' (`hosts`: HOST_ENDPOINTS) and those of `gateway_endpoints`
    (names of GATEWAY_ENDPOINTS); or an existing VPC from its id, subnets and zones (no synth-time
    lookup), to which nothing is added."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Network,
        encryption_key: kms.IKey,
        log_retention_days: int,
        gateway_endpoints: Sequence[str] = (),
        hosts: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.created = settings.existing_vpc_id is None
        self.endpoints: list[ec2.InterfaceVpcEndpoint] = []
        if not self.created:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=settings.existing_vpc_id,
                availability_zones=settings.existing_availability_zones,
                private_subnet_ids=settings.existing_private_subnet_ids,
            )
            self.private_subnets = ec2.SubnetSelection(subnets=self.vpc.private_subnets)
            return
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if settings.nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        )
        subnets = [ec2.SubnetConfiguration(name="private", subnet_type=private_type, cidr_mask=20)]
        if settings.nat_gateways:
            subnets.append(
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=False,
                )
            )
        flow_logs = encrypted_log_group(
            self, "FlowLogs", encryption_key=encryption_key, days=log_retention_days
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(settings.cidr),
            # The profile's zones by name, else the first max_azs of the region's (Fn::GetAZs).
            availability_zones=settings.availability_zones or None,
            max_azs=None if settings.availability_zones else settings.max_azs,
            nat_gateways=settings.nat_gateways,
            subnet_configuration=subnets,
            flow_logs={
                "all": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
            },
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=private_type)
        provider = Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is not None:
            handler = provider.node.find_child("Handler")
            compliance.skip_checkov(handler, *compliance.VPC_DEFAULT_SG_PROVIDER_CHECKOV_SKIPS)
        endpoints = {
            **(HOST_ENDPOINTS if hosts else {}),
            **{name: GATEWAY_ENDPOINTS[name] for name in gateway_endpoints},
        }
        # Closed by default (not open to the whole VPC CIDR): allow_from() opens them to each caller.
        self.endpoints = [
            self.vpc.add_interface_endpoint(
                name, service=service, subnets=self.private_subnets, private_dns_enabled=True, open=False
            )
            for name, service in endpoints.items()
        ]

    def allow_from(self, peer: ec2.ISecurityGroup) -> None:
        """Let members of `peer` reach the interface endpoints (HTTPS)."""
        for endpoint in self.endpoints:
            endpoint.connections.allow_default_port_from(peer, "a caller inside the VPC")
