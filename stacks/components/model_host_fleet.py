"""ModelHostFleet: an Auto Scaling group of model servers behind an internal Application Load Balancer."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks import compliance
from stacks.catalog import accelerator_instances, ami_parameter
from stacks.components.model_host_user_data import ServerSpec, render_user_data
from stacks.components.monitoring import MonitoringHub
from stacks.components.python_function import encrypted_log_group, log_stream_arn
from stacks.config import ModelHost

PORT = 8000
HEALTH_PATH = "/health"
METRICS_NAMESPACE = "GenAiStack/ModelHosts"


class ModelHostFleet(Construct):
    """Hosts: the Deep Learning AMI of the accelerator (Neuron or NVIDIA GPU) from its public SSM
    parameter at deploy time, IMDSv2 only, an encrypted root volume, no public IP and no SSH (Session
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
        access_logs_bucket: s3.IBucket | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
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
        alb_group.add_ingress_rule(client_security_group, ec2.Port.tcp(80), "the model gateway")
        alb_group.add_egress_rule(self.security_group, ec2.Port.tcp(PORT), "the model servers")
        self.security_group.add_ingress_rule(alb_group, ec2.Port.tcp(PORT), "the load balancer")

        user_data = ec2.UserData.custom(
            render_user_data(
                ServerSpec(
                    host_name=host.name,
                    kind=host.server,
                    model_name=host.model.name,
                    model_s3_uri=f"s3://{artifacts_bucket.bucket_name}/{prefix}",
                    region=stack.region,
                    port=PORT,
                    health_path=HEALTH_PATH,
                    tensor_parallel_size=spec.tensor_parallel_size,
                    max_model_len=host.max_model_len,
                    max_num_seqs=host.max_num_seqs,
                    log_group_name=logs.log_group_name,
                    metrics_namespace=METRICS_NAMESPACE,
                )
            )
        )
        launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            instance_type=ec2.InstanceType(host.instance_type),
            machine_image=ec2.MachineImage.from_ssm_parameter(
                host.ami_ssm_parameter or ami_parameter(spec.accelerator)
            ),
            role=self.role,
            security_group=self.security_group,
            user_data=user_data,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            associate_public_ip_address=False,
            detailed_monitoring=True,
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
                grace_period=Duration.minutes(30),
            ),
            update_policy=autoscaling.UpdatePolicy.rolling_update(
                min_instances_in_service=0, pause_time=Duration.minutes(30)
            ),
            notifications=[autoscaling.NotificationConfiguration(topic=alarm_topic)],
            group_metrics=[autoscaling.GroupMetrics.all()],
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
        listener = self.load_balancer.add_listener(
            "Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=False
        )
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
        compliance.skip_checkov(listener.node.default_child, *compliance.INTERNAL_HTTP_LISTENER)
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
        self.url = f"http://{self.load_balancer.load_balancer_dns_name}"
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
            period=Duration.minutes(5),
        )

    def monitor(self, hub: MonitoringHub) -> None:
        period = Duration.minutes(5)
        unhealthy = self._target_metric("UnHealthyHostCount", "Maximum")
        healthy = self._target_metric("HealthyHostCount", "Minimum")
        errors = self._target_metric("HTTPCode_Target_5XX_Count", "Sum")
        requests = self._target_metric("RequestCount", "Sum")
        latency = self._target_metric("TargetResponseTime", "p90")
        for alarm in (
            cw.Alarm(
                self,
                "UnhealthyHosts",
                metric=unhealthy,
                threshold=1,
                evaluation_periods=3,
                alarm_description=f"Model host {self.host.name}: a host failed health checks for 15 minutes",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "ServerErrors",
                metric=errors,
                threshold=10,
                evaluation_periods=1,
                alarm_description=f"Model host {self.host.name}: 10 or more 5xx in 5 minutes",
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ):
            hub.add_alarm(alarm)
        if self.host.server == "vllm-gpu":
            # The CloudWatch agent's nvidia_gpu plugin, rolled up per fleet (model_host_user_data.py).
            utilisation: cw.IMetric = cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="nvidia_smi_utilization_gpu",
                dimensions_map={"ModelHost": self.host.name},
                statistic="Average",
                period=period,
                label="GPU utilisation %",
            )
        else:
            # neuron-monitor-cloudwatch.py (AWS Neuron tools) names its own metrics: search for them.
            utilisation = cw.MathExpression(
                expression=f"SEARCH('{{{METRICS_NAMESPACE}}} NeuronCore', 'Average', 300)",
                label="NeuronCore",
                period=period,
                using_metrics={},
            )
        hub.add_section(
            f"Model host {self.host.name} ({self.host.instance_type})",
            [
                cw.GraphWidget(title="Requests", left=[requests], width=6),
                cw.GraphWidget(title="Target response time (p90)", left=[latency], width=6),
                cw.GraphWidget(title="Healthy / unhealthy hosts", left=[healthy, unhealthy], width=6),
                cw.GraphWidget(title="Accelerator utilisation", left=[utilisation], width=6),
            ],
        )
