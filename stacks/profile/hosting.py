"""The profile's hosting section: the self-managed approach (EC2 model hosts)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from genai_stack.catalog import (
    ModelArchitecture,
    StartupBudget,
    accelerator_instances,
    model_architectures,
    model_servers,
    sizing_rules,
    startup_budget,
)
from genai_stack.profile.common import Slug, _Strict, located, repeated_names

# --------------------------------------------------------------------------------------------------
# Self-managed open models: EC2 model hosts

# Auto Scaling scheduled actions take 5-field cron expressions (minute hour day month weekday).
_CRON5 = r"^\S+( \S+){4}$"


class OffHours(_Strict):
    """Scale the fleet to zero outside working hours (Auto Scaling scheduled actions)."""

    stop: str = Field(pattern=_CRON5, description="cron, e.g. '0 20 * * MON-FRI'")
    start: str = Field(pattern=_CRON5, description="cron, e.g. '0 7 * * MON-FRI'")
    timezone: str = Field(default="UTC", pattern=r"^[A-Za-z_]+(/[A-Za-z_+-]+)*$")


class ModelSize(_Strict):
    """How big a served model is: a known architecture (data/models.json, from the model's config.json)
    or its parameter count. With the architecture the KV cache is sized exactly; without it, as a share
    of the weights. The weights' own name or S3 prefix says nothing of their size, hence this field."""

    architecture: str | None = Field(
        default=None, description="a known architecture (data/models.json), e.g. 'llama-3.1-8b'"
    )
    parameters_billions: float | None = Field(
        default=None, gt=0, le=2000, description="default: the architecture's parameter count"
    )
    bytes_per_parameter: float = Field(default=2, gt=0, le=4, description="2 for bf16/fp16, 1 for 8-bit")

    @model_validator(mode="after")
    def _known(self) -> ModelSize:
        if self.architecture is not None and self.architecture not in model_architectures():
            known = ", ".join(sorted(model_architectures()))
            raise ValueError(
                located(
                    "architecture",
                    f"{self.architecture!r} is not a known architecture (known: {known}); give "
                    "parameters_billions instead",
                )
            )
        if self.architecture is None and self.parameters_billions is None:
            raise ValueError(located("parameters_billions", "is required when no architecture is given"))
        return self

    @property
    def spec(self) -> ModelArchitecture | None:
        return model_architectures()[self.architecture] if self.architecture else None

    @property
    def billions(self) -> float:
        if self.parameters_billions is not None:
            return self.parameters_billions
        assert self.spec is not None  # _known
        return self.spec.parameters_billions

    @property
    def size_gb(self) -> float:
        """Weights in GB (10^9 bytes)."""
        return self.billions * self.bytes_per_parameter


class ModelWeights(ModelSize):
    """Weights in the artifacts bucket under models/<name>/ (put them there with `aws s3 sync`)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9._-]{1,64}$")

    @property
    def prefix(self) -> str:
        return f"models/{self.name}/"


_GIB = 2**30 / 1e9  # GB per GiB


def host_startup_budget(host: ModelHost) -> StartupBudget:
    """Launch to a passing /health for this host's model and server (data/models.json "startup")."""
    return startup_budget(host.model.size_gb, neuron=host.server == "vllm-neuron")


def sizing_problems(
    *,
    where: str = "",
    model: ModelSize,
    label: str,
    instance_type: str,
    neuron: bool,
    accelerator_memory_gb: float,
    host_memory_gib: float | None,
    max_model_len: int,
    max_num_seqs: int,
    volume_gb: int | None,
    fitting: dict[str, float],
) -> list[str]:
    """Do the weights, KV cache and compile fit the instance? One message per rule, each located at the
    field to change (rules and sources: data/models.json, "sources").

    - Neuron: host memory >= neuron_host_memory_factor x weights (load and compile pin the weights in
      host memory: aws-neuron-sdk#1222);
    - accelerator memory x utilization >= weights + KV cache, for max_model_len x max_num_seqs tokens on
      Neuron (allocated up front for the compiled batch) and one sequence of max_model_len on GPUs
      (vLLM pages the cache); KV bytes per token = 2 x layers x KV heads x head_dim x 2 (bf16);
    - max_model_len within the architecture's max_position_embeddings;
    - disk (when the profile sets it) >= weights + Neuron compiled artifacts + the AMI's own room.

    `fitting` maps instance types of the same accelerator to their host memory (GiB), to name one that fits.
    """
    rules = sizing_rules()
    problems = []
    weights = model.size_gb
    spec = model.spec
    if neuron and host_memory_gib is not None:
        needed = weights * rules.neuron_host_memory_factor
        if host_memory_gib * _GIB < needed:
            bigger = sorted((gib, name) for name, gib in fitting.items() if gib * _GIB >= needed)
            hint = f"use {bigger[0][1]} ({bigger[0][0]:g} GiB) or larger" if bigger else "no instance fits"
            problems.append(
                located(
                    f"{where}instance_type",
                    f"{instance_type!r} has {host_memory_gib:g} GiB of host memory; Neuron compiles and "
                    f"loads {label} ({weights:.1f} GB of weights) through host memory and needs about "
                    f"{rules.neuron_host_memory_factor:g}x the weights, {needed:.0f} GB (an 8B model was "
                    f"OOM-killed compiling with 32 GiB, aws-neuron-sdk#1222): {hint}",
                )
            )
    usable = accelerator_memory_gb * rules.accelerator_memory_utilization
    if spec is not None and max_model_len > spec.max_position_embeddings:
        problems.append(
            located(
                f"{where}max_model_len",
                f"{max_model_len} is above the {spec.max_position_embeddings} positions of {spec.name}",
            )
        )
    if spec is None:
        needed = weights * rules.unknown_architecture_kv_overhead
        if needed > usable:
            problems.append(
                located(
                    f"{where}model",
                    f"{label} needs about {needed:.0f} GB of accelerator memory (weights x "
                    f"{rules.unknown_architecture_kv_overhead:g} for the KV cache, no architecture given); "
                    f"{instance_type} has {accelerator_memory_gb:g} GB, {usable:.1f} GB usable",
                )
            )
        return problems + _disk_problems(where, weights, neuron, volume_gb)
    per_token_gb = spec.kv_bytes_per_token(rules.kv_cache_bytes_per_value) / 1e9
    sequences = max_num_seqs if neuron else 1
    kv = per_token_gb * max_model_len * sequences
    if weights > usable:
        problems.append(
            located(
                f"{where}model",
                f"{label} has {weights:.1f} GB of weights; {instance_type} has "
                f"{accelerator_memory_gb:g} GB of accelerator memory, {usable:.1f} GB usable: use a larger "
                "instance or 8-bit weights",
            )
        )
    elif weights + kv > usable:
        tokens = int((usable - weights) / per_token_gb / sequences)
        batch = f" x max_num_seqs {max_num_seqs}" if neuron else ""
        per = " per sequence" if neuron else ""
        problems.append(
            located(
                f"{where}max_model_len",
                f"{max_model_len}{batch} needs {kv:.1f} GB of KV cache ({per_token_gb * 1e6:.0f} kB per "
                f"token for {spec.name}) on top of {weights:.1f} GB of weights; {instance_type} has "
                f"{usable:.1f} GB usable ({accelerator_memory_gb:g} GB x "
                f"{rules.accelerator_memory_utilization:g}): at most {tokens} tokens fit{per}",
            )
        )
    return problems + _disk_problems(where, weights, neuron, volume_gb)


def _disk_problems(where: str, weights: float, neuron: bool, volume_gb: int | None) -> list[str]:
    if volume_gb is None:
        return []
    rules = sizing_rules()
    compiled = weights * rules.neuron_compiled_copies_of_weights if neuron else 0
    needed = weights + compiled + rules.os_reserve_gb
    if volume_gb >= needed:
        return []
    parts = f"{weights:.0f} GB of weights" + (f", {compiled:.0f} GB of compiled artifacts" if neuron else "")
    return [
        located(
            f"{where}volume_gb",
            f"{volume_gb} is too small: {parts} and {rules.os_reserve_gb:g} GB for the AMI need at least "
            f"{math.ceil(needed)} GB",
        )
    ]


class ModelHost(_Strict):
    """An Auto Scaling group of identical hosts serving one model behind an internal load balancer."""

    name: Slug
    instance_type: str
    server: Literal["vllm-gpu", "vllm-neuron"]
    model: ModelWeights
    min_instances: int = Field(default=1, ge=0, le=100)
    max_instances: int = Field(default=2, ge=1, le=100)
    requests_per_target_per_minute: int = Field(
        default=60, ge=1, description="target tracking on ALB requests"
    )
    max_model_len: int = Field(default=8192, ge=256, le=262_144)
    max_num_seqs: int = Field(
        default=8, ge=1, le=256, description="sequences served at once (on Neuron, the compiled batch size)"
    )
    volume_gb: int = Field(default=200, ge=50, le=16_000)
    off_hours: OffHours | None = None
    # One of the two pins the AMI: a fleet is replaced only when the profile (or the user's own
    # parameter) changes, never because AWS published a new Deep Learning AMI (Hosting._hosts).
    ami_id: str | None = Field(
        default=None,
        pattern=r"^ami-[0-9a-f]{8,17}$",
        description="the AMI of the hosts, in the profile's region (or ami_ssm_parameter)",
    )
    ami_ssm_parameter: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9_./-]{1,1010}$",
        description="an SSM parameter of your own holding the AMI id (or ami_id); not a public "
        "/aws/service/ 'latest' parameter, see docs/profiles/self-hosted.md",
    )

    @model_validator(mode="after")
    def _sizes(self) -> ModelHost:
        problems = []
        if self.min_instances > self.max_instances:
            problems.append(
                located(
                    "min_instances", f"{self.min_instances} is above max_instances ({self.max_instances})"
                )
            )
        if self.off_hours is not None and self.min_instances < 1:
            problems.append(
                located(
                    "min_instances",
                    "is 0 with off_hours: the fleet needs at least one host in "
                    "working hours, since request-count scaling cannot start from zero hosts",
                )
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class Network(_Strict):
    """A new VPC (private subnets, endpoints, flow logs) or an existing one by id (no lookup)."""

    cidr: str = Field(default="10.40.0.0/16", pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")
    max_azs: int = Field(default=2, ge=2, le=4)
    # A new VPC's zones by name. Without them the subnets take the first `max_azs` of Fn::GetAZs, whose
    # order "isn't guaranteed and can change when new Availability Zones are added" (CloudFormation,
    # Fn::GetAZs), and an interface endpoint fails to create in a zone its service does not offer:
    # `genai-stack doctor` names the zones that offer every endpoint the profile creates.
    availability_zones: list[Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")]] = Field(
        default_factory=list,
        max_length=4,
        description="a new VPC's zones (e.g. [us-east-1a, us-east-1b]) in place of max_azs; genai-stack "
        "doctor names the zones that offer every interface endpoint",
    )
    nat_gateways: int = Field(default=0, ge=0, le=4, description="0: no internet egress at all")
    existing_vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    existing_private_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list
    )
    existing_availability_zones: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _zones(self) -> Network:
        zones = self.availability_zones
        if zones and self.existing_vpc_id:
            raise ValueError(
                located(
                    "availability_zones",
                    "is for a new VPC; an existing one takes existing_availability_zones",
                )
            )
        if zones and "max_azs" in self.model_fields_set:
            raise ValueError(
                located("max_azs", "and availability_zones are both set: name the zones or count them")
            )
        if zones and (len(zones) < 2 or len(set(zones)) != len(zones)):
            raise ValueError(located("availability_zones", "needs at least two different zones"))
        return self

    @model_validator(mode="after")
    def _existing(self) -> Network:
        if self.existing_vpc_id and (
            len(self.existing_private_subnet_ids) < 2
            or len(self.existing_private_subnet_ids) != len(self.existing_availability_zones)
        ):
            raise ValueError(
                located(
                    "existing_private_subnet_ids",
                    "needs one private subnet per availability zone "
                    "(at least two) and existing_availability_zones in the same order",
                )
            )
        return self


def _ami_problems(host: ModelHost, where: str, accelerator: str) -> list[str]:
    """The AMI must be pinned. CloudFormation re-reads an SSM parameter on every deploy, and the public
    Deep Learning AMI parameters (/aws/service/deeplearning/.../latest/ami-id) follow AWS's releases:
    an unrelated deploy after a new DLAMI would replace every host (a rolling update and, on Neuron,
    a recompile). On Inf2, releases after the last Neuron SDK that serves LLMs there break serving."""
    if host.ami_id and host.ami_ssm_parameter:
        return [located(f"{where}.ami_id", "and ami_ssm_parameter are both set: name the AMI once")]
    if host.ami_ssm_parameter and host.ami_ssm_parameter.startswith("/aws/service/"):
        return [
            located(
                f"{where}.ami_ssm_parameter",
                f"{host.ami_ssm_parameter!r} is a public parameter that follows AWS's latest AMI: every "
                "deploy after a new release would replace the fleet; copy its current value into "
                "ami_id or into an SSM parameter of your own",
            )
        ]
    if host.ami_id or host.ami_ssm_parameter:
        return []
    if accelerator == "inferentia2":
        pinned = model_servers().neuron_last_inf2_release
        reason = (
            f"Neuron SDK releases after {pinned} no longer serve LLMs on Inf2, and the public Neuron "
            f"DLAMI parameter only follows the latest release; use a Neuron {pinned} DLAMI"
        )
    else:
        reason = (
            "the public GPU Deep Learning AMI parameter follows AWS's latest release, so a deploy after "
            "a new release would replace the fleet"
        )
    return [
        located(
            f"{where}.ami_ssm_parameter",
            f"is required (or ami_id): {reason}; put the AMI id in ami_id or in an SSM parameter of "
            "your own and name it here",
        )
    ]


# A DNS name of lower-case labels (hosts are served as <host name>.<domain>). ACM takes a certificate's
# first domain name up to 64 octets ("The first domain name you enter cannot exceed 64 octets, including
# periods": ACM API reference, RequestCertificate, DomainName); any host's name may be the first
# (stacks/components/host_names.py), so each `<host name>.<domain>` is at most 64 (Hosting checks it).
CERTIFICATE_NAME_LIMIT = 64
_DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_ACM_CERTIFICATE = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$"
_PRIVATE_CA = r"^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}$"
_CERTIFICATE_SOURCES = ("certificate_arn", "public_zone_id", "private_ca_arn")


class HostTls(_Strict):
    """How the gateway reaches the hosts' internal load balancers: HTTPS on 443, each host answering as
    `<host name>.<domain>` (records in a private hosted zone of the VPC) with a certificate for these
    names, the gateway verifying the certificate and the name. The certificate: `certificate_arn` (an ACM
    certificate of the profile's region covering every host's name, trusted by public CAs), `public_zone_id`
    (a public ACM certificate issued here, validated by DNS in that public hosted zone of a domain the
    team owns), or `private_ca_arn` (a private certificate issued here by that AWS Private CA, which the
    gateway then trusts). Plain HTTP only with `allow_plaintext: true` and a `reason`."""

    domain: str | None = Field(
        default=None,
        pattern=_DOMAIN,
        max_length=CERTIFICATE_NAME_LIMIT - 2,
        description="hosts answer as <host name>.<domain>, e.g. models.example.com",
    )
    certificate_arn: str | None = Field(default=None, pattern=_ACM_CERTIFICATE)
    public_zone_id: str | None = Field(
        default=None, pattern=r"^Z[0-9A-Z]{1,31}$", description="a public Route 53 hosted zone of the domain"
    )
    private_ca_arn: str | None = Field(default=None, pattern=_PRIVATE_CA)
    # A private certificate's key must be of the CA key's family, RSA or ECDSA ("the specified signing
    # algorithm family (RSA or ECDSA) must match the algorithm family of the CA's secret key": ACM API
    # reference, RequestCertificate, KeyAlgorithm); `genai-stack doctor` compares it with the CA's.
    private_key_algorithm: Literal["RSA_2048", "EC_prime256v1", "EC_secp384r1"] = Field(
        default="RSA_2048", description="with private_ca_arn: the certificate's key, of the CA key's family"
    )
    allow_plaintext: bool = Field(default=False, description="plain HTTP to the hosts; needs a reason")
    reason: str | None = Field(default=None, min_length=10, max_length=500)

    @model_validator(mode="after")
    def _one_way(self) -> HostTls:
        sources = [name for name in _CERTIFICATE_SOURCES if getattr(self, name)]
        if self.allow_plaintext:
            if not self.reason:
                raise ValueError(
                    located("reason", "is required with allow_plaintext: say why this hop may be unencrypted")
                )
            extra = [name for name in ("domain", *sources) if getattr(self, name)]
            if extra:
                raise ValueError(
                    located(extra[0], "is set with allow_plaintext: true, which serves plain HTTP: remove it")
                )
            return self
        if self.reason:
            raise ValueError(located("reason", "is set without allow_plaintext: true, where nothing uses it"))
        if "private_key_algorithm" in self.model_fields_set and not self.private_ca_arn:
            raise ValueError(
                located("private_key_algorithm", "is set without private_ca_arn, where nothing uses it")
            )
        if not self.domain:
            raise ValueError(
                located(
                    "domain",
                    "is required (hosts answer as <host name>.<domain> over HTTPS); or set "
                    "allow_plaintext: true with a reason",
                )
            )
        if len(sources) != 1:
            raise ValueError(
                located(
                    sources[1] if len(sources) > 1 else "certificate_arn",
                    f"give exactly one of {', '.join(_CERTIFICATE_SOURCES)} "
                    f"({'both ' + ' and '.join(sources) + ' are set' if sources else 'none is set'})",
                )
            )
        return self


class Hosting(_Strict):
    """The self-managed approach: open models on EC2 Inferentia2 or GPU hosts."""

    network: Network = Field(default_factory=Network)
    hosts: list[ModelHost] = Field(min_length=1, max_length=10)
    # Required (the validator below says what it takes): None only until validated.
    tls: HostTls | None = Field(
        default=None,
        description="HTTPS to the hosts (a domain and a certificate), or allow_plaintext and a reason",
    )

    @model_validator(mode="after")
    def _hosts(self) -> Hosting:
        problems = []
        if self.tls is None:
            problems.append(
                located(
                    "tls",
                    "is required: the gateway reaches the hosts over HTTPS, so give `domain` and one of "
                    "certificate_arn, public_zone_id or private_ca_arn; or `allow_plaintext: true` with a "
                    "`reason` for plain HTTP",
                )
            )
        problems += repeated_names(self, "hosts")
        for index, host in enumerate(self.hosts):
            where = f"hosts[{index}]"
            if (
                self.tls
                and self.tls.domain
                and len(name := f"{host.name}.{self.tls.domain}") > CERTIFICATE_NAME_LIMIT
            ):
                problems.append(
                    located(
                        f"{where}.name",
                        f"makes the host's name {name!r} {len(name)} characters long; ACM certificates take "
                        f"names of at most {CERTIFICATE_NAME_LIMIT}: shorten the host name or tls.domain",
                    )
                )
            spec = accelerator_instances().get(host.instance_type)
            if spec is None:
                known = ", ".join(sorted(accelerator_instances()))
                problems.append(
                    located(
                        f"{where}.instance_type",
                        f"{host.instance_type!r} is not a known inf2, g5 or "
                        f"g6 instance type (known: {known})",
                    )
                )
                continue
            expected = "vllm-neuron" if spec.accelerator == "inferentia2" else "vllm-gpu"
            if host.server != expected:
                problems.append(
                    located(
                        f"{where}.server",
                        f"{host.server!r} does not run on {host.instance_type} "
                        f"({spec.accelerator}); use {expected}",
                    )
                )
            problems += _ami_problems(host, where, spec.accelerator)
            budget = host_startup_budget(host)
            if budget.minutes > budget.limit_minutes:
                problems.append(
                    located(
                        f"{where}.model",
                        f"{host.model.name} needs about {budget.minutes} minutes from launch to a healthy "
                        f"server {budget.describe()}, above the {budget.limit_minutes} minutes "
                        "CloudFormation waits for a host in a rolling update (UpdatePolicy PauseTime): use "
                        "a smaller or quantized model (bytes_per_parameter)",
                    )
                )
            fitting = {
                n: i.memory_gib
                for n, i in accelerator_instances().items()
                if i.accelerator == spec.accelerator
            }
            problems += sizing_problems(
                where=f"{where}.",
                model=host.model,
                label=host.model.name,
                instance_type=host.instance_type,
                neuron=spec.accelerator == "inferentia2",
                accelerator_memory_gb=spec.accelerator_memory_gb,
                host_memory_gib=spec.memory_gib,
                max_model_len=host.max_model_len,
                max_num_seqs=host.max_num_seqs,
                volume_gb=host.volume_gb,
                fitting=fitting,
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self
