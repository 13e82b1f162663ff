"""The monthly cost model behind `genai-stack cost`, `plan` and `profiles`.

Fixed parts are counted on the synthesized templates (what will be deployed: keys, dashboards,
alarms, secrets, hosted zones, NAT gateways, interface endpoints per zone, load balancers, WAF web
ACLs and rules) and on the profile (model host instances and the hours they run). Usage parts are
token prices of the profile's primary Bedrock model (and WAF request fees). Every line carries the
unit price it used and where that price comes from (stacks/data/*.json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache

from genai_stack import PACKAGE_DIR
from genai_stack.catalog import (
    accelerator_instances,
    bedrock_catalog,
    bedrock_image_prices,
    bedrock_prices,
    inference_instances,
    provenance,
    training_instances,
)
from genai_stack.config import OffHours, Profile
from genai_stack.observability import custom_metric_sets
from genai_stack.planning.schedules import monthly_hours
from genai_stack.profile.gateway import image_models as image_models_of

DATA = PACKAGE_DIR / "data"
HOURS_PER_MONTH = 730


@cache
def _json(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


def fixed_price(key: str) -> Price:
    entry = _json("fixed_prices.json")["prices"][key]
    return Price(entry["usd"], entry["unit"], f"{entry['source']} (read {entry['retrieved']})")


def network_price(key: str) -> Price:
    data = _json("ec2_accelerators.json")
    usd = data["network_hourly_usd_us_east_1"][key]
    return Price(usd, "hour", f"{data['sources']['network']}")


def instance_price(instance_type: str) -> Price:
    usd = accelerator_instances()[instance_type].hourly_usd_us_east_1
    return Price(usd, "instance-hour", provenance("ec2_accelerators.json", "instances", instance_type))


def sagemaker_price(instance_type: str) -> Price:
    usd = inference_instances()[instance_type].hourly_usd_us_east_1
    return Price(usd, "instance-hour", provenance("sagemaker.json", "inference_instances", instance_type))


def token_prices(model: str) -> tuple[Price, Price]:
    data = _json("bedrock_prices.json")
    source = f"{data['source']} (read {data['retrieved']})"
    input_usd, output_usd = bedrock_prices()[model]
    return Price(input_usd, "1,000 input tokens", source), Price(output_usd, "1,000 output tokens", source)


def image_price(model: str) -> Price:
    data = _json("bedrock_prices.json")
    return Price(bedrock_image_prices()[model], "image", data["per_image_source"])


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit_price: float
    unit: str
    monthly_usd: float
    source: str


@dataclass(frozen=True)
class Usage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    hours_active: float = HOURS_PER_MONTH


PRICE_REGION = "us-east-1"  # the region of every price in stacks/data (their sources say so)


@dataclass
class Estimate:
    profile: str
    region: str = PRICE_REGION  # the profile's region
    fixed: list[Line] = field(default_factory=list)
    usage: list[Line] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def fixed_usd(self) -> float:
        return round(sum(line.monthly_usd for line in self.fixed), 2)

    @property
    def usage_usd(self) -> float:
        return round(sum(line.monthly_usd for line in self.usage), 2)

    @property
    def total_usd(self) -> float:
        return round(self.fixed_usd + self.usage_usd, 2)

    @property
    def price_note(self) -> str | None:
        """What a reader must know when the profile is not in the region the prices are for."""
        if self.region == PRICE_REGION:
            return None
        return (
            f"every unit price is the {PRICE_REGION} list price: stacks/data has no {self.region} prices, "
            f"and prices differ by region (often higher outside {PRICE_REGION}); check the AWS pricing "
            f"pages for {self.region}"
        )

    def as_dict(self) -> dict:
        return {
            "profile": self.profile,
            "region": self.region,
            "price_region": PRICE_REGION,
            "price_note": self.price_note,
            "fixed": [asdict(line) for line in self.fixed],
            "usage": [asdict(line) for line in self.usage],
            "unpriced": self.unpriced,
            "fixed_usd": self.fixed_usd,
            "usage_usd": self.usage_usd,
            "total_usd": self.total_usd,
        }


def _line(item: str, quantity: float, price: Price, factor: float = 1.0) -> Line:
    """quantity x unit price x factor (e.g. hours in a month for hourly prices)."""
    return Line(
        item=item,
        quantity=quantity,
        unit_price=price.usd,
        unit=price.unit,
        monthly_usd=round(quantity * price.usd * factor, 2),
        source=price.source,
    )


def count_resources(templates: dict[str, dict]) -> dict[str, int]:
    """Resource type -> count over the given templates (stack name -> template)."""
    counts: dict[str, int] = {}
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            counts[resource["Type"]] = counts.get(resource["Type"], 0) + 1
    return counts


def secrets(templates: dict[str, dict]) -> int:
    """Secrets Manager secrets: those the templates declare, and the one Aurora creates for a cluster
    whose master password it manages ("Aurora can create a managed secret for you. You are charged
    for that secret": Secrets Manager user guide, "How Amazon Aurora uses AWS Secrets Manager")."""
    return sum(
        1
        for template in templates.values()
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == "AWS::SecretsManager::Secret"
        or (
            resource["Type"] == "AWS::RDS::DBCluster"
            and resource.get("Properties", {}).get("ManageMasterUserPassword") is True
        )
    )


def alarm_metrics(templates: dict[str, dict]) -> int:
    """Alarms are billed per metric they evaluate: a metric-math alarm over two metrics counts two
    (Amazon CloudWatch pricing page, Alarms: "per alarm metric"; metric math alarms are charged for
    each metric in the expression)."""
    total = 0
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                queries = resource["Properties"].get("Metrics")
                total += sum(1 for q in queries if "MetricStat" in q) if queries else 1
    return total


def interface_endpoint_zones(templates: dict[str, dict]) -> int:
    """Interface endpoints are billed per endpoint and per zone: one ENI per subnet."""
    zones = 0
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
                zones += len(props.get("SubnetIds", []))
    return zones


def web_acl_rules(templates: dict[str, dict]) -> int:
    """AWS WAF bills each rule of a web ACL a month; a managed rule group counts as one rule (AWS WAF
    pricing page)."""
    return sum(
        len(resource["Properties"].get("Rules", []))
        for template in templates.values()
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == "AWS::WAFv2::WebACL"
    )


def primary_target(profile: Profile) -> tuple[str, str] | None:
    """What serves the bulk of the requests: the first target of the gateway's first alias
    ('bedrock' | 'sagemaker' | 'self_hosted', name), else the first model of the bedrock section."""
    if profile.gateway and profile.gateway.aliases:
        first = next(iter(profile.gateway.aliases.values()))[0]
        for kind in ("bedrock", "sagemaker", "self_hosted"):
            if getattr(first, kind):
                return kind, getattr(first, kind)
    if profile.bedrock and profile.bedrock.models:
        return "bedrock", profile.bedrock.models[0]
    return None


def active_hours(usage: Usage, off_hours: OffHours | None) -> float:
    """Hours a month a fleet is up: `usage.hours_active` (at most the month), and for a fleet that
    scales to zero outside its schedule no more than the schedule's hours (stacks/planning/schedules.py)."""
    hours = min(usage.hours_active, HOURS_PER_MONTH)
    if off_hours is not None:
        hours = min(hours, round(monthly_hours(off_hours.start, off_hours.stop), 1))
    return hours


def estimate(profile: Profile, templates: dict[str, dict], usage: Usage | None = None) -> Estimate:
    usage = usage or Usage()
    counts = {**count_resources(templates), "AWS::SecretsManager::Secret": secrets(templates)}
    result = Estimate(profile=profile.name, region=profile.region)
    add = result.fixed.append
    for resource_type, key, item in (
        ("AWS::KMS::Key", "kms_key", "KMS keys"),
        ("AWS::SecretsManager::Secret", "secret", "Secrets Manager secrets"),
        ("AWS::CloudWatch::Dashboard", "dashboard", "CloudWatch dashboards"),
        ("AWS::Budgets::Budget", "budget", "AWS Budgets budgets"),
        ("AWS::Route53::HostedZone", "hosted_zone", "Route 53 hosted zones"),
    ):
        if counts.get(resource_type):
            add(_line(item, counts[resource_type], fixed_price(key)))
    if web_acls := counts.get("AWS::WAFv2::WebACL"):
        add(_line("AWS WAF web ACLs", web_acls, fixed_price("waf_web_acl")))
        add(_line("AWS WAF rules", web_acl_rules(templates), fixed_price("waf_rule")))
    if metrics := alarm_metrics(templates):
        add(_line("CloudWatch alarm metrics", metrics, fixed_price("alarm")))
    if series := sum(s.count for s in custom_metric_sets(profile)):
        add(_line("CloudWatch custom metrics (ours)", series, fixed_price("custom_metric")))
    if counts.get("AWS::EC2::NatGateway"):
        add(
            _line(
                "NAT gateways", counts["AWS::EC2::NatGateway"], network_price("nat_gateway"), HOURS_PER_MONTH
            )
        )
    if zones := interface_endpoint_zones(templates):
        price = network_price("interface_endpoint_per_az")
        add(_line("Interface VPC endpoints (per zone)", zones, price, HOURS_PER_MONTH))
    if balancers := counts.get("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        price = network_price("application_load_balancer")
        add(_line("Application load balancers", balancers, price, HOURS_PER_MONTH))
    if profile.bedrock and profile.bedrock.aurora and counts.get("AWS::RDS::DBCluster"):
        # The vector store's floor: its minimum capacity all month (0 ACU pauses when idle).
        floor = profile.bedrock.aurora.min_capacity
        item = f"Aurora Serverless v2 floor ({floor:g} ACU minimum)"
        add(_line(item, floor, fixed_price("aurora_acu_hour"), HOURS_PER_MONTH))
    for host in profile.hosting.hosts if profile.hosting else ():
        hours = active_hours(usage, host.off_hours)
        price = instance_price(host.instance_type)
        item = f"{host.name}: {host.min_instances} x {host.instance_type}, {hours:g} h"
        add(_line(item, host.min_instances, price, hours))

    for endpoint in profile.inference.endpoints if profile.inference else ():
        spec = inference_instances()[endpoint.instance_type]
        hours = active_hours(usage, endpoint.off_hours)
        item = f"endpoint {endpoint.name}: {endpoint.min_instances} x {endpoint.instance_type}, {hours:g} h"
        if spec.hourly_usd_us_east_1 is None:
            result.unpriced.append(
                f"{item}: no price for {endpoint.instance_type} in stacks/data/sagemaker.json"
            )
        elif endpoint.min_instances:
            add(_line(item, endpoint.min_instances, sagemaker_price(endpoint.instance_type), hours))
    for pipeline in profile.training.pipelines if profile.training else ():
        runs = f"on {pipeline.schedule}" if pipeline.schedule else "when started"
        kind = "spot (up to 90% off, billed for the seconds it runs)" if pipeline.spot else "on demand"
        # Instance types with local NVMe storage get no EBS volume (ResourceConfig.VolumeSizeInGB: "When
        # using an ML instance with NVMe SSD volumes, SageMaker doesn't provision Amazon EBS").
        local = training_instances()[pipeline.instance_type].local_nvme
        storage = "" if local else f"; plus {pipeline.volume_gb} GB of training storage while it runs"
        evaluation = pipeline.image_evaluation
        images = (
            f"; then 1 x {evaluation.instance_type} on demand for the image evaluation, at most "
            f"{evaluation.max_runtime_hours:g} h"
            if evaluation
            else ""
        )
        result.unpriced.append(
            f"training pipeline {pipeline.name}: {pipeline.instance_count} x {pipeline.instance_type} {kind} "
            f"per run, at most {pipeline.max_runtime_hours:g} h, {runs}{storage}{images} (SageMaker AI "
            "pricing, Training)"
        )
    for endpoint in profile.inference.endpoints if profile.inference else ():
        if endpoint.async_inference is not None and not endpoint.min_instances:
            result.unpriced.append(
                f"endpoint {endpoint.name}: 0 instances while its queue is empty, {endpoint.instance_type} "
                "hours while it has work (asynchronous inference)"
            )
    # The drift monitor reads captured requests: the inference stack builds it only over endpoints that
    # capture (stacks/inference_stack.py).
    if (
        profile.inference
        and profile.inference.drift
        and any(e.data_capture_percentage > 0 for e in profile.inference.endpoints)
    ):
        result.unpriced.append(
            f"drift monitor: one Lambda run per {profile.inference.drift.schedule} and its custom metrics "
            "(counted above): cents"
        )
    for job in profile.training.customizations if profile.training else ():
        result.unpriced.append(
            f"customization {job.name}: training priced per 1,000 tokens trained (epochs x tokens) and the "
            f"custom model's storage per month (Amazon Bedrock pricing, Model customization), "
            + {
                "none": "not served",
                "on_demand": "served on demand at the base model's token prices",
                "provisioned": "served by provisioned throughput (below)",
            }[job.serving]
        )
        if job.serving == "provisioned":
            result.unpriced.append(
                f"customization {job.name}: provisioned throughput ({job.model_units} model units) is a "
                "fixed hourly cost for as long as it exists, see https://aws.amazon.com/bedrock/pricing/"
            )
    if usage.requests and web_acls:
        # Every request to a public gateway passes its web ACL.
        result.usage.append(
            _line("AWS WAF requests inspected", web_acls * usage.requests / 1e6, fixed_price("waf_requests"))
        )
    target = primary_target(profile)
    if usage.requests and target and target[0] == "bedrock":
        # Inference profiles are priced as their model in the source region (bedrock_prices.json).
        model = bedrock_catalog().model_of(target[1]).model_id
        if model in bedrock_prices():
            price_in, price_out = token_prices(model)
            result.usage.append(
                _line(f"{model} input tokens", usage.requests * usage.input_tokens / 1000, price_in)
            )
            result.usage.append(
                _line(f"{model} output tokens", usage.requests * usage.output_tokens / 1000, price_out)
            )
        else:
            result.unpriced.append(f"{model}: no token price in stacks/data/bedrock_prices.json")
    elif usage.requests and target:
        result.unpriced.append(
            f"requests: served by {target[0].replace('_', '-')} {target[1]}, priced by its instance hours"
        )
    elif usage.requests:
        result.unpriced.append("requests: the profile has no model to serve them")
    # The Bedrock image models the aliases invoke (an endpoint alias: its fallback, if any).
    image_models = (
        [m for v in profile.gateway.images.values() for m in image_models_of(v)] if profile.gateway else []
    )
    if usage.images and image_models and image_models[0] in bedrock_image_prices():
        # The gateway's first image alias makes the images (one price per image: bedrock_prices.json).
        result.usage.append(_line(f"{image_models[0]} images", usage.images, image_price(image_models[0])))
    elif usage.images:
        result.unpriced.append(f"{usage.images} images: no image model price in the price files")
    return result


# The free tier is per account, shared by everything in it, so the estimate does not subtract it.
FREE_TIER_NOTE = (
    "List prices, before AWS's free tier, which is per account and shared by everything in it (for "
    "example 10 custom metrics, 10 alarm metrics and 3 dashboards a month in CloudWatch)."
)


def idle_cost_markdown(result: Estimate) -> str:
    """The idle-cost table of a profile's docs page: what `genai-stack cost PROFILE` counts with no
    requests, line by line, and what it cannot price (tests/cli/test_cost_docs.py keeps the pages
    current; `make docs-cost` rewrites them)."""
    where = f"{result.region}, at {PRICE_REGION} prices" if result.price_note else PRICE_REGION
    lines = [
        f"`genai-stack cost {result.profile}` with no requests ({where}). {FREE_TIER_NOTE}",
        "",
        "| Item | Quantity | Unit price (USD) | USD/month |",
        "|---|---|---|---|",
    ]
    for line in result.fixed:
        price = f"{line.unit_price:g} per {line.unit}"
        lines.append(f"| {line.item} | {line.quantity:,.6g} | {price} | {line.monthly_usd:,.2f} |")
    lines.append(f"| **Fixed** | | | **{result.fixed_usd:,.2f}** |")
    if result.price_note:
        lines += ["", f"Prices: {result.price_note}."]
    if result.unpriced:
        lines += ["", "Not priced without usage:", ""] + [f"- {note}" for note in result.unpriced]
    return "\n".join(lines)


# `genai-stack profiles` lists every built-in profile's stacks and fixed cost without synthesizing
# them: the figures are the cost model's over the synthesized templates, written by `make docs-cost`
# and kept current by tests/cli/test_cost_docs.py (one source: this module).
BUILTIN_SUMMARY = DATA / "builtin_profiles.json"


def builtin_summary(profile: Profile, templates: dict[str, dict]) -> dict:
    """A built-in profile's entry in BUILTIN_SUMMARY: its stacks and its fixed monthly cost."""
    return {"stacks": sorted(templates), "fixed_monthly_usd": estimate(profile, templates).fixed_usd}


def builtin_summaries() -> dict[str, dict]:
    return json.loads(BUILTIN_SUMMARY.read_text()) if BUILTIN_SUMMARY.is_file() else {}


# ---------------------------------------------------------------------------------------------------
# The semantic cache's arithmetic (docs/gateway.md, "Semantic cache"; `genai-stack cost`): what 1,000
# lookups cost against what a hit saves, at the profile's prices.

SEMANTIC_QUESTION_TOKENS = 50  # a question's tokens, as embedded (the last user message only)
SEMANTIC_ENTRIES = 10_000  # entries in the index when the queries run (unexpired questions answered)
SEMANTIC_ANSWER_TOKENS = (500, 300)  # the input and output tokens of the model call a hit saves
PUT_MINIMUM_BYTES = 128 * 1024  # each PutVectors request is billed at 128 KB at least (its price's source)
BYTES_PER_GB, BYTES_PER_TB = 1024**3, 1024**4
ENTRY_KEY_BYTES = 64 + 120  # the key (a SHA-256 in hex) and the filterable metadata (scope, expires_at)


@dataclass(frozen=True)
class SemanticCacheCost:
    alias: str
    model: str | None  # the alias's first Bedrock model (what a hit saves), None without a token price
    lines: list[Line]  # per 1,000 lookups, and per 1,000 misses for the writes
    lookup_usd: float  # every lookup: embedding, query request, query data
    write_usd: float  # every miss: its PutVectors
    saved_usd: float  # every hit: the model call it saves

    @property
    def break_even(self) -> float | None:
        """The hit rate at which the hits save what the lookups and writes cost (None: never)."""
        gain = self.saved_usd + self.write_usd  # a hit saves the call and writes nothing
        if gain <= 0:
            return None
        share = (self.lookup_usd + self.write_usd) / gain
        return share if share <= 1 else None


def semantic_cache_costs(
    profile: Profile,
    *,
    question_tokens: int = SEMANTIC_QUESTION_TOKENS,
    input_tokens: int = SEMANTIC_ANSWER_TOKENS[0],
    output_tokens: int = SEMANTIC_ANSWER_TOKENS[1],
    entries: int = SEMANTIC_ENTRIES,
    aliases: Sequence[str] | None = None,
) -> list[SemanticCacheCost]:
    """Per alias of gateway.semantic_cache: the embedding of each question (the embedding alias's
    price), one QueryVectors request and the data it processes (every entry's vector, key and
    filterable metadata), a PutVectors for each miss (its answer in the entry: output tokens at about
    4 bytes each), against the model call a hit saves (the alias's first target). `aliases`: other
    chat aliases to price as if they used it (a comparison)."""
    gateway = profile.gateway
    if gateway is None or gateway.semantic_cache is None:
        return []
    semantic = gateway.semantic_cache
    catalog, prices = bedrock_catalog(), bedrock_prices()
    embedding_model = gateway.embeddings[semantic.embedding]
    embed_in, _ = token_prices(catalog.model_of(embedding_model).model_id)
    vector_bytes = 4 * semantic.dimensions + ENTRY_KEY_BYTES
    entry_bytes = vector_bytes + 4 * output_tokens + 600  # the answer's JSON around its text
    query = fixed_price("s3vectors_query_requests")
    data = fixed_price("s3vectors_query_tb")
    put = fixed_price("s3vectors_put_gb")
    storage = fixed_price("s3vectors_storage_gb")
    results = []
    for alias in aliases if aliases is not None else semantic.aliases:
        named = gateway.aliases[alias][0].bedrock_model(profile.bedrock)
        model = catalog.model_of(named).model_id if named else None
        price = prices.get(model) if model else None
        lines = [
            _line(f"embedding 1,000 questions of {question_tokens} tokens ({embedding_model})",
                  question_tokens, embed_in),
            _line("1,000 QueryVectors requests", 1000 / 1e6, query),
            _line(f"data the 1,000 queries process ({entries:,} entries of {vector_bytes:,} bytes)",
                  1000 * entries * vector_bytes / BYTES_PER_TB, data),
            _line(f"PutVectors of 1,000 misses (each billed {PUT_MINIMUM_BYTES // 1024} KB at least)",
                  1000 * max(PUT_MINIMUM_BYTES, entry_bytes) / BYTES_PER_GB, put),
            _line(f"storing {entries:,} entries of about {entry_bytes:,} bytes for a month",
                  entries * entry_bytes / BYTES_PER_GB, storage),
        ]  # fmt: skip
        lookup = sum(line.quantity * line.unit_price for line in lines[:3]) / 1000
        write = lines[3].quantity * lines[3].unit_price / 1000
        saved = (input_tokens * price[0] + output_tokens * price[1]) / 1000 if price else 0.0
        results.append(SemanticCacheCost(alias, model if price else None, lines, lookup, write, saved))
    return results


def semantic_cache_markdown(
    costs: list[SemanticCacheCost], *, input_tokens: int = 500, output_tokens: int = 300
) -> str:
    rows = [
        "| Alias | Per 1,000 lookups (USD) | Per 1,000 misses, writes (USD) | A hit saves (USD) "
        "| Pays from a hit rate of |",
        "|---|---:|---:|---:|---:|",
    ]
    for cost in costs:
        saved = (
            f"{cost.saved_usd:.6f} ({cost.model}, {input_tokens} in + {output_tokens} out tokens)"
            if cost.model
            else "no per-token price (a fixed-cost target)"
        )
        even = f"{cost.break_even:.1%}" if cost.break_even is not None else "never"
        lookups, writes = 1000 * cost.lookup_usd, 1000 * cost.write_usd
        rows.append(f"| {cost.alias} | {lookups:.4f} | {writes:.4f} | {saved} | {even} |")
    details = [
        "",
        "| Part | Quantity | Unit price (USD) | Unit | USD |",
        "|---|---:|---:|---|---:|",
    ]
    for line in costs[0].lines if costs else []:
        details.append(
            f"| {line.item} | {line.quantity:.6g} | {line.unit_price:g} | {line.unit} | "
            f"{line.quantity * line.unit_price:.6f} |"
        )
    return "\n".join(rows + details)
