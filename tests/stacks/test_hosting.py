"""HostingStack (self-hosted profile): network, hosts, front, scaling, observability, gateway wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_stack.config import load_profile

PROFILE = "self-hosted"


@pytest.fixture(scope="module")
def settings():
    return load_profile(PROFILE).hosting


@pytest.fixture(scope="module")
def resources(synthesized) -> dict:
    return synthesized.template(PROFILE, "Hosting")["Resources"]


def of_type(resources: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in resources.items() if r["Type"] == resource_type}


def service_names(resources: dict) -> set[str]:
    """com.amazonaws.<region>.<service> (a string or a Join on AWS::Region) -> <service>."""
    names = set()
    for endpoint in of_type(resources, "AWS::EC2::VPCEndpoint").values():
        name = endpoint["Properties"]["ServiceName"]
        if isinstance(name, dict):
            name = "".join(p if isinstance(p, str) else "<region>" for p in name["Fn::Join"][1])
        names.add(name.removeprefix("com.amazonaws.").split(".", 1)[1])
    return names


def test_the_vpc_is_private_with_one_nat_flow_logs_and_the_endpoints(resources, settings):
    assert len(of_type(resources, "AWS::EC2::NatGateway")) == settings.network.nat_gateways
    assert len(of_type(resources, "AWS::EC2::FlowLog")) == 1
    services = service_names(resources)
    # The hosts' endpoints, plus Bedrock runtime for the gateway (guardrail and fallback); no agent
    # or SageMaker runtime, since this profile's gateway uses neither knowledge bases nor endpoints.
    assert services == {
        "s3",
        "dynamodb",
        "ssm",
        "ssmmessages",
        "ec2messages",
        "logs",
        "monitoring",
        "cloudformation",  # the hosts' SignalResource after /health
        "bedrock-runtime",
        "acm-pca",  # the gateway reads the certificate of the CA it trusts for the hosts' HTTPS
    }
    for subnet in of_type(resources, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_without_nat_no_subnet_has_a_route_to_the_internet(resources, settings):
    """The built-in self-hosted profile has no egress: no NAT, no internet gateway, no default route
    (the hosts' boot script installs nothing from the internet: test_model_host_user_data.py)."""
    from tests.support.templates import ways_out_of_the_vpc

    assert settings.network.nat_gateways == 0
    assert ways_out_of_the_vpc(resources) == []


def test_interface_endpoints_admit_only_the_hosts_and_the_gateway(resources):
    endpoint_groups = {k for k in of_type(resources, "AWS::EC2::SecurityGroup") if k.startswith("NetworkVpc")}
    assert len(endpoint_groups) == 8  # six for the hosts, Bedrock runtime and AWS Private CA for the gateway
    for logical_id in endpoint_groups:
        group = resources[logical_id]["Properties"]
        assert "SecurityGroupIngress" not in group  # no CIDR rule for the whole VPC
        rules = [
            r["Properties"]
            for r in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()
            if r["Properties"]["GroupId"] == {"Fn::GetAtt": [logical_id, "GroupId"]}
        ]
        sources = sorted(r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in rules)
        assert len(sources) == 3
        assert all(r["FromPort"] == 443 for r in rules)
        assert sources[0].startswith("ClientSecurityGroup")


def test_no_security_group_accepts_traffic_from_anywhere(synthesized):
    for stack, template in synthesized.templates[PROFILE].items():
        for logical_id, resource in template["Resources"].items():
            rules = []
            if resource["Type"] == "AWS::EC2::SecurityGroup":
                rules = resource["Properties"].get("SecurityGroupIngress", [])
            elif resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                rules = [resource["Properties"]]
            for rule in rules:
                assert rule.get("CidrIp") != "0.0.0.0/0", f"{stack}/{logical_id}"
                assert rule.get("CidrIpv6") != "::/0", f"{stack}/{logical_id}"


def test_hosts_use_imdsv2_encrypted_disks_no_public_ip_and_the_dlami_from_ssm(resources, synthesized):
    templates = of_type(resources, "AWS::EC2::LaunchTemplate")
    assert len(templates) == 2
    parameters = synthesized.template(PROFILE, "Hosting").get("Parameters", {})
    for template in templates.values():
        data = template["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
        (interface,) = data["NetworkInterfaces"]
        assert interface["AssociatePublicIpAddress"] is False
        (disk,) = data["BlockDeviceMappings"]
        assert disk["Ebs"]["Encrypted"] is True
        assert "KmsKeyId" in disk["Ebs"]
        assert "KeyName" not in data
        image = data["ImageId"]["Ref"]
        assert parameters[image]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    defaults = {p["Default"] for p in parameters.values() if "Default" in p}
    pinned = {h.ami_ssm_parameter for h in load_profile(PROFILE).hosting.hosts}
    assert pinned <= defaults  # the parameters of the user's that the profile names
    assert not [d for d in defaults if str(d).startswith("/aws/service/")]  # no public `latest` AMI


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """self-hosted with two settings no built-in profile has, synthesized once for the tests of both
    (they read different resources): the GPU host's AMI pinned by id, and an existing VPC."""
    from genai_stack.stage import ProfileStacks
    from tests.conftest import cdk_app

    profile = load_profile(PROFILE)
    hosts = [
        h.model_copy(update={"ami_id": "ami-0123456789abcdef0", "ami_ssm_parameter": None})
        if h.server == "vllm-gpu"
        else h
        for h in profile.hosting.hosts
    ]
    network = profile.hosting.network.model_copy(
        update={
            "existing_vpc_id": "vpc-0123456789abcdef0",
            "existing_private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
            "existing_availability_zones": ["us-east-1a", "us-east-1b"],
        }
    )
    hosting = profile.hosting.model_copy(update={"hosts": hosts, "network": network})
    profile = profile.model_copy(update={"hosting": hosting})
    app = cdk_app(tmp_path_factory.mktemp("variant"))
    stacks = ProfileStacks(app, "variant", profile=profile)
    return profile, app.synth(), stacks


def test_an_ami_id_in_the_profile_is_used_as_it_is(variant):
    """A pinned id needs no parameter: the launch template carries it."""
    _, assembly, stacks = variant
    template = assembly.get_stack_artifact(stacks.hosting.artifact_id).template
    images = [
        r["Properties"]["LaunchTemplateData"]["ImageId"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::EC2::LaunchTemplate"
    ]
    assert "ami-0123456789abcdef0" in images
    assert len([i for i in images if isinstance(i, dict) and "Ref" in i]) == 1  # the Neuron parameter


def test_the_instance_role_reads_its_model_prefix_and_writes_only_compiled_neuron_models(
    synthesized, settings
):
    policies = synthesized.resources(PROFILE, "Foundation", "AWS::IAM::Policy")
    for host in settings.hosts:
        key = "ModelHostRole" + host.name.replace("-", "")
        (policy,) = [p for k, p in policies.items() if k.startswith(key)]
        statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        # GPU hosts also read vLLM's wheels (genai-stack wheelhouse), Neuron hosts only their model.
        prefixes = [host.model.prefix] + (["wheels/vllm-0.31.0/"] if host.server == "vllm-gpu" else [])
        assert statements["ListTheModelPrefix"]["Condition"] == {
            "StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}
        }
        resources = statements["ReadTheModel"]["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert [json.dumps(r).split('"')[-2] for r in resources] == [f"/{p}*" for p in prefixes]
        read = {"ListTheModelPrefix", "ReadTheModel", "DecryptTheModel"}
        if host.server == "vllm-neuron":
            # The compiled model goes back to S3 under the model's neuron-compiled/ prefix, only there.
            assert set(statements) == read | {"WriteTheCompiledModel", "EncryptTheCompiledModel"}
            assert statements["WriteTheCompiledModel"]["Action"] == "s3:PutObject"
            assert json.dumps(statements["WriteTheCompiledModel"]["Resource"]).endswith(
                f'"/{host.model.prefix}neuron-compiled/*"]]}}'
            )
            assert statements["EncryptTheCompiledModel"]["Action"] == "kms:GenerateDataKey"
        else:
            assert set(statements) == read


def test_the_load_balancers_are_internal_and_open_only_to_the_gateway(resources):
    balancers = of_type(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert len(balancers) == 2
    for balancer in balancers.values():
        assert balancer["Properties"]["Scheme"] == "internal"
    ingress = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()]
    to_balancers = [r for r in ingress if r["GroupId"]["Fn::GetAtt"][0].startswith("Host")]
    to_balancers = [r for r in to_balancers if "LoadBalancerSecurityGroup" in r["GroupId"]["Fn::GetAtt"][0]]
    assert len(to_balancers) == 2
    for rule in to_balancers:
        assert (rule["FromPort"], rule["ToPort"]) == (443, 443)  # HTTPS only
        assert rule["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith("ClientSecurityGroup")


def listeners(resources: dict) -> list[dict]:
    return [r["Properties"] for r in of_type(resources, "AWS::ElasticLoadBalancingV2::Listener").values()]


def gateway_function(synthesized) -> dict:
    resources = synthesized.template(PROFILE, "Orchestration")["Resources"]
    (function,) = [
        r["Properties"]
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("GatewayHandler")
    ]
    return function


def gateway_config(synthesized) -> str:
    return json.dumps(gateway_function(synthesized)["Environment"]["Variables"]["GATEWAY_CONFIG"])


def test_every_hop_to_a_host_is_https_to_a_name_the_certificate_covers(resources, settings, synthesized):
    """Listeners: HTTPS on 443 with ELB's TLS 1.3/1.2 policy and the certificate for the hosts' names; the
    gateway calls https://<host>.<domain>, a name of a private zone of the hosts' VPC that points at the
    host's own load balancer, and trusts the profile's private CA for it."""
    tls = settings.tls
    found = listeners(resources)
    assert len(found) == len(settings.hosts)
    (certificate_id,) = of_type(resources, "AWS::CertificateManager::Certificate")
    certificate = resources[certificate_id]["Properties"]
    # Each host by name, no wildcard (checkov CKV2_AWS_71): the key vouches for these hosts only.
    names = sorted(f"{host.name}.{tls.domain}" for host in settings.hosts)
    assert [certificate["DomainName"], *certificate["SubjectAlternativeNames"]] == names
    assert certificate["CertificateAuthorityArn"] == tls.private_ca_arn
    assert certificate["KeyAlgorithm"] == "RSA_2048"  # of the CA key's family (doctor compares them)
    for listener in found:
        assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
        assert listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
        assert listener["Certificates"] == [{"CertificateArn": {"Ref": certificate_id}}]
    (zone,) = of_type(resources, "AWS::Route53::HostedZone").values()
    assert zone["Properties"]["Name"] == f"{tls.domain}."
    assert zone["Properties"]["VPCs"] == [{"VPCId": {"Ref": "NetworkVpc7FB7348F"}, "VPCRegion": "us-east-1"}]
    records = {
        r["Properties"]["Name"]: r["Properties"]
        for r in of_type(resources, "AWS::Route53::RecordSet").values()
    }
    config = gateway_config(synthesized)
    for host in settings.hosts:
        name = f"{host.name}.{tls.domain}"
        record = records[f"{name}."]
        balancer = record["AliasTarget"]["HostedZoneId"]["Fn::GetAtt"][0]
        assert balancer.startswith(f"Host{host.name.replace('-', '')}LoadBalancer")
        assert f'\\"url\\":\\"https://{name}\\"' in config
    assert config.count(f'\\"trust_ca\\":\\"{tls.private_ca_arn}\\"') == len(settings.hosts)
    assert "http://" not in config


def hosting_variant(tmp_path, name: str, tls: dict) -> dict:
    """The self-hosted profile's hosting stack with another hosting.tls."""
    from genai_stack.config import HostTls
    from genai_stack.stage import ProfileStacks
    from tests.conftest import cdk_app

    profile = load_profile(PROFILE)
    hosting = profile.hosting.model_copy(update={"tls": HostTls.model_validate(tls)})
    profile = profile.model_copy(update={"hosting": hosting})
    app = cdk_app(tmp_path)
    stacks = ProfileStacks(app, name, profile=profile)
    assembly = app.synth()
    return {
        "hosting": assembly.get_stack_artifact(stacks.hosting.artifact_id).template["Resources"],
        "orchestration": assembly.get_stack_artifact(stacks.orchestration.artifact_id).template["Resources"],
    }


def test_a_public_certificate_is_validated_in_the_public_zone_and_trusted_without_a_private_ca(tmp_path):
    variant = hosting_variant(
        tmp_path, "public-cert", {"domain": "models.example.com", "public_zone_id": "Z0123456789ABCDEFGHIJ"}
    )
    resources = variant["hosting"]
    (certificate,) = of_type(resources, "AWS::CertificateManager::Certificate").values()
    names = ["llama-neuron.models.example.com", "mistral-gpu.models.example.com"]
    assert [
        certificate["Properties"]["DomainName"],
        *certificate["Properties"]["SubjectAlternativeNames"],
    ] == names
    assert certificate["Properties"]["ValidationMethod"] == "DNS"
    assert certificate["Properties"]["DomainValidationOptions"] == [
        {"DomainName": name, "HostedZoneId": "Z0123456789ABCDEFGHIJ"} for name in names
    ]
    assert "acm-pca" not in service_names(resources)  # nothing to read: public CAs are trusted
    assert all(listener["Protocol"] == "HTTPS" for listener in listeners(resources))
    gateway = json.dumps(variant["orchestration"])
    assert "trust_ca" not in gateway
    assert "acm-pca:" not in gateway


def test_plain_http_only_with_the_profiles_reason_which_the_listener_carries(tmp_path):
    from genai_stack.components.model_host_fleet import PLAINTEXT_REASON

    reason = "lab account: no domain of our own yet"
    variant = hosting_variant(tmp_path, "plaintext", {"allow_plaintext": True, "reason": reason})
    resources = variant["hosting"]
    assert not of_type(resources, "AWS::CertificateManager::Certificate")
    assert not of_type(resources, "AWS::Route53::HostedZone")
    http = {k: r for k, r in of_type(resources, "AWS::ElasticLoadBalancingV2::Listener").items()}
    assert len(http) == 2
    for logical_id, listener in http.items():
        assert "LoadBalancerHttp" in logical_id  # 0.1's construct ID: an unchanged listener on upgrade
        assert (listener["Properties"]["Protocol"], listener["Properties"]["Port"]) == ("HTTP", 80)
        assert listener["Metadata"][PLAINTEXT_REASON] == reason
        assert {s["id"] for s in listener["Metadata"]["checkov"]["skip"]} == {"CKV_AWS_2", "CKV_AWS_103"}
    assert '\\"url\\":\\"http://' in json.dumps(variant["orchestration"])
    # `genai-stack plan` shows each plain hop with the profile's reason.
    from genai_stack.cli.plan import host_hops

    hops = host_hops({"plaintext-hosting": {"Resources": resources}})
    assert [(h["protocol"], h["port"], h["plaintext_reason"]) for h in hops] == [("HTTP", 80, reason)] * 2


def test_plan_shows_every_hop_to_the_hosts_as_https(synthesized):
    from genai_stack.cli.plan import host_hops

    hops = host_hops(synthesized.templates[PROFILE])
    assert [(h["protocol"], h["port"], h["ssl_policy"]) for h in hops] == [
        ("HTTPS", 443, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    ] * 2


def test_health_checks_scaling_and_off_hours(resources, settings):
    for group in of_type(resources, "AWS::ElasticLoadBalancingV2::TargetGroup").values():
        assert group["Properties"]["HealthCheckPath"] == "/health"
        assert group["Properties"]["Port"] == 8000
    groups = of_type(resources, "AWS::AutoScaling::AutoScalingGroup")
    sizes = sorted((g["Properties"]["MinSize"], g["Properties"]["MaxSize"]) for g in groups.values())
    assert sizes == sorted((str(h.min_instances), str(h.max_instances)) for h in settings.hosts)
    for group in groups.values():
        assert group["Properties"]["HealthCheckType"] == "ELB"
        assert group["Properties"]["NotificationConfigurations"]
    policies = [p["Properties"] for p in of_type(resources, "AWS::AutoScaling::ScalingPolicy").values()]
    assert {
        p["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
        for p in policies
    } == {"ALBRequestCountPerTarget"}
    actions = [a["Properties"] for a in of_type(resources, "AWS::AutoScaling::ScheduledAction").values()]
    mistral = next(h for h in settings.hosts if h.name == "mistral-gpu")
    assert sorted((a["Recurrence"], a["MinSize"]) for a in actions) == sorted(
        [(mistral.off_hours.stop, 0), (mistral.off_hours.start, mistral.min_instances)]
    )
    assert {a["TimeZone"] for a in actions} == {"America/New_York"}


def test_unhealthy_hosts_and_5xx_raise_alarms(resources, settings):
    alarms = [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    assert len(alarms) == 5 * len(settings.hosts)
    named = {
        q["MetricStat"]["Metric"]["MetricName"] if "MetricStat" in q else None
        for a in alarms
        for q in a.get("Metrics", [{"MetricStat": {"Metric": a}}])
    }
    assert sorted(named - {None}) == [
        "GroupDesiredCapacity",
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "HealthyHostCount",
        "UnHealthyHostCount",
        "disk_used_percent",
    ]
    assert all(a["AlarmActions"] for a in alarms)
    assert all("TreatMissingData" in a for a in alarms)


def alarms_on(resources: dict, metric: str) -> list[dict]:
    found = []
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        names = [props.get("MetricName")] + [
            q["MetricStat"]["Metric"]["MetricName"] for q in props.get("Metrics", []) if "MetricStat" in q
        ]
        if metric in names:
            found.append(props)
    return found


def test_each_fleet_alarms_on_the_load_balancers_own_5xx(resources, settings):
    """503s for "no healthy target" come from the load balancer, not the targets: HTTPCode_ELB_5XX_Count,
    dimension LoadBalancer only (ALB CloudWatch metrics page)."""
    alarms = alarms_on(resources, "HTTPCode_ELB_5XX_Count")
    assert len(alarms) == len(settings.hosts)
    for alarm in alarms:
        assert [d["Name"] for d in alarm["Dimensions"]] == ["LoadBalancer"]
        assert alarm["Statistic"] == "Sum"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_no_healthy_host_alarms_only_while_the_group_wants_hosts_and_after_start_up(resources, settings):
    """HealthyHostCount alone is 0 every night for an off_hours fleet: the alarm also needs the group's
    desired capacity, and looks past a host's start-up budget."""
    from genai_stack.components.model_host_fleet import startup_timeout

    alarms = alarms_on(resources, "HealthyHostCount")
    assert len(alarms) == len(settings.hosts)
    budgets = sorted(int(startup_timeout(h).to_minutes()) for h in settings.hosts)
    windows = []
    for alarm in alarms:
        (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
        assert expression == "IF(desired >= 1 AND FILL(healthy, 0) < 1, 1, 0)"  # no targets: no data
        stats = {
            q["Id"]: q["MetricStat"]["Metric"]["MetricName"] for q in alarm["Metrics"] if "MetricStat" in q
        }
        assert stats == {"desired": "GroupDesiredCapacity", "healthy": "HealthyHostCount"}
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        windows.append(alarm["EvaluationPeriods"] * 5)
    assert all(w > b for w, b in zip(sorted(windows), budgets, strict=True))


def test_detailed_monitoring_is_off(resources):
    """Nothing reads AWS/EC2 per-instance metrics; detailed monitoring is paid per metric."""
    for template in of_type(resources, "AWS::EC2::LaunchTemplate").values():
        data = template["Properties"]["LaunchTemplateData"]
        assert data.get("Monitoring", {}).get("Enabled", False) is False


def test_the_gateway_runs_in_the_vpc_and_calls_the_hosts(synthesized):
    assert gateway_function(synthesized)["VpcConfig"]["SecurityGroupIds"]
    assert gateway_config(synthesized).count('\\"kind\\":\\"openai_http\\"') == 2


def test_the_default_security_group_is_emptied_and_balancers_log_access(resources):
    assert of_type(resources, "Custom::VpcRestrictDefaultSG")
    for balancer in of_type(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer").values():
        attributes = {a["Key"]: a["Value"] for a in balancer["Properties"]["LoadBalancerAttributes"]}
        assert attributes["access_logs.s3.enabled"] == "true"
        assert attributes["access_logs.s3.prefix"].startswith("alb/")
        assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"


def test_the_dashboard_has_a_section_per_host_with_accelerator_utilisation(synthesized, settings):
    (dashboard,) = synthesized.resources(PROFILE, "Observability", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for host in settings.hosts:
        assert f"Model host {host.name} ({host.instance_type})" in body
    assert body.count("Accelerator utilisation") == len(settings.hosts)
    assert "nvidia_smi_utilization_gpu" in body
    assert "ModelHost" in body
    assert "SEARCH('{GenAiStack/ModelHosts}" not in body  # it matched no NeuronCore series (issue 20)
    assert "NeuronCoreUtilization" in body  # stacks/templates/neuron_metrics.py, per ModelHost
    assert "mem_used_percent" in body
    assert "disk_used_percent" in body
    assert "HTTPCode_ELB_5XX_Count" in body
    for title in ("Requests", "Target response time (p90)", "Healthy / unhealthy hosts"):
        assert body.count(title) >= len(settings.hosts)


def test_an_existing_vpc_is_used_by_id_without_lookup_or_new_network(variant):
    from aws_cdk import assertions

    profile, assembly, stacks = variant
    network = profile.hosting.network
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert "missing" not in manifest  # no context lookup (Vpc.from_lookup) was needed
    template = assertions.Template.from_json(assembly.get_stack_artifact(stacks.hosting.artifact_id).template)
    for absent in ("AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::NatGateway", "AWS::EC2::VPCEndpoint"):
        template.resource_count_is(absent, 0)
    groups = template.find_resources("AWS::AutoScaling::AutoScalingGroup")
    assert len(groups) == len(profile.hosting.hosts)
    for group in groups.values():
        assert group["Properties"]["VPCZoneIdentifier"] == network.existing_private_subnet_ids
    for group in template.find_resources("AWS::EC2::SecurityGroup").values():
        assert group["Properties"]["VpcId"] == "vpc-0123456789abcdef0"


def test_the_key_lets_auto_scaling_launch_hosts_with_encrypted_volumes(synthesized):
    """EC2 Auto Scaling user guide, "Required AWS KMS key policy for use with encrypted volumes",
    example 1: the service-linked role uses the key and creates grants for AWS resources."""
    (key,) = synthesized.resources(PROFILE, "Foundation", "AWS::KMS::Key").values()
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    role = {
        "Fn::Join": [
            "",
            [
                "arn:aws:iam::",
                {"Ref": "AWS::AccountId"},
                ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
            ],
        ]
    }
    use = statements["AllowAutoScalingServiceLinkedRoleUse"]
    assert use["Principal"] == {"AWS": role}
    assert sorted(use["Action"]) == sorted(
        ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    )
    grants = statements["AllowAutoScalingServiceLinkedRoleGrants"]
    assert grants["Principal"] == {"AWS": role}
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_profiles_without_hosts_keep_auto_scaling_off_the_key(synthesized):
    (key,) = synthesized.resources("managed-api", "Foundation", "AWS::KMS::Key").values()
    assert "AutoScaling" not in json.dumps(key["Properties"]["KeyPolicy"])


def test_rolling_updates_keep_hosts_serving_and_wait_for_each_new_hosts_signal(resources, settings):
    """CloudFormation user guide, UpdatePolicy attribute (MinInstancesInService below MaxSize,
    WaitOnResourceSignals, PauseTime at most PT1H, ScheduledActions suspended with scheduled
    actions) and CreationPolicy attribute (ResourceSignal Count and Timeout)."""
    groups = of_type(resources, "AWS::AutoScaling::AutoScalingGroup")
    by_host = {
        h.name: next(g for k, g in groups.items() if k.startswith("Host" + h.name.replace("-", "")))
        for h in settings.hosts
    }
    # Each host's start-up budget (data/models.json "startup"): 8B bf16 with a Neuron compile, 7B on a GPU.
    timeouts = {"llama-neuron": "PT48M", "mistral-gpu": "PT38M"}
    for host in settings.hosts:
        group = by_host[host.name]
        rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert rolling["MinInstancesInService"] == host.min_instances >= 1
        assert rolling["MinInstancesInService"] < host.max_instances
        assert rolling["MaxBatchSize"] == 1
        assert rolling["WaitOnResourceSignals"] is True
        assert rolling["PauseTime"] == timeouts[host.name]
        assert "ScheduledActions" in rolling["SuspendProcesses"]
        assert group["UpdatePolicy"]["AutoScalingScheduledAction"] == {
            "IgnoreUnmodifiedGroupSizeProperties": True
        }
        assert group["CreationPolicy"] == {
            "ResourceSignal": {"Count": host.min_instances, "Timeout": timeouts[host.name]}
        }
        grace = int(group["Properties"]["HealthCheckGracePeriod"])
        assert grace == {"PT48M": 48 * 60, "PT38M": 38 * 60}[timeouts[host.name]]


def test_each_host_signals_its_own_group_in_the_hosting_stack(synthesized, resources):
    groups = of_type(resources, "AWS::AutoScaling::AutoScalingGroup")
    templates = of_type(resources, "AWS::EC2::LaunchTemplate")
    for logical_id, template in templates.items():
        script = json.dumps(template["Properties"]["LaunchTemplateData"]["UserData"])
        (group_id,) = [g for g in groups if g.startswith(logical_id.split("LaunchTemplate")[0])]
        assert f'readonly GROUP_LOGICAL_ID=\\"{group_id}\\"' in script
        assert 'readonly STACK_NAME=\\"self-hosted-hosting\\"' in script
    policies = [p["Properties"]["PolicyDocument"] for p in of_type(resources, "AWS::IAM::Policy").values()]
    signal = [s for p in policies for s in p["Statement"] if s.get("Sid") == "SignalOwnStack"]
    assert len(signal) == len(groups)
    assert all(s["Resource"] == {"Ref": "AWS::StackId"} for s in signal)
    foundation = json.dumps(synthesized.template(PROFILE, "Foundation"))
    assert "cloudformation:SignalResource" not in foundation  # not on the foundation's own stack


def test_without_the_key_statements_auto_scaling_could_not_launch_a_host(synthesized):
    """The access rows of AWSServiceRoleForAutoScaling (tests/access/rows/autoscaling_service_linked_role.py)
    pass with the key policy as synthesized and fail on the key policy before this change."""
    import copy

    from tests.access.conftest import deployment_of
    from tests.access.deployment import AUTO_SCALING_SLR
    from tests.access.rows import service_role_rows
    from tests.access.test_access import mismatches

    def failures(templates):
        deployment = deployment_of(synthesized, PROFILE, templates)
        role = deployment.roles[AUTO_SCALING_SLR]
        return mismatches(deployment, role, service_role_rows(role, deployment))

    assert failures(None) == []
    before = copy.deepcopy(synthesized.templates[PROFILE])
    (key,) = [r for r in before["Foundation"]["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    statements[:] = [s for s in statements if "AutoScaling" not in s.get("Sid", "")]
    # every allow row (launches, and the notifications' data keys); the three deny rows still hold
    assert len(failures(before)) == 9
