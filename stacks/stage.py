"""One profile's stacks, composed and wired by typed constructor arguments.

- `ProfileStacks` (a construct) builds the stacks of one profile under any scope. `app.py` puts it
  directly under the App, so the stacks are top-level and the stock CLI deploys them with
  `cdk deploy --all -c profile=NAME`: the CLI's `--all` selects only the main assembly's stacks, and a
  Stage's stacks live in a nested assembly ("No stack found in the main cloud assembly", measured
  with aws-cdk 2.1148.1).
- `GenAiStage` (a `cdk.Stage`) holds the same `ProfileStacks`, for teams that deploy a profile as a
  stage of their own CDK Pipelines app (`pipeline.add_stage(GenAiStage(...))`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import App, CfnResource, Environment, Stack, Stage, Tags, Token
from constructs import Construct

from genai_stack import PACKAGE_DIR
from genai_stack.bedrock_stack import BedrockStack
from genai_stack.catalog import cost_region, missing_types
from genai_stack.compliance import enable_checks
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PROFILE_CONTEXT
from genai_stack.config import PROFILE_TAG, PROJECT_TAG, Profile, ProfileError, load_profiles
from genai_stack.cost_stack import CostStack
from genai_stack.foundation_stack import FoundationStack
from genai_stack.hosting_stack import HostingStack
from genai_stack.inference_stack import InferenceStack
from genai_stack.observability_stack import ObservabilityStack
from genai_stack.orchestration_stack import OrchestrationStack
from genai_stack.planning.evaluation import gate_jobs, run_jobs
from genai_stack.props import PropsError, refuse_dicts
from genai_stack.retired_roles import keep_retired_roles
from genai_stack.training_stack import TrainingStack

PROJECT = "genai-stack"
# The feature flags the profiles are synthesized (and their templates tested) with: aws-cdk-lib's
# recommended flags at the pinned version, as `cdk init` writes them. app.py and the CLI pass them to
# the App; an app of a team's own that adds `ProfileStacks` or `GenAiStage` passes them too
# (`App(context=FEATURE_FLAGS)`): ProfileStacks refuses an App without them.
FEATURE_FLAGS: dict[str, object] = json.loads((PACKAGE_DIR / "data" / "cdk_feature_flags.json").read_text())


def _require_feature_flags(scope: Construct, construct_id: str) -> None:
    """The App must carry the project's feature flags: without them aws-cdk-lib falls back to its old
    defaults, and a profile fails to synthesize (an S3 access-log bucket's ACL, for one) or synthesizes
    to other resources than the ones the tests check."""
    missing = [flag for flag in FEATURE_FLAGS if scope.node.try_get_context(flag) is None]
    if missing:
        raise PropsError(
            f"ProfileStacks({construct_id!r})",
            [
                f"the App lacks {len(missing)} of genai-stack's {len(FEATURE_FLAGS)} feature flags (e.g. "
                f"{missing[0]}): create it with App(context=genai_stack.constructs.FEATURE_FLAGS), as "
                "app.py does"
            ],
        )


def _environment(profile: Profile, stack_prefix: str | None, env: Environment | None) -> Profile:
    """The profile as the environment a caller asks for (Profile.for_environment)."""
    for part in ("account", "region"):
        value = getattr(env, part, None) if env is not None else None
        if value is not None and Token.is_unresolved(value):
            raise PropsError(
                f"environment of profile {profile.name}",
                [f"env.{part}: give a concrete {part} (the profile's models are checked against it)"],
            )
    return profile.for_environment(
        name=stack_prefix, account=env.account if env else None, region=env.region if env else None
    )


@refuse_dicts
class ProfileStacks(Construct):
    """The stacks a profile asks for. Stack names are `<profile>-<part>`, e.g. `managed-api-foundation`.

    Composition order is dependency order: foundation (stateful) first, then the approach stacks,
    which register dashboard sections and alarms with the monitoring hub, and observability last.
    Every resource is tagged with the project, the profile and the profile's cost-allocation tag.

    One profile as several environments: `stack_prefix` replaces the profile's name in stack names,
    resource names and the profile tag (so two environments can share an account and region), and
    `env` the profile's account and region (the profile is validated again for that region).

    Example::

        from aws_cdk import App, Environment
        from genai_stack.config import load_profile
        from genai_stack.constructs import FEATURE_FLAGS, ProfileStacks

        app = App(context=FEATURE_FLAGS)
        profile = load_profile("profiles/support.yaml")
        ProfileStacks(app, "Dev", profile=profile, stack_prefix="support-dev",
                      env=Environment(account="111111111111", region="us-east-1"))
        ProfileStacks(app, "Prod", profile=profile, stack_prefix="support-prod",
                      env=Environment(account="222222222222", region="us-west-2"))
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        stack_prefix: str | None = None,
        env: Environment | None = None,
    ) -> None:
        profile = _environment(profile, stack_prefix, env)
        _require_feature_flags(scope, construct_id)
        super().__init__(scope, construct_id)
        # Read by constructs that name things shared by every profile in one account and region
        # (Powertools service names, API names): python_function.profile_scoped.
        self.node.set_context(PROFILE_CONTEXT, profile.name)
        self.profile = profile
        env = Environment(account=profile.account, region=profile.region)
        bedrock = profile.bedrock

        self.foundation = FoundationStack(
            self,
            "Foundation",
            env=env,
            stack_name=f"{profile.name}-foundation",
            description=f"genai-stack {profile.name}: KMS key, buckets, alarm topic (stateful, retained)",
            profile_name=profile.name,
            settings=profile.foundation,
            alarm_emails=profile.notifications.emails,
            knowledge_bases=bedrock.knowledge_bases if bedrock else (),
            aurora=bedrock.aurora if bedrock else None,
            gateway_cache=bool(profile.gateway and profile.gateway.cache.enabled),
            gateway_keys=bool(profile.gateway and profile.gateway.auth == "api_key"),
            gateway_spend=bool(profile.gateway and profile.gateway.allowances),
            gateway_feedback=bool(profile.gateway and profile.gateway.feedback),
            gateway_semantic_cache=profile.gateway.semantic_cache.dimensions
            if profile.gateway and profile.gateway.semantic_cache
            else None,
            gateway_image_days=profile.gateway.image_retention_days
            if profile.gateway and profile.gateway.images
            else None,
            host_volumes=bool(profile.hosting and profile.hosting.hosts),
            custom_models=bool(profile.training and profile.training.customizations),
            assistant_records=profile.assistant is not None,
            bedrock_invocation_logs=bool(bedrock and bedrock.invocation_logging.enabled),
        )
        keep_retired_roles(self.foundation, profile)  # until 0.3: stacks/retired_roles.py says why
        self.hub = MonitoringHub(alarm_topic=self.foundation.alarm_topic)
        if self.foundation.evidence is not None:
            self.hub.add_alarm(self.foundation.evidence.copy_failed)
            self.hub.add_alarm(self.foundation.evidence.copy_lost)

        self.bedrock: BedrockStack | None = None
        if bedrock is not None:
            self.bedrock = BedrockStack(
                self,
                "Bedrock",
                env=env,
                stack_name=f"{profile.name}-bedrock",
                description=f"genai-stack {profile.name}: Bedrock access, guardrail, knowledge bases",
                profile_name=profile.name,
                settings=bedrock,
                encryption_key=self.foundation.key,
                data_bucket=self.foundation.data_bucket,
                knowledge_base_storage=self.foundation.knowledge_base_storage,
                log_retention_days=profile.foundation.log_retention_days,
                hub=self.hub,
                gateway=profile.gateway,
                cost_tags={profile.cost_allocation.tag_key: profile.cost_allocation.tag_value},
                custom_serving=custom_serving(profile),
                evaluation=profile.evaluation,
                evaluation_jobs=run_jobs(profile),
            )

        self.hosting: HostingStack | None = None
        if profile.hosting is not None:
            self.hosting = HostingStack(
                self,
                "Hosting",
                env=env,
                stack_name=f"{profile.name}-hosting",
                description=f"genai-stack {profile.name}: EC2 model hosts serving open models",
                settings=profile.hosting,
                artifacts_bucket=self.foundation.artifacts_bucket,
                access_logs_bucket=self.foundation.log_bucket,
                encryption_key=self.foundation.key,
                alarm_topic=self.foundation.alarm_topic,
                log_retention_days=profile.foundation.log_retention_days,
                hub=self.hub,
                gateway_endpoints=profile.gateway.vpc_endpoints if profile.gateway else (),
            )

        self.inference: InferenceStack | None = None
        if profile.inference is not None:
            self.inference = InferenceStack(
                self,
                "Inference",
                env=env,
                stack_name=f"{profile.name}-inference",
                description=f"genai-stack {profile.name}: SageMaker inference endpoints",
                settings=profile.inference,
                profile_name=profile.name,
                training=profile.training,
                artifacts_bucket=self.foundation.artifacts_bucket,
                encryption_key=self.foundation.key,
                log_retention_days=profile.foundation.log_retention_days,
                hub=self.hub,
                cost_tags={profile.cost_allocation.tag_key: profile.cost_allocation.tag_value},
            )

        self.training: TrainingStack | None = None
        if profile.training is not None:
            self.training = TrainingStack(
                self,
                "Training",
                env=env,
                stack_name=f"{profile.name}-training",
                description=f"genai-stack {profile.name}: training pipelines, model registry, customization",
                settings=profile.training,
                inference=profile.inference,
                profile_name=profile.name,
                endpoint_roles=self.inference.roles if self.inference else {},
                data_bucket=self.foundation.data_bucket,
                artifacts_bucket=self.foundation.artifacts_bucket,
                encryption_key=self.foundation.key,
                log_retention_days=profile.foundation.log_retention_days,
                hub=self.hub,
                cost_tags={profile.cost_allocation.tag_key: profile.cost_allocation.tag_value},
                gates=gate_jobs(profile),
                judge=profile.evaluation.judge if profile.evaluation else None,
            )
            if self.inference is not None:
                # The deployer rolls endpoints the inference stack created.
                self.training.add_stack_dependency(self.inference)

        self.orchestration: OrchestrationStack | None = None
        if profile.gateway is not None and self.bedrock is not None:
            self.orchestration = OrchestrationStack(
                self,
                "Orchestration",
                env=env,
                stack_name=f"{profile.name}-orchestration",
                description=f"genai-stack {profile.name}: OpenAI-compatible model gateway",
                settings=profile.gateway,
                bedrock=self.bedrock,
                cache_table=self.foundation.cache_table,
                key_table=self.foundation.key_table,
                spend_table=self.foundation.spend_table,
                feedback_table=self.foundation.feedback_table,
                semantic_cache_index=self.foundation.semantic_cache_index_arn,
                custom_models=self.training.custom_models if self.training else None,
                profile_name=profile.name,
                encryption_key=self.foundation.key,
                log_retention_days=profile.foundation.log_retention_days,
                hub=self.hub,
                hosting=self.hosting,
                endpoints=self.inference.endpoint_names if self.inference else None,
                data_bucket=self.foundation.data_bucket,
                artifacts_bucket=self.foundation.artifacts_bucket,
                assistant=profile.assistant,
                assistant_records=self.foundation.assistant_records,
            )

        budgets_region = cost_region(profile.region)
        self.cost: CostStack | None = None
        if budgets_region != profile.region:
            self.cost = CostStack(
                self,
                "Cost",
                env=Environment(account=profile.account, region=budgets_region),
                stack_name=f"{profile.name}-cost",
                description=(
                    f"genai-stack {profile.name}: budgets, cost anomaly alerts ({profile.region} lacks them)"
                ),
                profile_name=profile.name,
                budget=profile.budget,
                cost_allocation=profile.cost_allocation,
                emails=profile.notifications.emails,
                bedrock_budget=self.bedrock is not None,
            )
        self.observability = ObservabilityStack(
            self,
            "Observability",
            env=env,
            stack_name=f"{profile.name}-observability",
            description=f"genai-stack {profile.name}: budget, cost anomaly alerts, dashboard"
            if self.cost is None
            else f"genai-stack {profile.name}: dashboard and the gateway's cost alarm",
            profile_name=profile.name,
            budget=profile.budget,
            cost_allocation=profile.cost_allocation,
            emails=profile.notifications.emails,
            hub=self.hub,
            bedrock_budget=self.bedrock is not None,
            gateway_cost=self.orchestration.gateway_cost if self.orchestration else None,
            budgets_elsewhere=budgets_region if self.cost is not None else None,
            invoking_roles=[
                *(self.orchestration.invoking_roles if self.orchestration else ()),
                *(self.bedrock.invoking_roles if self.bedrock else ()),
            ],
        )
        refuse_missing_types(profile, self.stacks)

        tags = Tags.of(self)
        tags.add(PROJECT_TAG, PROJECT)
        tags.add(PROFILE_TAG, profile.name)
        tags.add(profile.cost_allocation.tag_key, profile.cost_allocation.tag_value)
        for key, value in profile.tags.items():
            tags.add(key, value)

    @property
    def stacks(self) -> tuple[Stack, ...]:
        parts = (
            self.foundation,
            self.bedrock,
            self.hosting,
            self.inference,
            self.training,
            self.orchestration,
            self.observability,
            self.cost,
        )
        return tuple(s for s in parts if s is not None)


def custom_serving(profile: Profile) -> list[str]:
    """How the gateway's custom-model targets are served (on_demand, provisioned), for model access."""
    if profile.gateway is None or profile.training is None:
        return []
    serving = {c.name: c.serving for c in profile.training.customizations}
    return sorted(
        {
            serving[t.custom_model]
            for targets in profile.gateway.aliases.values()
            for t in targets
            if t.custom_model
        }
    )


def refuse_missing_types(profile: Profile, stacks: tuple[Stack, ...]) -> None:
    """Refuse, at synthesis, a stack that uses a resource type CloudFormation does not offer in the
    stack's region (stacks/data/regions.json): CloudFormation would fail the deploy on it. The message
    names the type and the approach, so a profile can drop what the region lacks."""
    problems = []
    for stack in stacks:
        missing = missing_types(stack.region)
        used = sorted(
            {child.cfn_resource_type for child in stack.node.find_all() if isinstance(child, CfnResource)}
            & missing
        )
        if used:
            problems.append(
                f"region: the {stack.stack_name} stack uses {', '.join(used)}, which CloudFormation does not "
                f"offer in {stack.region} (docs/regions.md)"
            )
    if problems:
        raise ProfileError(profile.name, problems)


@refuse_dicts
class GenAiStage(Stage):
    """A profile as a `cdk.Stage`, for CDK Pipelines; the stacks are those of `ProfileStacks`, with the
    same `stack_prefix` and `env` (docs/examples/pipeline_app.py promotes one profile through two).

    Example::

        pipeline.add_stage(
            GenAiStage(app, "Prod", profile=profile, stack_prefix="support-prod",
                       env=Environment(account="222222222222", region="us-west-2")),
            pre=[pipelines.ManualApprovalStep("PromoteToProd")],
        )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: Profile,
        stack_prefix: str | None = None,
        env: Environment | None = None,
    ) -> None:
        profile = _environment(profile, stack_prefix, env)
        super().__init__(scope, construct_id, env=Environment(account=profile.account, region=profile.region))
        self.profile_stacks = ProfileStacks(self, profile.name, profile=profile)


def add_profiles(app: App, selection: str | Sequence[str]) -> App:
    """Add the stacks of each selected profile (`selection`: a name, a path, `all` or a list) at the top
    level of `app`, so `cdk deploy --all` finds them, and check them with cdk-nag at synth."""
    for profile in load_profiles(selection):
        ProfileStacks(app, profile.name, profile=profile)
    enable_checks(app)
    return app
