"""ModelHostFleet: an Auto Scaling group of model servers behind an internal Application Load Balancer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsii
from aws_cdk import (
    CfnAutoScalingRollingUpdate,
    CfnAutoScalingScheduledAction,
    CfnCreationPolicy,
    CfnResourceSignal,
    CfnUpdatePolicy,
    Duration,
    IStableStringProducer,
    Lazy,
    Stack,
)
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import accelerator_instances
from genai_stack.components.host_names import HostNames
from genai_stack.components.model_host_user_data import (
    NEURON_CORE_METRIC,
    ServerSpec,
    render_user_data,
    wheelhouse_prefix,
)
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import encrypted_log_group, log_stream_arn
from genai_stack.config import ModelHost, host_startup_budget

PORT = 8000
HEALTH_PATH = "/health"
METRICS_NAMESPACE = "GenAiStack/ModelHosts"
# Template metadata on a plain-HTTP listener: the profile's reason (hosting.tls.reason), for reviewers.
PLAINTEXT_REASON = "genai-stack:plaintext-reason"

# How long a new host may take from launch to a passing /health: the boot script waits this long,
# then signals CloudFormation FAILURE; CloudFormation waits as long for the signal (CreationPolicy
# and the rolling update's PauseTime) and the load balancer's grace period covers it too. Derived per
# host from its weights (catalog.startup_budget; figures and sources in data/models.json "startup":
# the Neuron guide's compile time per GB, download and start-up assumptions, a margin); the profile
# refuses a host whose budget is above the hour CloudFormation allows a rolling update's PauseTime.
# The host signals FAILURE this long before CloudFormation's timeout (which starts when the instance is
# launched, as the host's clock does at boot): a host that cannot serve rolls the update back at once
# instead of letting the timeout run out.
SIGNAL_MARGIN_MINUTES = 2
ALARM_PERIOD = Duration.minutes(5)


def startup_timeout(host: ModelHost) -> Duration:
    """Launch to signal: the host's start-up budget (at most one hour, config.py refuses more)."""
    return Duration.minutes(host_startup_budget(host).minutes)


def min_instances_in_service(host: ModelHost) -> int:
    """Hosts kept serving while a rolling update replaces the others: the fleet's minimum, but below
    MaxSize, which CloudFormation requires ("MinInstancesInService ... must be less than the MaxSize
    of the Auto Scaling group", UpdatePolicy attribute page)."""
    return max(0, min(host.min_instances, host.max_instances - 1))


@jsii.implements(IStableStringProducer)
class _LogicalIdOf:
    """The logical ID of a resource built later in the same stack, produced when the template renders."""

    def __init__(self, resource: Callable[[], Any]) -> None:
        self._resource = resource

    def produce(self) -> str:
        resource = self._resource()
        return Stack.of(resource).get_logical_id(resource)


class ModelHostFleet(Construct):
    """Hosts: the AMI the profile pins (an id, or an SSM parameter of the user's), IMDSv2 only,
    an encrypted root volume, no public IP and no SSH (Session
    Manager only), user data that fetches the weights from S3 and runs an OpenAI-compatible server.
    Front: an internal ALB reachable only from `client_security_group`, health checks on /health,
    target tracking on requests per target, optional off-hours scale to zero, rolling replacement
    when the launch template changes, ASG notifications to the alarm topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        host: ModelHost,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        client_security_group: ec2.ISecurityGroup,
        role: iam.IRole,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        alarm_topic: sns.ITopic,
        log_retention_days: int,
        names: HostNames | None,
        plaintext_reason: str | None = None,
        access_logs_bucket: s3.IBucket | None = None,
    ) -> None:
        """`names`: the host's DNS name and certificate (HTTPS on 443); None only with the profile's
        `plaintext_reason` (hosting.tls.allow_plaintext), which serves plain HTTP on 80."""
        super().__init__(scope, construct_id)
        if names is None and not plaintext_reason:
            raise ValueError(f"model host {host.name}: plain HTTP needs the profile's reason")
        stack = Stack.of(self)
        spec = accelerator_instances()[host.instance_type]
        logs = encrypted_log_group(self, "Logs", encryption_key=encryption_key, days=log_retention_days)

        self.role = role
        own = iam.Policy(
            self,
            "LogsAndMetrics",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    # DescribeLogStreams acts on the group (its `:*` ARN); the other two on a stream
                    # of it, whose ARN is built from the group's name (log_stream_arn says why).
                    resources=[logs.log_group_arn, log_stream_arn(logs)],
                ),
                iam.PolicyStatement(
                    # `aws cloudformation signal-resource` after /health passes (or fails): the
                    # CloudFormation API reference, SignalResource; the action acts on the stack
                    # (Service Authorization Reference, AWS CloudFormation, resource type "stack").
                    sid="SignalOwnStack",
                    actions=["cloudformation:SignalResource"],
                    resources=[stack.stack_id],
                ),
                iam.PolicyStatement(
                    sid="PutOwnMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
                ),
            ],
        )
        compliance.acknowledge(
            own,
            compliance.LOG_STREAM_WILDCARD.on(compliance.nag_resource(self, log_stream_arn(logs))),
            compliance.NAMESPACED_METRICS,
        )
        prefix = host.model.prefix

        self.security_group = ec2.SecurityGroup(
            self,
            "HostSecurityGroup",
            vpc=vpc,
            allow_all_outbound=True,
            description=f"model host {host.name}: the load balancer only",
        )
        alb_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description=f"model host {host.name} load balancer: the gateway only",
        )
        front_port = 443 if names is not None else 80
        alb_group.add_ingress_rule(client_security_group, ec2.Port.tcp(front_port), "the model gateway")
        alb_group.add_egress_rule(self.security_group, ec2.Port.tcp(PORT), "the model servers")
        self.security_group.add_ingress_rule(alb_group, ec2.Port.tcp(PORT), "the load balancer")

        user_data = ec2.UserData.custom(
            render_user_data(
                ServerSpec(
                    host_name=host.name,
                    kind=host.server,
                    model_name=host.model.name,
                    model_s3_uri=f"s3://{artifacts_bucket.bucket_name}/{prefix}",
                    wheelhouse_s3_uri=f"s3://{artifacts_bucket.bucket_name}/{wheelhouse_prefix()}",
                    region=stack.region,
                    port=PORT,
                    health_path=HEALTH_PATH,
                    tensor_parallel_size=spec.tensor_parallel_size,
                    max_model_len=host.max_model_len,
                    max_num_seqs=host.max_num_seqs,
                    log_group_name=logs.log_group_name,
                    metrics_namespace=METRICS_NAMESPACE,
                    signal_by_minutes=startup_timeout(host).to_minutes() - SIGNAL_MARGIN_MINUTES,
                    stack_name=stack.stack_name,
                    # The group is built below; its logical ID is known when the template renders.
                    group_logical_id=Lazy.string(_LogicalIdOf(lambda: self.group.node.default_child)),
                )
            )
        )
        startup = startup_timeout(host)
        # An instance profile of its own construct ID (not the launch template's built-in "Profile"),
        # holding the role. Its role is never swapped while hosts run with it: IAM warns that removing a
        # role from an instance profile that running instances use breaks them ("Make sure that you do
        # not have any Amazon EC2 instances running with the role you are about to remove":
        # https://docs.aws.amazon.com/IAM/latest/APIReference/API_RemoveRoleFromInstanceProfile.html).
        # A new role gets a new profile instead, hence a new launch template version, which the rolling
        # update below rolls out host by host; the old profile goes once its hosts are gone.
        instance_profile = iam.InstanceProfile(self, "InstanceProfile", role=role)
        launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            instance_type=ec2.InstanceType(host.instance_type),
            # Pinned by the profile (config.py _ami_problems refuses the public `latest` parameters).
            machine_image=(
                ec2.MachineImage.generic_linux({stack.region: host.ami_id})
                if host.ami_id
                else ec2.MachineImage.from_ssm_parameter(host.ami_ssm_parameter)
            ),
            instance_profile=instance_profile,
            security_group=self.security_group,
            user_data=user_data,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            associate_public_ip_address=False,
            # EC2 detailed monitoring (1-minute AWS/EC2 metrics, paid per metric) is off: no alarm or
            # widget reads AWS/EC2; the hosts' health is read from the load balancer and the CloudWatch
            # agent (monitor below). EC2 user guide, "Manage detailed monitoring for your EC2 instances":
            # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/manage-detailed-monitoring.html
            detailed_monitoring=False,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/sda1",
                    volume=ec2.BlockDeviceVolume.ebs(
                        host.volume_gb,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        kms_key=encryption_key,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=vpc,
            vpc_subnets=subnets,
            launch_template=launch_template,
            min_capacity=host.min_instances,
            max_capacity=host.max_instances,
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=startup,
            ),
            notifications=[autoscaling.NotificationConfiguration(topic=alarm_topic)],
            group_metrics=[autoscaling.GroupMetrics.all()],
        )
        # Each new host signals SUCCESS once its /health answers, or FAILURE when it gives up
        # (model_host.sh.tmpl, step 7): creation waits for min_instances signals, and a rolling
        # update replaces one host at a time, keeping min_instances_in_service serving, waiting
        # for each new host's signal and rolling back on FAILURE or timeout. CloudFormation user
        # guide, CreationPolicy attribute and UpdatePolicy attribute (WaitOnResourceSignals,
        # PauseTime, SuspendProcesses):
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatepolicy.html
        # SuspendProcesses (CDK's default list) includes ScheduledActions, which the UpdatePolicy page
        # requires when a group has scheduled actions (off_hours). A fleet that off_hours scaled
        # to zero has no host to replace: the update changes the launch template and waits for
        # no signal; the morning's hosts start from the new template and their signals, sent
        # outside an update, are refused, which the script logs and ignores.
        # Both policies by hand: CDK's `signals` and `wait_on_resource_signals` would also grant
        # SignalResource on AWS::StackId in the role's stack (the foundation), not this one.
        waits = host.min_instances > 0
        # A new host reads its weights and signals with its role's policies: start no host before they
        # exist (the role's own policies and LogsAndMetrics above).
        self.group.node.add_dependency(role, own)
        group_resource: autoscaling.CfnAutoScalingGroup = self.group.node.default_child
        if waits:
            group_resource.cfn_options.creation_policy = CfnCreationPolicy(
                resource_signal=CfnResourceSignal(count=host.min_instances, timeout=startup.to_iso_string())
            )
        group_resource.cfn_options.update_policy = CfnUpdatePolicy(
            auto_scaling_rolling_update=CfnAutoScalingRollingUpdate(
                max_batch_size=1,
                min_instances_in_service=min_instances_in_service(host),
                pause_time=startup.to_iso_string(),
                wait_on_resource_signals=waits,
                suspend_processes=[
                    "HealthCheck",
                    "ReplaceUnhealthy",
                    "AZRebalance",
                    "AlarmNotification",
                    "ScheduledActions",
                    "InstanceRefresh",
                ],
            ),
            auto_scaling_scheduled_action=CfnAutoScalingScheduledAction(
                ignore_unmodified_group_size_properties=True
            ),
        )

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=subnets,
            internet_facing=False,
            security_group=alb_group,
            drop_invalid_header_fields=True,
        )
        if access_logs_bucket is not None:
            self.load_balancer.log_access_logs(access_logs_bucket, prefix=f"alb/{host.name}")
        if names is not None:
            # TLS 1.3 and 1.2 only, forward secrecy: ELB's recommended policy ("Security policies for
            # your Application Load Balancer", ELBSecurityPolicy-TLS13-1-2-2021-06,
            # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html).
            listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_certificate_manager(names.certificate)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=False,
            )
        else:
            # The 0.1 listener's construct ID: a profile that keeps plain HTTP sees no change.
            listener = self.load_balancer.add_listener(
                "Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=False
            )
            compliance.skip_checkov(listener.node.default_child, *compliance.INTERNAL_HTTP_LISTENER)
            listener.node.default_child.add_metadata(PLAINTEXT_REASON, plaintext_reason)
        self.target_group = listener.add_targets(
            "Servers",
            port=PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.group],
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(30),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            deregistration_delay=Duration.seconds(60),
        )
        compliance.acknowledge(
            self.load_balancer, *compliance.internal_load_balancer(access_logs_bucket is None)
        )
        self.group.scale_on_request_count(
            "RequestsPerTarget", target_requests_per_minute=host.requests_per_target_per_minute
        )
        if host.off_hours is not None:
            zone = host.off_hours.timezone
            self.group.scale_on_schedule(
                "OffHoursStop",
                schedule=autoscaling.Schedule.expression(host.off_hours.stop),
                time_zone=zone,
                min_capacity=0,
                desired_capacity=0,
            )
            self.group.scale_on_schedule(
                "OffHoursStart",
                schedule=autoscaling.Schedule.expression(host.off_hours.start),
                time_zone=zone,
                min_capacity=host.min_instances,
                desired_capacity=host.min_instances,
            )
        self.url = (
            names.add_host(host.name, self.load_balancer)
            if names is not None
            else f"http://{self.load_balancer.load_balancer_dns_name}"
        )
        self.host = host

    def _target_metric(self, name: str, statistic: str) -> cw.Metric:
        """AWS/ApplicationELB per target group, dimensioned by the GetAtt full names (the CDK's own
        target group metrics split the listener ARN, which the observability stack cannot do)."""
        return cw.Metric(
            namespace="AWS/ApplicationELB",
            metric_name=name,
            dimensions_map={
                "LoadBalancer": self.load_balancer.load_balancer_full_name,
                "TargetGroup": self.target_group.target_group_full_name,
            },
            statistic=statistic,
            period=ALARM_PERIOD,
        )

    def _load_balancer_metric(self, name: str, statistic: str) -> cw.Metric:
        """A metric the load balancer itself publishes: dimension LoadBalancer only (HTTPCode_ELB_5XX_Count
        has no TargetGroup dimension: "CloudWatch metrics for your Application Load Balancer",
        https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html)."""
        return cw.Metric(
            namespace="AWS/ApplicationELB",
            metric_name=name,
            dimensions_map={"LoadBalancer": self.load_balancer.load_balancer_full_name},
            statistic=statistic,
            period=ALARM_PERIOD,
        )

    def _host_metric(self, name: str, statistic: str, label: str) -> cw.Metric:
        """A CloudWatch agent metric rolled up per fleet (model_host_user_data.cloudwatch_agent_config)."""
        return cw.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"ModelHost": self.host.name},
            statistic=statistic,
            period=ALARM_PERIOD,
            label=label,
        )

    def startup_periods(self) -> int:
        """Alarm periods that cover a new host's start-up (launch to a passing /health): a host that is
        still starting is neither healthy nor a fault. Every off_hours morning and every scale-out
        starts hosts, so the host-count alarms look past this window."""
        return -(-int(startup_timeout(self.host).to_minutes()) // int(ALARM_PERIOD.to_minutes())) + 1

    def monitor(self, hub: MonitoringHub) -> None:
        unhealthy = self._target_metric("UnHealthyHostCount", "Maximum")
        healthy = self._target_metric("HealthyHostCount", "Minimum")
        errors = self._target_metric("HTTPCode_Target_5XX_Count", "Sum")
        balancer_errors = self._load_balancer_metric("HTTPCode_ELB_5XX_Count", "Sum")
        requests = self._target_metric("RequestCount", "Sum")
        latency = self._target_metric("TargetResponseTime", "p90")
        # Auto Scaling publishes the group metrics every minute (group_metrics above): "EC2 Auto
        # Scaling group metrics", https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-metrics.html
        desired = cw.Metric(
            namespace="AWS/AutoScaling",
            metric_name="GroupDesiredCapacity",
            dimensions_map={"AutoScalingGroupName": self.group.auto_scaling_group_name},
            statistic="Minimum",
            period=ALARM_PERIOD,
        )
        startup = self.startup_periods()
        name = self.host.name
        alarm, never = hub.alarm, cw.TreatMissingData.NOT_BREACHING
        # No healthy host while the fleet should run. HealthyHostCount is 0 both when every host fails
        # and when off_hours scaled the fleet to 0 at night, so the alarm reads "the group wants hosts
        # (desired >= 1) and none is healthy": a fleet stopped by its schedule (desired 0) never
        # alarms, and a morning start or a replacement is given the start-up budget. A gap in either
        # metric is no evidence of a dead fleet (notBreaching); requests that find no healthy host are
        # 503s from the load balancer itself, alarmed on by BalancerErrors.
        alarm(
            self,
            "NoHealthyHost",
            metric=cw.MathExpression(
                # FILL: with no target registered (every host gone, launches failing) the load balancer
                # publishes no HealthyHostCount at all ("no data for a metric, the metric is not
                # reported", ALB CloudWatch metrics page): that gap is zero healthy hosts.
                expression="IF(desired >= 1 AND FILL(healthy, 0) < 1, 1, 0)",
                using_metrics={"desired": desired, "healthy": healthy},
                label="wanted hosts but none healthy",
                period=ALARM_PERIOD,
            ),
            threshold=1,
            periods=startup,
            description=(
                f"Model host {name}: the group wants hosts but none passed /health for "
                f"{startup * 5} minutes (longer than a host's start-up); the gateway falls back or fails"
            ),
            missing=never,
        )
        # A host that stays unhealthy past its start-up budget (a new host is unhealthy while it loads
        # or compiles its model). No data: no registered target to count (notBreaching).
        alarm(
            self,
            "UnhealthyHosts",
            metric=unhealthy,
            threshold=1,
            periods=startup,
            description=(
                f"Model host {name}: a host failed health checks for {startup * 5} minutes "
                "(longer than its start-up)"
            ),
            missing=never,
        )
        # The servers' own 5xx. The load balancer publishes the count only for periods with requests:
        # no data means no requests, hence no errors (notBreaching).
        alarm(
            self,
            "ServerErrors",
            metric=errors,
            threshold=10,
            description=f"Model host {name}: 10 or more 5xx from the servers in 5 minutes",
            missing=never,
        )
        # The load balancer's own 5xx: 503 when no target is registered or healthy, 502/504 when a
        # server drops or times out. Published only for periods with such responses (notBreaching).
        alarm(
            self,
            "BalancerErrors",
            metric=balancer_errors,
            threshold=5,
            description=(
                f"Model host {name}: 5 or more 5xx from the load balancer itself in 5 minutes "
                "(503: no healthy host; 502/504: a server dropped or timed out)"
            ),
            missing=never,
        )
        # A full root volume stops the server (weights, compiled models and logs live there). The
        # agent publishes every minute while a host runs; no host (off_hours), no data: notBreaching.
        alarm(
            self,
            "DiskFull",
            metric=self._host_metric("disk_used_percent", "Maximum", "disk used % (fullest host)"),
            threshold=90,
            periods=3,
            description=f"Model host {name}: a host's root volume is 90 % full or more for 15 min",
            missing=never,
        )
        if self.host.server == "vllm-gpu":
            # The CloudWatch agent's nvidia_gpu plugin, rolled up per fleet (model_host_user_data.py).
            utilisation = self._host_metric("nvidia_smi_utilization_gpu", "Average", "GPU utilisation %")
        else:
            # Published by the host's own neuron-monitor reader (model_host_user_data.NEURON_METRICS).
            utilisation = self._host_metric(NEURON_CORE_METRIC, "Average", "NeuronCore utilisation %")
        hub.add_section(
            f"Model host {self.host.name} ({self.host.instance_type})",
            [
                cw.GraphWidget(title="Requests", left=[requests], width=6),
                cw.GraphWidget(title="Target response time (p90)", left=[latency], width=6),
                cw.GraphWidget(title="Healthy / unhealthy hosts", left=[healthy, unhealthy], width=6),
                cw.GraphWidget(title="Accelerator utilisation", left=[utilisation], width=6),
                cw.GraphWidget(
                    title="Load balancer 5xx / server 5xx", left=[balancer_errors, errors], width=6
                ),
                cw.GraphWidget(
                    title="Memory / disk used % (fullest host)",
                    left=[
                        self._host_metric("mem_used_percent", "Maximum", "memory used %"),
                        self._host_metric("disk_used_percent", "Maximum", "disk used %"),
                    ],
                    width=6,
                ),
            ],
        )
