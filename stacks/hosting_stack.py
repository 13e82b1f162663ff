"""HostingStack: the self-managed approach. It only wires the network, the host fleets and monitoring."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from genai_stack.components.host_names import HostNames
from genai_stack.components.model_host_fleet import ModelHostFleet
from genai_stack.components.model_network import ModelNetwork
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.config import Hosting
from genai_stack.service_roles import model_host_role


class HostingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Hosting,
        artifacts_bucket: s3.IBucket,
        access_logs_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        alarm_topic: sns.ITopic,
        log_retention_days: int,
        hub: MonitoringHub,
        gateway_endpoints: Sequence[str] = (),
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        tls = settings.tls
        assert tls is not None  # the profile requires it
        # The private CA the gateway trusts for these hosts' certificate (none with a public one).
        self.trusted_ca_arn = tls.private_ca_arn
        # That gateway reads the CA's certificate once per cold start (acm-pca
        # GetCertificateAuthorityCertificate), through an endpoint in this VPC.
        if gateway_endpoints and self.trusted_ca_arn:
            gateway_endpoints = (*gateway_endpoints, "PrivateCa")
        network = ModelNetwork(
            self,
            "Network",
            settings=settings.network,
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            gateway_endpoints=gateway_endpoints,
        )
        self.vpc, self.subnets = network.vpc, network.private_subnets
        # The gateway (or any other caller) joins this group to reach the hosts' load balancers.
        self.client_security_group = ec2.SecurityGroup(
            self, "ClientSecurityGroup", vpc=self.vpc, description="callers of the model hosts (the gateway)"
        )
        network.allow_from(self.client_security_group)
        # HTTPS to every host (names and certificate from the profile), or plain HTTP with its reason.
        self.names = (
            None
            if tls.allow_plaintext
            else HostNames(self, "Names", tls=tls, vpc=self.vpc, hosts=[host.name for host in settings.hosts])
        )
        self.fleets: dict[str, ModelHostFleet] = {}
        for host in settings.hosts:
            fleet = ModelHostFleet(
                self,
                f"Host-{host.name}",
                host=host,
                vpc=self.vpc,
                subnets=self.subnets,
                client_security_group=self.client_security_group,
                role=model_host_role(
                    self, host, artifacts_bucket=artifacts_bucket, encryption_key=encryption_key
                ).role,
                artifacts_bucket=artifacts_bucket,
                encryption_key=encryption_key,
                alarm_topic=alarm_topic,
                log_retention_days=log_retention_days,
                names=self.names,
                plaintext_reason=tls.reason,
                access_logs_bucket=access_logs_bucket,
            )
            fleet.monitor(hub)
            network.allow_from(fleet.security_group)
            self.fleets[host.name] = fleet
            CfnOutput(
                self,
                f"HostUrl-{host.name}",
                value=fleet.url,
                description=f"OpenAI base URL of {host.name} (+ /v1)",
            )
