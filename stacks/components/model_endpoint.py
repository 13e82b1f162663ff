"""ModelEndpoint: one SageMaker endpoint serving a model from the artifacts bucket (inference stack).

Built from one `genai_stack.config.InferenceEndpoint`:

- a model: the Deep Learning Container of `settings.container` (`catalog.image_uri`) with the weights
  read uncompressed from `s3://<artifacts>/<settings.model_prefix>` (ModelDataSource, S3Prefix,
  CompressionType None; SageMaker puts them at /opt/ml/model) and the serving options of the container
  (`container_environment`); network isolation on, since nothing is downloaded at run time;
- an endpoint configuration in one of three modes:
  * variant: one production variant `AllTraffic` holding the model, autoscaled on
    SageMakerVariantInvocationsPerInstance;
  * inference components (`settings.inference_components`): a variant without a model, with managed
    instance scaling (floor `min_instances`, 0 allowed) and least-outstanding-requests routing, plus one
    AWS::SageMaker::InferenceComponent that takes every accelerator of an instance; its copy count is
    autoscaled on SageMakerInferenceComponentInvocationsPerCopy and, when it can reach zero, a step
    scaling policy on a NoCapacityInvocationFailures alarm brings the first copy back
    (SageMaker developer guide, "Scale an endpoint to zero instances");
  * asynchronous (`settings.async_inference`): requests are read from `async/<endpoint>/input/`,
    results written to `async/<endpoint>/output/` (failures to `.../failure/`), autoscaled on
    ApproximateBacklogSizePerInstance (target `invocations_per_instance` queued requests per instance),
    with a HasBacklogWithoutCapacity step policy to start from zero instances (SageMaker developer guide,
    "Autoscale an asynchronous endpoint");
- data capture of requests and responses (JSON) to `s3://<artifacts>/data-capture/`, where SageMaker
  writes under `<endpoint>/<variant>/yyyy/mm/dd/hh/` ("Capture data": the S3 path is
  `s3://{destination-bucket-prefix}/{endpoint-name}/{variant-name}/yyyy/mm/dd/hh/filename.jsonl`), so
  everything of this endpoint lands under `data-capture/<endpoint>/`, the only prefix its role may write;
- with `approved_models` (a training pipeline deploys here): CloudFormation creates the endpoint and
  owns its settings, the model deployer owns which model it serves; the endpoint's configuration goes
  through the ApprovedModelConfig custom resource, so a later deploy keeps the approved model
  (lambdas/model_deployer/endpoint_settings.py, and the reasons in stacks/components/model_deployment.py);
- off hours (`settings.off_hours`): Application Auto Scaling scheduled actions that pin the capacity to 0
  at `stop` and restore min/max at `start`, in the profile's time zone;
- only where the profile opts in (`settings.monitoring_schedule`, null by default) and data capture is on:
  a Model Monitor data-quality schedule. SageMaker Model Monitor "is no longer open to new customers"
  (SageMaker developer guide, "Data capture",
  https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html), so this is for accounts
  that already use it; everyone else gets drift metrics from `DriftMonitor` (the inference stack). The
  prebuilt analyzer (`model_monitor_image_uri`) reads the captured data and writes statistics under
  `monitoring/<endpoint>/`. No baseline is attached: until a baselining job has produced
  `statistics.json` and `constraints.json` (e.g. with the SageMaker Python SDK's `suggest_baseline` over a
  sample of captured requests, written under `monitoring/<endpoint>/baseline/`, which the monitor role may
  read) and a `DataQualityBaselineConfig` points at them, the hourly job reports statistics only and no
  constraint violations;
- the CloudWatch log groups SageMaker writes to (`/aws/sagemaker/Endpoints/<endpoint>`, and
  `/aws/sagemaker/InferenceComponents/<component>` for inference components), created first with the
  platform key and the profile's retention, so SageMaker never creates them unencrypted and unbounded.

`monitor(hub)` adds the alarms (latency p90, 5XX, 4XX, utilisation; queue age for asynchronous endpoints)
and a dashboard section. The execution role (and the monitor role) come from `ModelEndpointRole`, which
lives in the foundation stack beside the bucket it grants access to.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, Fn, Stack, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from genai_stack import compliance
from genai_stack.catalog import accelerator_instances, image_uri, inference_instances
from genai_stack.compliance import Acknowledgement, nag_resource
from genai_stack.components.endpoint_layout import (
    DATA_CAPTURE_ROOT,
    STARTUP_TIMEOUT_SECONDS,
    application_autoscaling_cron,
    async_prefix,
    captures_data,
    check_names,
    container_environment,
    endpoint_log_group_names,
    inference_component_name,
    model_monitor_image,
    monitoring_prefix,
    monitoring_schedule_name,
    monitors_data_quality,
)
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_custom_resource import PythonCustomResource
from genai_stack.components.python_function import encrypted_log_group
from genai_stack.components.tag_conditions import request_tags, sagemaker_tag_on_create
from genai_stack.config import InferenceEndpoint

VARIANT = "AllTraffic"
# Model Monitor job size: the prebuilt analyzer is a Spark job over JSON lines; one ml.m5.large with a
# 30 GB volume is the SageMaker Python SDK's default monitoring cluster.
MONITOR_INSTANCE_TYPE = "ml.m5.large"
MONITOR_VOLUME_GB = 30
MONITOR_MAX_RUNTIME_SECONDS = 3600  # at most one schedule period for the default hourly schedule
PERIOD = Duration.minutes(5)
APPROVED_MODEL_CONFIG_ENTRY_POINT = "lambdas.model_deployer.endpoint_settings.on_event"
APPROVED_MODEL_CONFIGS = Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The endpoint's approved-model custom resource reads endpoint configurations (read-only) and "
        "creates copies named <endpoint>-v<version>-<digest> like the model deployer's. It must read the "
        "template's configuration, whose name CloudFormation generates and SageMaker lowercases in its "
        "ARN, so no exact ARN can be written for DescribeEndpointConfig."
    ),
)

# --------------------------------------------------------------------------------------------------


class ModelEndpoint(Construct):
    """A SageMaker model, endpoint configuration and endpoint for one profile endpoint, with autoscaling,
    data capture, off-hours schedules and a Model Monitor schedule (see the module docstring).

    `role` is the execution role of `ModelEndpointRole.role` (foundation stack); `monitor_role` is
    `ModelEndpointRole.monitor_role`, required exactly when data capture is on and a monitoring schedule is
    set. `region` must be the stack's concrete region: the container images are resolved at synth time.

    `approved_models`: a training pipeline deploys its approved versions here (lambdas/model_deployer).
    The endpoint then takes its configuration through `ApprovedModelConfig` (see `_endpoint_config_name`),
    so that no later deploy of this stack puts the initial model back.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: InferenceEndpoint,
        endpoint_name: str,
        role: iam.IRole,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        region: str,
        log_retention_days: int,
        monitor_role: iam.IRole | None = None,
        approved_models: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """`tags`: with `approved_models`, put on the endpoint configurations the approved-model custom
        resource creates, which it may create only with exactly them."""
        super().__init__(scope, construct_id)
        self.tags = dict(tags or {})
        check_names(settings, endpoint_name)
        if approved_models and settings.inference_components:
            # The profile refuses it too (stacks/profile/training.py training_problems), with the same reason.
            raise ValueError(
                f"{endpoint_name}: approved_models needs a real-time or asynchronous endpoint; on inference "
                "components the model belongs to the AWS::SageMaker::InferenceComponent, which "
                "UpdateEndpoint cannot change and CloudFormation owns"
            )
        if monitors_data_quality(settings) != (monitor_role is not None):
            raise ValueError(
                f"{endpoint_name}: monitor_role is required exactly when data capture is on and a monitoring "
                "schedule is set (pass ModelEndpointRole.monitor_role)"
            )
        self.settings = settings
        self.endpoint_name = endpoint_name
        self.region = region
        self.instance = inference_instances()[settings.instance_type]
        self.inference_component_name = (
            inference_component_name(endpoint_name) if settings.inference_components else None
        )
        self.is_async = settings.async_inference is not None
        stack = Stack.of(self)
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower(), region=region
        )
        bucket = artifacts_bucket.bucket_name
        startup = STARTUP_TIMEOUT_SECONDS[self.instance.accelerator]

        self.log_groups = []
        for index, name in enumerate(endpoint_log_group_names(settings, endpoint_name)):
            group = encrypted_log_group(
                self, f"Logs{index}", encryption_key=encryption_key, days=log_retention_days
            )
            group.node.default_child.log_group_name = name
            self.log_groups.append(group)

        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri(settings.container, region),
                environment=container_environment(settings),
                model_data_source=sagemaker.CfnModel.ModelDataSourceProperty(
                    s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                        s3_uri=f"s3://{bucket}/{settings.model_prefix}",
                        s3_data_type="S3Prefix",
                        compression_type="None",
                    )
                ),
            ),
        )

        # SageMaker pulls the image and the weights with the role when it creates the endpoint: create
        # the model, hence its configuration and endpoint, after the role's policies.
        self.model.node.add_dependency(role)

        initial_instances = max(1, settings.min_instances)
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT,
            instance_type=settings.instance_type,
            initial_instance_count=initial_instances,
            **self._variant_mode(startup),
        )
        # KmsKeyId encrypts the ML storage volume of the instances. The CreateEndpointConfig API reference:
        # "Certain Nitro-based instances include local storage ... You can't request a KmsKeyId when using
        # an instance type with local storage ... If you specify a value for KmsKeyId when using any
        # nitro-based instances with local storage, the call to CreateEndpointConfig fails." Their NVMe
        # instance store is encrypted by the Nitro hardware instead; captured data, async results and
        # logs are encrypted with the platform key either way.
        volume_key = None if self.instance.local_nvme else encryption_key.key_arn
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[variant],
            kms_key_id=volume_key,
            execution_role_arn=role.role_arn if settings.inference_components else None,
            data_capture_config=self._data_capture(bucket, encryption_key)
            if captures_data(settings)
            else None,
            async_inference_config=self._async_config(bucket, encryption_key) if self.is_async else None,
        )
        if settings.inference_components:
            # The configuration carries the role (an endpoint of inference components): SageMaker uses it
            # when it creates the endpoint, before any component exists.
            self.endpoint_config.node.add_dependency(role)

        self.approved_model_config: PythonCustomResource | None = None
        if approved_models:
            self.approved_model_config = self._approved_model_config(encryption_key, log_retention_days)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self._endpoint_config_name(),
        )
        for group in self.log_groups:
            self.endpoint.node.add_dependency(group)

        self.inference_component: sagemaker.CfnInferenceComponent | None = None
        if settings.inference_components:
            self.inference_component = sagemaker.CfnInferenceComponent(
                self,
                "Component",
                inference_component_name=self.inference_component_name,
                endpoint_name=self.endpoint.attr_endpoint_name,
                variant_name=VARIANT,
                specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                    model_name=self.model.attr_model_name,
                    compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                        # Every accelerator device of the instance. On ml.inf2 a device is one
                        # Inferentia2 chip, not a NeuronCore: the API counts "accelerators
                        # (GPUs and AWS Inferentia)" (SageMaker API reference,
                        # InferenceComponentComputeResourceRequirements), and Neuron containers
                        # are given whole devices, "the number of Inferentia/Trainium chips"
                        # (Neuron Containers FAQ). The runtime then reserves every core it sees
                        # (Neuron Runtime configuration guide), so the two cores per chip that
                        # TENSOR_PARALLEL_DEGREE counts need no NEURON_RT_VISIBLE_CORES.
                        number_of_accelerator_devices_required=self.instance.accelerators,
                        min_memory_required_in_mb=self._component_memory_mb(),
                    ),
                    startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                        model_data_download_timeout_in_seconds=startup,
                        container_startup_health_check_timeout_in_seconds=startup,
                    ),
                ),
                runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                    copy_count=initial_instances
                ),
            )

        self.scalable_target = self._autoscaling()
        self.monitoring_schedule: sagemaker.CfnMonitoringSchedule | None = None
        if monitor_role is not None:
            self.monitoring_schedule = self._model_monitor(bucket, encryption_key, monitor_role)
        self.alarms: list[cw.Alarm] = []

    # ------------------------------------------------------------------------------ endpoint owner

    def _endpoint_config_name(self) -> str:
        """The configuration CloudFormation gives the endpoint.

        Without approved models: the template's configuration. With them, the name the
        ApprovedModelConfig custom resource returns (lambdas/model_deployer/endpoint_settings.py): the
        template's configuration while the endpoint serves this stack's model, else a copy of it serving
        the approved model that is live. CloudFormation updates the endpoint only when this value
        changes (an AWS::SageMaker::Endpoint's EndpointConfigName: "Update requires: No interruption",
        i.e. UpdateEndpoint, CloudFormation template reference, AWS::SageMaker::Endpoint:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-endpoint.html),
        so it can never send a configuration serving the initial model once an approved one is live.
        RetainAllVariantProperties would not help: UpdateEndpoint retains DesiredInstanceCount,
        DesiredWeight and DataCaptureConfig, never the model (SageMaker API reference, VariantProperty).
        """
        if self.approved_model_config is None:
            return self.endpoint_config.attr_endpoint_config_name
        return self.approved_model_config.resource.get_att_string("EndpointConfigName")

    def _approved_model_config(self, key: kms.IKey, log_retention_days: int) -> PythonCustomResource:
        stack = Stack.of(self)

        def config_arn(name: str) -> str:
            return stack.format_arn(
                service="sagemaker", resource="endpoint-config", resource_name=name, region=self.region
            )

        chooser = PythonCustomResource(
            self,
            "ApprovedModelConfig",
            package="model_deployer",
            description=f"genai-stack: keep the approved model of {self.endpoint_name} across stack updates",
            resource_type="Custom::ApprovedModelEndpointConfig",
            properties={
                "EndpointName": self.endpoint_name,
                # A replaced template configuration (any settings change) has a new name: only then
                # does the resource run.
                "TemplateConfigName": self.endpoint_config.attr_endpoint_config_name,
                "Tags": self.tags,
            },
            encryption_key=key,
            log_retention_days=log_retention_days,
        )
        chooser.handler.function.node.default_child.handler = APPROVED_MODEL_CONFIG_ENTRY_POINT
        copies = config_arn(f"{self.endpoint_name}-v*")
        every_config = config_arn("*")
        for statement in (
            iam.PolicyStatement(
                sid="WatchTheEndpoint", actions=["sagemaker:DescribeEndpoint"], resources=[self.endpoint_arn]
            ),
            iam.PolicyStatement(
                sid="ReadTheConfigs", actions=["sagemaker:DescribeEndpointConfig"], resources=[every_config]
            ),
            iam.PolicyStatement(
                sid="CopyTheTemplateConfig",
                actions=["sagemaker:CreateEndpointConfig"],
                resources=[copies],
                conditions=request_tags(self.tags),
            ),
            *(
                [
                    sagemaker_tag_on_create(
                        "TagTheCopiesOnCreation", [copies], self.tags, ["CreateEndpointConfig"]
                    )
                ]
                if self.tags
                else []
            ),
            # CreateEndpointConfig with a KmsKeyId (volume, captured data): SageMaker uses the key
            # through grants the caller creates.
            iam.PolicyStatement(
                sid="LetTheEndpointUseItsKey",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
            iam.PolicyStatement(sid="CheckTheKey", actions=["kms:DescribeKey"], resources=[key.key_arn]),
        ):
            chooser.handler.function.add_to_role_policy(statement)
        compliance.acknowledge(
            chooser.handler.role,
            APPROVED_MODEL_CONFIGS.on(nag_resource(self, copies)),
            APPROVED_MODEL_CONFIGS.on(nag_resource(self, every_config)),
        )
        return chooser

    # ---------------------------------------------------------------------------------------- config

    def _variant_mode(self, startup: int) -> dict:
        settings = self.settings
        if settings.inference_components:
            return {
                # Off hours take the copies to zero: the instance floor must then be zero too, or the
                # endpoint would keep (and bill) min_instances idle instances overnight.
                "managed_instance_scaling": sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                    status="ENABLED",
                    min_instance_count=0 if settings.off_hours else settings.min_instances,
                    max_instance_count=settings.max_instances,
                ),
                "routing_config": sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                    routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                ),
            }
        mode = {
            "model_name": self.model.attr_model_name,
            "initial_variant_weight": 1,
            "model_data_download_timeout_in_seconds": startup,
            "container_startup_health_check_timeout_in_seconds": startup,
        }
        if not self.is_async:
            mode["routing_config"] = sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                routing_strategy="LEAST_OUTSTANDING_REQUESTS"
            )
        return mode

    def _component_memory_mb(self) -> int:
        """Host memory reserved for the one copy per instance: half of the instance's memory (the model
        server stages the weights through it), 1 GiB where the instance table does not know the type."""
        host = accelerator_instances().get(self.settings.instance_type.removeprefix("ml."))
        return int(host.memory_gib * 1024 // 2) if host else 1024

    def _data_capture(
        self, bucket: str, key: kms.IKey
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=self.settings.data_capture_percentage,
            # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh/: data-capture/<endpoint>/... in S3.
            destination_s3_uri=f"s3://{bucket}/{DATA_CAPTURE_ROOT}",
            kms_key_id=key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            # Captured as JSON text rather than base64: "If no headers are specified Amazon SageMaker AI
            # will by default base64 encode when capturing the data" (SageMaker API reference,
            # CaptureContentTypeHeader: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html).
            # The model deployer's configurations copy this whole block (lambdas/model_deployer/logic.py).
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                json_content_types=["application/json"]
            ),
        )

    def _async_config(
        self, bucket: str, key: kms.IKey
    ) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
        prefix = async_prefix(self.endpoint_name)
        return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
            output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                s3_output_path=f"s3://{bucket}/{prefix}output/",
                s3_failure_path=f"s3://{bucket}/{prefix}failure/",
                kms_key_id=key.key_arn,
            ),
            client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=self.settings.async_inference.max_concurrent_invocations_per_instance
            ),
        )

    # ----------------------------------------------------------------------------------- autoscaling

    def _autoscaling(self) -> appscaling.ScalableTarget:
        settings = self.settings
        if settings.inference_components:
            target = appscaling.ScalableTarget(
                self,
                "Scaling",
                service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
                resource_id=f"inference-component/{self.inference_component_name}",
                scalable_dimension="sagemaker:inference-component:DesiredCopyCount",
                min_capacity=settings.min_instances,
                max_capacity=settings.max_instances,
            )
            target.node.add_dependency(self.inference_component)
            target.scale_to_track_metric(
                "InvocationsPerCopy",
                target_value=settings.invocations_per_instance,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
            )
            # With no copy running, requests fail with NoCapacityInvocationFailures, and only a step
            # policy on that alarm starts the first copy (target tracking has nothing to divide by).
            wake_metric = self.metric("NoCapacityInvocationFailures", "Maximum", period=Duration.minutes(1))
        else:
            target = appscaling.ScalableTarget(
                self,
                "Scaling",
                service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
                resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                min_capacity=settings.min_instances,
                max_capacity=settings.max_instances,
            )
            target.node.add_dependency(self.endpoint)
            if self.is_async:
                target.scale_to_track_metric(
                    "BacklogPerInstance",
                    target_value=settings.invocations_per_instance,
                    custom_metric=cw.Metric(
                        namespace="AWS/SageMaker",
                        metric_name="ApproximateBacklogSizePerInstance",
                        dimensions_map={"EndpointName": self.endpoint_name},
                        statistic="Average",
                        period=Duration.minutes(1),
                    ),
                )
                wake_metric = cw.Metric(
                    namespace="AWS/SageMaker",
                    metric_name="HasBacklogWithoutCapacity",
                    dimensions_map={"EndpointName": self.endpoint_name},
                    statistic="Maximum",
                    period=Duration.minutes(1),
                )
            else:
                target.scale_to_track_metric(
                    "InvocationsPerInstance",
                    target_value=settings.invocations_per_instance,
                    predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
                )
                wake_metric = None
        can_reach_zero = settings.min_instances == 0 or settings.off_hours is not None
        if wake_metric is not None and can_reach_zero:
            self._scale_out_from_zero(target, wake_metric)
        if settings.off_hours is not None:
            zone = TimeZone.of(settings.off_hours.timezone)
            target.scale_on_schedule(
                "OffHoursStop",
                schedule=appscaling.Schedule.expression(
                    application_autoscaling_cron(settings.off_hours.stop)
                ),
                time_zone=zone,
                min_capacity=0,
                max_capacity=0,
            )
            target.scale_on_schedule(
                "OffHoursStart",
                schedule=appscaling.Schedule.expression(
                    application_autoscaling_cron(settings.off_hours.start)
                ),
                time_zone=zone,
                min_capacity=settings.min_instances,
                max_capacity=settings.max_instances,
            )
        return target

    def _scale_out_from_zero(self, target: appscaling.ScalableTarget, metric: cw.Metric) -> None:
        """One more copy (instance) as soon as a request finds no capacity."""
        action = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=Duration.minutes(5),
        )
        action.add_adjustment(adjustment=1, lower_bound=0)
        alarm = cw.Alarm(
            self,
            "NoCapacity",
            alarm_description=f"SageMaker endpoint {self.endpoint_name}: a request found no capacity",
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.ApplicationScalingAction(action))
        self.scale_out_alarm = alarm

    # ---------------------------------------------------------------------------------- monitoring

    def _model_monitor(
        self, bucket: str, key: kms.IKey, monitor_role: iam.IRole
    ) -> sagemaker.CfnMonitoringSchedule:
        """The opt-in Model Monitor schedule. CreateMonitoringSchedule fails in accounts that never used
        Model Monitor ("no longer open to new customers", model-monitor-data-capture.html)."""
        if self.inference_component_name is not None:
            # EndpointInput names an endpoint, not a component; Model Monitor "supports only endpoints that
            # host a single model" (model-monitor.html). The profile refuses it; this guards direct use.
            raise ValueError(f"{self.endpoint_name}: no Model Monitor on an inference-component endpoint")
        dq = sagemaker.CfnDataQualityJobDefinition
        # Unnamed: every property is create-only, so a change replaces the definition, which a fixed
        # name would block. The schedule takes the generated name from the ARN (".../<name>").
        self.data_quality_job = dq(
            self,
            "DataQualityJob",
            role_arn=monitor_role.role_arn,
            data_quality_app_specification=dq.DataQualityAppSpecificationProperty(
                image_uri=model_monitor_image(self.region).uri
            ),
            data_quality_job_input=dq.DataQualityJobInputProperty(
                endpoint_input=dq.EndpointInputProperty(
                    endpoint_name=self.endpoint.attr_endpoint_name,
                    local_path="/opt/ml/processing/input",
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=dq.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[
                    dq.MonitoringOutputProperty(
                        s3_output=dq.S3OutputProperty(
                            local_path="/opt/ml/processing/output",
                            s3_uri=f"s3://{bucket}/{monitoring_prefix(self.endpoint_name)}",
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=dq.MonitoringResourcesProperty(
                cluster_config=dq.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=MONITOR_INSTANCE_TYPE,
                    volume_size_in_gb=MONITOR_VOLUME_GB,
                    volume_kms_key_id=key.key_arn,
                )
            ),
            network_config=dq.NetworkConfigProperty(
                enable_network_isolation=True, enable_inter_container_traffic_encryption=True
            ),
            stopping_condition=dq.StoppingConditionProperty(
                max_runtime_in_seconds=MONITOR_MAX_RUNTIME_SECONDS
            ),
        )
        # The schedule's first job may start within the hour: its role's policies come first.
        self.data_quality_job.node.add_dependency(monitor_role)
        return sagemaker.CfnMonitoringSchedule(
            self,
            "DataQualitySchedule",
            monitoring_schedule_name=monitoring_schedule_name(self.endpoint_name),
            endpoint_name=self.endpoint.attr_endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=Fn.select(
                    1, Fn.split("/", self.data_quality_job.attr_job_definition_arn)
                ),
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                    schedule_expression=self.settings.monitoring_schedule
                ),
            ),
        )

    # ------------------------------------------------------------------------------------- metrics

    @property
    def invocation_dimensions(self) -> dict[str, str]:
        """AWS/SageMaker invocation metrics: per inference component, or per endpoint variant."""
        if self.inference_component_name:
            return {"InferenceComponentName": self.inference_component_name}
        return {"EndpointName": self.endpoint_name, "VariantName": VARIANT}

    def metric(self, name: str, statistic: str = "Sum", *, period: Duration = PERIOD) -> cw.Metric:
        """An AWS/SageMaker invocation metric of this endpoint (or its inference component)."""
        return cw.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map=self.invocation_dimensions,
            statistic=statistic,
            period=period,
        )

    def _queue_metric(self, name: str, statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name},
            statistic=statistic,
            period=PERIOD,
        )

    def utilisation(self) -> cw.IMetric:
        """Accelerator (GPU) or, on Inferentia2, host CPU utilisation in percent of the instance.

        /aws/sagemaker/Endpoints sums GPUUtilization over the GPUs (and CPUUtilization over the vCPUs), so
        the sum is divided by their number; inference components publish *Normalized variants (0-100 %)
        in /aws/sagemaker/InferenceComponents. SageMaker publishes no NeuronCore utilisation.
        """
        gpu = self.instance.accelerator == "gpu"
        if self.inference_component_name:
            return cw.Metric(
                namespace="/aws/sagemaker/InferenceComponents",
                metric_name="GPUUtilizationNormalized" if gpu else "CPUUtilizationNormalized",
                dimensions_map={"InferenceComponentName": self.inference_component_name},
                statistic="Average",
                period=PERIOD,
            )
        host = accelerator_instances().get(self.settings.instance_type.removeprefix("ml."))
        units = self.instance.accelerators if gpu else (host.vcpus if host else 1)
        raw = cw.Metric(
            namespace="/aws/sagemaker/Endpoints",
            metric_name="GPUUtilization" if gpu else "CPUUtilization",
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
            statistic="Average",
            period=PERIOD,
        )
        return cw.MathExpression(
            expression=f"raw / {units}",
            using_metrics={"raw": raw},
            label=f"{'GPU' if gpu else 'CPU'} utilisation (%)",
            period=PERIOD,
        )

    def monitor(
        self,
        hub: MonitoringHub,
        *,
        latency_p90_seconds: float = 60,
        server_errors: int = 5,
        client_errors: int = 50,
        utilisation_percent: float = 90,
        oldest_request_minutes: int = 30,
    ) -> list[cw.Alarm]:
        """Alarms (registered with the hub, so they notify the alarm topic) and a dashboard section.

        - model latency p90 above `latency_p90_seconds` for 15 minutes (ModelLatency is in microseconds);
        - Invocation5XXErrors >= `server_errors` and Invocation4XXErrors >= `client_errors` in 5 minutes;
        - utilisation (see `utilisation`) above `utilisation_percent` for 15 minutes: at max_instances the
          endpoint is out of capacity;
        - asynchronous endpoints: the oldest queued request older than `oldest_request_minutes`, and
          InvocationFailures >= `server_errors` in 5 minutes.
        """
        name = self.endpoint_name
        latency = self.metric("ModelLatency", "p90")
        alarms = []

        def alarm(alarm_id: str, metric: cw.IMetric, threshold: float, periods: int, what: str) -> None:
            created = cw.Alarm(
                self,
                f"{alarm_id}Alarm",
                alarm_description=f"SageMaker endpoint {name}: {what}",
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            hub.add_alarm(created)
            alarms.append(created)

        alarm(
            "LatencyP90",
            latency,
            latency_p90_seconds * 1_000_000,
            3,
            f"model latency p90 above {latency_p90_seconds:g} s",
        )
        alarm(
            "ServerErrors",
            self.metric("Invocation5XXErrors"),
            server_errors,
            1,
            f"{server_errors}+ 5XX errors in 5 minutes",
        )
        alarm(
            "ClientErrors",
            self.metric("Invocation4XXErrors"),
            client_errors,
            1,
            f"{client_errors}+ 4XX errors in 5 minutes",
        )
        alarm(
            "Utilisation",
            self.utilisation(),
            utilisation_percent,
            3,
            f"utilisation above {utilisation_percent:g} %",
        )
        if self.is_async:
            alarm(
                "OldestRequest",
                self._queue_metric("ApproximateAgeOfOldestRequest", "Maximum"),
                oldest_request_minutes * 60,
                1,
                f"a queued request has waited over {oldest_request_minutes} minutes",
            )
            alarm(
                "InvocationFailures",
                self._async_metric("InvocationFailures"),
                server_errors,
                1,
                f"{server_errors}+ failed asynchronous invocations in 5 minutes",
            )
        self.alarms.extend(alarms)

        if self.is_async:
            traffic = [
                self._async_metric("InvocationsProcesssed"),
                self._queue_metric("ApproximateBacklogSize", "Average"),
            ]
            errors = [
                self.metric("Invocation4XXErrors"),
                self.metric("Invocation5XXErrors"),
                self._async_metric("InvocationFailures"),
            ]
        else:
            traffic = [self.metric("Invocations")]
            errors = [self.metric("Invocation4XXErrors"), self.metric("Invocation5XXErrors")]
            if self.inference_component_name:
                errors.append(self.metric("NoCapacityInvocationFailures"))
        hub.add_section(
            f"SageMaker endpoint {name}",
            [
                cw.GraphWidget(title=f"{name}: requests", left=traffic, width=6),
                cw.GraphWidget(
                    title=f"{name}: model latency (microseconds)",
                    left=[self.metric("ModelLatency", "p50"), latency],
                    width=6,
                ),
                cw.GraphWidget(title=f"{name}: errors", left=errors, width=6),
                cw.GraphWidget(title=f"{name}: utilisation (%)", left=[self.utilisation()], width=6),
            ],
        )
        return alarms

    def _async_metric(self, name: str) -> cw.Metric:
        """Asynchronous-inference metrics published per endpoint variant ("Monitor asynchronous endpoint";
        `InvocationsProcesssed` is spelled so by SageMaker)."""
        return cw.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
            statistic="Sum",
            period=PERIOD,
        )

    # ---------------------------------------------------------------------------------------- grants

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """InvokeEndpoint (streaming too, or InvokeEndpointAsync) on this endpoint (and its component)."""
        actions = (
            ["sagemaker:InvokeEndpointAsync"]
            if self.is_async
            else ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"]
        )
        resources = [self.endpoint_arn]
        if self.inference_component_name:
            resources.append(
                Stack.of(self).format_arn(
                    service="sagemaker",
                    resource="inference-component",
                    resource_name=self.inference_component_name.lower(),
                    region=self.region,
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                )
            )
        return iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=resources)
