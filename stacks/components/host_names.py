"""HostNames: the DNS names and the certificate the hosts' internal load balancers serve HTTPS with."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_acmpca as acmpca
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct

from genai_stack.config import HostTls


class HostNames(Construct):
    """Each host answers as `<host name>.<domain>`: an alias record in a private hosted zone for
    `domain`, associated with the hosts' VPC, where the gateway runs and resolves it (Route 53
    developer guide, "Working with private hosted zones": the VPC needs enableDnsHostnames and
    enableDnsSupport, which the VPC ModelNetwork creates has). The names stay out of public DNS: they
    resolve to the load balancers' private addresses.

    The certificate names each host (`<host name>.<domain>`, the first in name order as its domain name,
    the others as subject alternative names), no wildcard: its key vouches for these hosts only. The
    hosting section has at most 10 hosts, ACM's default quota of names per certificate ("Domain names per
    ACM certificate", ACM user guide, "Quotas"). Adding or removing a host replaces the certificate
    (SubjectAlternativeNames: replacement), then the listeners move to the new one. From the profile's
    `hosting.tls`, one of:
    - `certificate_arn`: the team's ACM certificate (of the stack's region; the profile checks it),
      which must cover every `<host name>.<domain>` (a wildcard or the names);
    - `public_zone_id`: a public ACM certificate issued here, validated by DNS in that public zone
      (CloudFormation writes the validation record there: AWS::CertificateManager::Certificate,
      DomainValidationOptions.HostedZoneId; ACM renews it while the record stays);
    - `private_ca_arn`: a private certificate issued here by that AWS Private CA; ACM renews it when
      the CA has granted acm.amazonaws.com IssueCertificate, GetCertificate and ListPermissions
      (AWS Private CA API reference, "Permission"; docs/profiles/self-hosted.md). The gateway trusts
      this CA only for these hosts (HostingStack.trusted_ca_arn, lambdas/gateway/providers/http_pool.py)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, tls: HostTls, vpc: ec2.IVpc, hosts: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        assert tls.domain is not None  # HostTls: a domain unless allow_plaintext
        self.domain = tls.domain
        self.zone = route53.PrivateHostedZone(
            self,
            "Zone",
            zone_name=tls.domain,
            vpc=vpc,
            comment="genai-stack model hosts: names of their internal load balancers",
        )
        first, *others = sorted(self.name_of(host) for host in hosts)
        names = {"domain_name": first, "subject_alternative_names": others or None}
        if tls.certificate_arn:
            self.certificate = acm.Certificate.from_certificate_arn(self, "Certificate", tls.certificate_arn)
        elif tls.public_zone_id:
            self.certificate = acm.Certificate(
                self,
                "Certificate",
                **names,
                validation=acm.CertificateValidation.from_dns(
                    route53.HostedZone.from_hosted_zone_id(self, "PublicZone", tls.public_zone_id)
                ),
            )
        else:
            assert tls.private_ca_arn is not None
            self.certificate = acm.PrivateCertificate(
                self,
                "Certificate",
                **names,
                key_algorithm=acm.KeyAlgorithm(tls.private_key_algorithm),
                certificate_authority=acmpca.CertificateAuthority.from_certificate_authority_arn(
                    self, "Authority", tls.private_ca_arn
                ),
            )

    def name_of(self, host: str) -> str:
        return f"{host}.{self.domain}"

    def add_host(self, host: str, load_balancer: elbv2.IApplicationLoadBalancer) -> str:
        """An alias record for the host's load balancer; returns the host's HTTPS base URL."""
        route53.ARecord(
            self,
            f"Host-{host}",
            zone=self.zone,
            record_name=f"{self.name_of(host)}.",  # fully qualified: the zone's own name plus the host
            target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(load_balancer)),
        )
        return f"https://{self.name_of(host)}"
