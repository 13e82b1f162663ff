"""The whole profile: every section, and the checks across sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from genai_stack.catalog import (
    cost_region,
    supported_regions,
    unsupported_reason,
)
from genai_stack.profile.assistant import Assistant, assistant_problems
from genai_stack.profile.bedrock import Bedrock, bedrock_catalog_problems
from genai_stack.profile.budget import Budget, CostAllocation, Notifications
from genai_stack.profile.common import RESERVED_TAG_KEYS, ProfileError, TagKey, TagValue, _Strict, located
from genai_stack.profile.errors import _describe
from genai_stack.profile.evaluation import Evaluation, evaluation_problems, gate_problems
from genai_stack.profile.foundation import Foundation
from genai_stack.profile.gateway import Gateway, gateway_problems
from genai_stack.profile.hosting import Hosting
from genai_stack.profile.inference import Inference, inference_problems
from genai_stack.profile.training import NAME_PREFIX_LIMIT, Training, training_problems


class Profile(_Strict):
    """One deployment of genai-stack: what to build, where, and what it may cost."""

    model_config = ConfigDict(title="genai-stack profile")

    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$",
        description="Lower-case slug; stack names are derived from it (NAME-foundation, ...)",
    )
    description: str = Field(min_length=1, max_length=300)
    region: str = Field(description="AWS region the stacks deploy to")
    account: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="12-digit account id; omit for an environment-agnostic account",
    )
    # The folder the profile's relative file paths (prompts) are read from: its file's folder.
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    def for_environment(
        self, *, name: str | None = None, account: str | None = None, region: str | None = None
    ) -> Profile:
        """This profile as another environment (dev, stage, prod): its own name (stack names, resource
        names and the profile tag derive from it), account and region. Validated again, so a region
        that lacks a model the profile uses is refused with the profile's messages."""
        given = {"name": name, "account": account, "region": region}
        updates = {key: value for key, value in given.items() if value}
        if not updates:
            return self
        try:
            profile = Profile.model_validate(
                self.model_dump(exclude_unset=True) | updates, context={"base_dir": self._base_dir}
            )
        except ValidationError as error:
            where = ", ".join(f"{key} {value}" for key, value in updates.items())
            problems = [line for e in error.errors(include_url=False) for line in _describe(e).splitlines()]
            raise ProfileError(f"{self.name} as {where}", problems) from None
        profile._base_dir = self._base_dir
        return profile

    @field_validator("account", mode="before")
    @classmethod
    def _account_as_text(cls, value: Any) -> Any:
        # Unquoted in YAML, an account id without a leading zero is read as a number (one with a
        # leading zero stays text: _UniqueKeyLoader); its digits are the id.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    cost_allocation: CostAllocation
    notifications: Notifications = Field(default_factory=Notifications)
    budget: Budget
    foundation: Foundation = Field(default_factory=Foundation)
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=40, description="Extra tags for every resource"
    )
    bedrock: Bedrock | None = Field(default=None, description="The managed-API approach (Amazon Bedrock)")
    hosting: Hosting | None = Field(default=None, description="Self-managed open models on EC2 hosts")
    inference: Inference | None = Field(default=None, description="SageMaker inference endpoints")
    training: Training | None = Field(
        default=None, description="SageMaker training pipelines and Bedrock model customization"
    )
    gateway: Gateway | None = Field(default=None, description="The OpenAI-compatible model gateway")
    evaluation: Evaluation | None = Field(
        default=None,
        description="Evaluations as code: sets, Bedrock evaluation jobs, schedule (docs/evaluation.md)",
    )
    assistant: Assistant | None = Field(
        default=None, description="An Amazon Lex V2 customer assistant in front of the gateway"
    )

    @field_validator("region")
    @classmethod
    def _supported_region(cls, region: str) -> str:
        regions = supported_regions()
        if region not in regions:
            raise ValueError(
                f"is not a supported region: it {unsupported_reason(region)} "
                f"(supported: {', '.join(regions)}; docs/regions.md)"
            )
        return region

    @field_validator("bedrock")
    @classmethod
    def _bedrock_in_region(cls, bedrock: Bedrock | None, info: ValidationInfo) -> Bedrock | None:
        region = info.data.get("region")
        if bedrock is None or region is None:
            return bedrock
        problems = bedrock_catalog_problems(bedrock, region)
        if problems:
            raise ValueError("\n".join(problems))
        return bedrock

    @field_validator("hosting")
    @classmethod
    def _certificate_in_region(cls, hosting: Hosting | None, info: ValidationInfo) -> Hosting | None:
        """A load balancer takes ACM certificates of its own region only ("To use a certificate with
        Elastic Load Balancing, you must request or import the certificate in the same Region as your
        load balancer": ELB user guide, "SSL certificates for your Application Load Balancer"). Private
        CAs are regional too (AWS Private CA user guide, "Regions"), and the gateway reads the CA's
        certificate through the acm-pca endpoint of the hosts' region."""
        region = info.data.get("region")
        tls = hosting.tls if hosting is not None else None
        if tls is None or region is None:
            return hosting
        for field, what, needs in (
            ("certificate_arn", "a certificate", "the load balancers there take certificates of"),
            ("private_ca_arn", "a CA", "the hosts' certificate is issued and its CA read in"),
        ):
            arn = getattr(tls, field)
            if arn and (elsewhere := arn.split(":")[3]) != region:
                raise ValueError(
                    located(
                        f"tls.{field}",
                        f"is {what} of {elsewhere}, not of {region}: "
                        f"{needs} {region} only; use one of {region}",
                    )
                )
        return hosting

    @model_validator(mode="after")
    def _spend_cap_beside_the_roles(self) -> Profile:
        """The Budgets action names the invoking roles, which the profile's own stacks create: it can
        only live in a stack of their region, so not where the budgets move to us-east-1."""
        # A knowledge base on a Kendra index invokes no model (the index embeds its documents itself).
        invokes = self.gateway is not None or bool(
            self.bedrock and any(not kb.on_kendra for kb in self.bedrock.knowledge_bases)
        )
        if self.budget.stop_invocations is not None and not invokes:
            raise ValueError(
                located(
                    "budget.stop_invocations",
                    "has no role to stop: it denies invocation to the gateway and the knowledge bases, "
                    "and this profile has neither; remove it",
                )
            )
        if self.budget.stop_invocations is not None and cost_region(self.region) != self.region:
            raise ValueError(
                located(
                    "budget.stop_invocations",
                    f"is not available in {self.region}: the budgets live in a {cost_region(self.region)} "
                    "stack there (docs/regions.md), and its action cannot name this region's roles; "
                    "remove it and rely on the tenants' allowances (gateway.tenants[].monthly_usd)",
                )
            )
        return self

    @model_validator(mode="after")
    def _gates_have_an_evaluation(self) -> Profile:
        if problems := gate_problems(self.training, self.evaluation, self.inference):
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _zones_in_region(self) -> Profile:
        """A VPC's zones (network.availability_zones, existing_availability_zones) are the region's."""
        networks = {
            "hosting.network": self.hosting.network if self.hosting else None,
            "gateway.network": self.gateway.network if self.gateway else None,
        }
        problems = [
            located(
                f"{where}.{field}",
                f"{zone!r} is not a zone of {self.region}: use {self.region}a, {self.region}b, ...",
            )
            for where, network in networks.items()
            if network is not None
            for field in ("availability_zones", "existing_availability_zones")
            for zone in getattr(network, field)
            if zone[:-1] != self.region
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @field_validator("inference")
    @classmethod
    def _inference_in_region(cls, inference: Inference | None, info: ValidationInfo) -> Inference | None:
        if inference is not None and (problems := inference_problems(inference, info.data.get("region"))):
            raise ValueError("\n".join(problems))
        return inference

    @field_validator("training")
    @classmethod
    def _training_in_region(cls, training: Training | None, info: ValidationInfo) -> Training | None:
        if training is None:
            return training
        problems = training_problems(training, info.data.get("inference"), info.data.get("region"))
        profile_name = info.data.get("name") or ""
        for section, items in (
            ("pipelines", training.pipelines),
            ("customizations", training.customizations),
        ):
            for index, item in enumerate(items):
                if len(f"{profile_name}-{item.name}") > NAME_PREFIX_LIMIT:
                    problems.append(
                        located(
                            f"{section}[{index}].name",
                            f"{item.name!r} makes '{profile_name}-{item.name}', longer than "
                            f"{NAME_PREFIX_LIMIT} characters (SageMaker and Bedrock names derive from it)",
                        )
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return training

    @model_validator(mode="before")
    @classmethod
    def _note_sections(cls, data: Any, info: ValidationInfo) -> Any:
        # The sections the file gives: a section that failed its own validation is missing from
        # info.data, and checks that read it must not report it as absent too.
        if isinstance(data, dict) and isinstance(info.context, dict):
            info.context["given"] = set(data)
        return data

    @field_validator("gateway")
    @classmethod
    def _gateway_models(cls, gateway: Gateway | None, info: ValidationInfo) -> Gateway | None:
        if gateway is None:
            return gateway
        given = (info.context or {}).get("given", set())
        if any(
            section in given and section not in info.data
            for section in ("bedrock", "hosting", "training", "inference")
        ):
            return gateway  # the section's own errors are reported; checked against it once it is valid
        problems = gateway_problems(
            gateway,
            info.data.get("bedrock"),
            info.data.get("hosting"),
            info.data.get("training"),
            info.data.get("inference"),
        )
        if problems:
            raise ValueError("\n".join(problems))
        return gateway

    @field_validator("evaluation")
    @classmethod
    def _evaluation_targets(cls, evaluation: Evaluation | None, info: ValidationInfo) -> Evaluation | None:
        if evaluation is None:
            return evaluation
        given = (info.context or {}).get("given", set())
        if any(section in given and section not in info.data for section in ("bedrock", "gateway")):
            return evaluation  # the section's own errors are reported first
        problems = evaluation_problems(
            evaluation,
            info.data.get("bedrock"),
            info.data.get("gateway"),
            info.data.get("training"),
            info.data.get("region"),
        )
        if problems:
            raise ValueError("\n".join(problems))
        return evaluation

    @field_validator("assistant")
    @classmethod
    def _assistant_gateway(cls, assistant: Assistant | None, info: ValidationInfo) -> Assistant | None:
        if assistant is None or "gateway" in (info.context or {}).get("given", set()) - set(info.data):
            return assistant  # the gateway's own errors are reported first
        problems = assistant_problems(assistant, info.data.get("gateway"), info.data.get("region"))
        if problems:
            raise ValueError("\n".join(problems))
        return assistant

    @field_validator("tags")
    @classmethod
    def _reserved_tags(cls, tags: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        cost_allocation = info.data.get("cost_allocation")
        reserved = set(RESERVED_TAG_KEYS) | ({cost_allocation.tag_key} if cost_allocation else set())
        clash = sorted(reserved & set(tags))
        if clash:
            raise ValueError(f"sets {', '.join(clash)}, which genai-stack sets itself on every resource")
        return tags
