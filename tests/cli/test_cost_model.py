"""The cost model and the approach advisor against worked examples computed by hand from the price
files (stacks/data/*.json). If a price changes, these examples must be recomputed on purpose."""

from __future__ import annotations

import math

import pytest

from genai_stack.config import load_profile
from genai_stack.observability import custom_metric_sets
from genai_stack.planning.advisor import (
    Workload,
    crossover_requests,
    per_request_usd,
    recommend,
    self_hosted_usd,
)
from genai_stack.planning.cost import Usage, estimate


def lines(items) -> dict[str, float]:
    return {line.item: line.monthly_usd for line in items}


def test_self_hosted_fixed_costs_by_hand(synthesized):
    profile = load_profile("self-hosted")
    result = estimate(profile, synthesized.templates["self-hosted"], Usage(hours_active=100))
    fixed = lines(result.fixed)
    assert "NAT gateways" not in fixed  # no egress: weights and vLLM's wheels come from S3
    # 8 endpoints (6 for the hosts; Bedrock runtime and AWS Private CA for the gateway) x 2 zones x 0.01 x 730
    assert fixed["Interface VPC endpoints (per zone)"] == 116.80
    assert fixed["Route 53 hosted zones"] == 0.50  # the hosts' private zone (hosting.tls)
    assert fixed["Application load balancers"] == 32.85  # 2 x 0.0225 x 730
    assert fixed["llama-neuron: 1 x inf2.8xlarge, 100 h"] == 196.79  # 1.9679 x 100
    assert fixed["mistral-gpu: 1 x g6.xlarge, 100 h"] == 80.48  # 0.8048 x 100
    # With the default usage, the off-hours fleet is charged its schedule's hours, not 730.
    all_month = lines(estimate(profile, synthesized.templates["self-hosted"]).fixed)
    assert all_month["mistral-gpu: 1 x g6.xlarge, 282.8 h"] == 227.6  # 0.8048 x 282.8
    assert all_month["llama-neuron: 1 x inf2.8xlarge, 730 h"] == 1436.57  # no schedule: all month
    assert fixed["KMS keys"] == 1.0
    assert fixed["CloudWatch dashboards"] == 3.0
    # Alarms are billed per metric they evaluate: a metric-math alarm over two metrics is two.
    metrics = sum(
        len([q for q in r["Properties"]["Metrics"] if "MetricStat" in q])
        if "Metrics" in r["Properties"]
        else 1
        for t in synthesized.templates["self-hosted"].values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    )
    alarms = sum(
        1 for t in synthesized.templates["self-hosted"].values() for r in t["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    )  # fmt: skip
    assert metrics > alarms  # the gateway's 5xx share and fallback shares are metric math
    assert fixed["CloudWatch alarm metrics"] == round(metrics * 0.10, 2)
    # Our own metrics, counted from the emitting code's dimension sets (stacks/observability.py).
    series = sum(s.count for s in custom_metric_sets(profile))
    assert fixed["CloudWatch custom metrics (ours)"] == round(series * 0.30, 2)
    assert result.fixed_usd == round(sum(fixed.values()), 2)
    for line in result.fixed:
        assert line.source  # every line says where its price comes from


def test_managed_api_tokens_by_hand(synthesized):
    profile = load_profile("managed-api")
    usage = Usage(requests=1_000_000, input_tokens=500, output_tokens=200)
    result = estimate(profile, synthesized.templates["managed-api"], usage)
    usage_lines = lines(result.usage)
    # The first alias's first target: the Claude Haiku 4.5 inference profile, priced as the model
    # (0.001 and 0.005 USD per 1,000 tokens): 500,000 x 0.001 = 500; 200,000 x 0.005 = 1,000.
    assert usage_lines == {
        "anthropic.claude-haiku-4-5-20251001-v1:0 input tokens": 500.0,
        "anthropic.claude-haiku-4-5-20251001-v1:0 output tokens": 1000.0,
    }
    assert result.total_usd == round(result.fixed_usd + 1500.0, 2)
    assert not lines(result.fixed).get("NAT gateways")  # no VPC in this profile


def test_aurora_floor_is_zero_when_the_store_pauses(synthesized):
    profile = load_profile("customer-service")
    fixed = lines(estimate(profile, synthesized.templates["customer-service"]).fixed)
    assert fixed["Aurora Serverless v2 floor (0 ACU minimum)"] == 0.0
    # The Bedrock login's secret (a template resource) and the admin's, which Aurora creates and bills
    # for the cluster whose master password it manages: 2 x 0.40 USD.
    assert fixed["Secrets Manager secrets"] == 0.8


def test_requests_served_by_hosts_and_images_are_reported_as_unpriced(synthesized):
    profile = load_profile("self-hosted")
    result = estimate(profile, synthesized.templates["self-hosted"], Usage(requests=10, images=5))
    # Only the web ACL's per-request fee is priced; the hosts' share is in their instance hours.
    assert [line.item for line in result.usage] == ["AWS WAF requests inspected"]
    assert any("served by self-hosted llama-neuron" in note for note in result.unpriced)
    assert any("5 images" in note for note in result.unpriced)


def test_a_public_gateway_s_web_acl_by_hand(synthesized):
    """AWS WAF: 5 USD per web ACL and 1 USD per rule (a managed rule group is one rule) a month, 0.60 USD
    per million requests (stacks/data/fixed_prices.json)."""
    result = estimate(
        load_profile("self-hosted"), synthesized.templates["self-hosted"], Usage(requests=2_000_000)
    )
    fixed = lines(result.fixed)
    assert fixed["AWS WAF web ACLs"] == 5.0
    assert fixed["AWS WAF rules"] == 3.0  # rate-based rule, common rule set, known bad inputs
    assert lines(result.usage)["AWS WAF requests inspected"] == 1.2  # 2 x 0.60
    # The bank's gateway is private: no web ACL, nothing to pay for it.
    private = estimate(
        load_profile("managed-api"), synthesized.templates["managed-api"], Usage(requests=10**6)
    )
    assert not [line for line in private.fixed + private.usage if "WAF" in line.item]


def test_the_per_request_price_by_hand():
    # Nova Lite: 500 x 0.00006 / 1000 + 200 x 0.00024 / 1000 = 0.00003 + 0.000048
    assert per_request_usd("amazon.nova-lite-v1:0", 500, 200) == pytest.approx(0.000078)


def test_the_crossover_between_haiku_tokens_and_one_inf2_8xlarge_instance_by_hand():
    work = Workload(
        requests=0, input_tokens=500, output_tokens=200, model="anthropic.claude-haiku-4-5-20251001-v1:0"
    )
    per_request = 0.0015  # 500 x 0.001 / 1000 + 200 x 0.005 / 1000
    assert per_request_usd(work.model, 500, 200) == pytest.approx(per_request)
    # inf2.8xlarge (not inf2.xlarge: 16 GiB of host memory cannot load an 8B model in bf16) month:
    # 1.9679 x 730 = 1,436.567; fleet: ALB 0.0225 + 12 endpoint-zones x 0.01 = 0.1425/h x 730 = 104.025
    # (no NAT gateway); platform: key 1 + dashboard 3. Total 1,544.592 USD; / 0.0015 = 1,029,728 requests.
    # One instance serves 400 tok/s x 3600 x 730 x 0.5 / 200 = 2,628,000 requests: it fits.
    assert crossover_requests("inf2.8xlarge", per_request, work) == 1_029_728
    monthly, instances = self_hosted_usd("inf2.8xlarge", 1_029_728, work)
    assert instances == 1
    assert monthly == pytest.approx(1544.592)
    assert monthly <= 1_029_728 * per_request < monthly + per_request


def test_no_crossover_when_a_full_instance_costs_more_per_request_than_tokens():
    work = Workload(input_tokens=500, output_tokens=200)
    # Nova Lite at 0.000078 per request; a full g6.xlarge: 587.504 / (450 x 3600 x 730 x 0.5 / 200)
    # = 587.504 / 2,956,500 = 0.000199 per request: it never catches up.
    assert crossover_requests("g6.xlarge", per_request_usd("amazon.nova-lite-v1:0", 500, 200), work) is None


def test_the_advisor_ranks_by_cost_and_explains():
    low = recommend(Workload(requests=10_000, model="anthropic.claude-haiku-4-5-20251001-v1:0"))
    assert low.options[0].approach == "managed API"
    assert low.profile == "managed-api"
    assert any("becomes cheaper from about 463,686" in r for r in low.reasons)
    high = recommend(Workload(requests=2_000_000, model="anthropic.claude-haiku-4-5-20251001-v1:0"))
    assert high.options[0].approach == "self-managed"
    assert high.profile == "self-hosted"
    costs = [o.monthly_usd for o in high.options]
    assert costs == sorted(costs)
    grounded = recommend(Workload(requests=1000, domain_data="unlabelled", budget_usd=1))
    assert grounded.profile == "customer-service"
    assert any("knowledge base" in r for r in grounded.reasons)
    assert any("above the budget" in n for o in grounded.options for n in o.notes)
    images = recommend(Workload(modality="image", requests=100))
    assert images.options[0].monthly_usd == round(100 * 0.08 + 1 + 3, 2)  # SD3.5 Large, key, dashboard
    assert images.profile == "product-imagery"
    embeddings = recommend(Workload(modality="embeddings", requests=100))
    assert [o.approach for o in embeddings.options] == ["managed API"]


def test_a_team_in_asia_pacific_starts_from_the_apac_profile():
    hong_kong = recommend(Workload(requests=10_000, region="ap-east-1"))
    assert hong_kong.profile == "marketing-copy-apac"
    assert hong_kong.options[0].profile == "marketing-copy-apac"
    assert any("Amazon Bedrock is not offered in ap-east-1" in r for r in hong_kong.reasons)
    tokyo = recommend(Workload(requests=10_000, region="ap-northeast-1"))
    assert tokyo.profile == "marketing-copy-apac"
    assert not any("not offered" in r for r in tokyo.reasons)
    assert recommend(Workload(requests=10_000, region="eu-west-1")).profile == "managed-api"
    grounded = recommend(Workload(requests=10_000, region="ap-east-1", domain_data="unlabelled"))
    assert grounded.profile == "utility-assistant"
    assert any("Cantonese" in r for r in grounded.reasons)
    # Labelled data still starts from custom-model: only the managed and grounded defaults move.
    assert recommend(Workload(requests=10_000, region="ap-east-1", domain_data="labelled")).profile == (
        "custom-model"
    )


def test_custom_model_endpoints_by_hand(synthesized):
    profile = load_profile("custom-model")
    result = estimate(profile, synthesized.templates["custom-model"])
    fixed = lines(result.fixed)
    assert fixed["endpoint support-llm: 1 x ml.g6.2xlarge, 730 h"] == 892.06  # 1.222 x 730
    # Off at night and at weekends: the schedule's hours (2026: 261 weekdays x 13 h / 12), not 730.
    assert fixed["endpoint support-llm-inf2: 1 x ml.inf2.8xlarge, 282.8 h"] == 556.55  # 1.968 x 282.8
    assert not any("long-documents" in item for item in fixed)  # asynchronous, 0 instances when idle
    # What cannot be priced without usage is listed, not left out.
    unpriced = " | ".join(result.unpriced)
    for part in (
        "training pipeline support-tuning: 1 x ml.g5.2xlarge spot",
        "endpoint long-documents: 0 instances while its queue is empty",
        "drift monitor:",
        "customization nova-support: training priced per 1,000 tokens trained",
    ):
        assert part in unpriced, part


def test_images_compare_bedrock_with_the_fine_tuned_endpoint_at_its_crossover():
    from genai_stack.planning.advisor import (
        HOURS_PER_START,
        IMAGE_ENDPOINT_TYPE,
        STARTS_PER_MONTH,
        WORKING_HOURS_PER_MONTH,
    )
    from genai_stack.planning.cost import sagemaker_price

    hourly = sagemaker_price(IMAGE_ENDPOINT_TYPE).usd

    def by_detail(volume: int, **work) -> dict[str, float]:
        options = recommend(Workload(modality="image", requests=volume, **work)).options
        return {o.detail.split(",")[1].strip() if "," in o.detail else o.detail: o for o in options}

    working = next(o for o in by_detail(1).values() if "weekdays" in o.detail)
    crossover = working.crossover_requests
    assert crossover == math.ceil(WORKING_HOURS_PER_MONTH * hourly / 0.08)
    for volume, cheaper in ((crossover - 1, False), (crossover, True)):
        options = recommend(Workload(modality="image", requests=volume)).options
        bedrock = next(o for o in options if o.approach == "managed API")
        endpoint = next(o for o in options if "weekdays" in o.detail)
        assert (endpoint.monthly_usd <= bedrock.monthly_usd) is cheaper, volume
    scaling = next(o for o in by_detail(1000).values() if "scales to zero" in o.detail)
    assert scaling.monthly_usd == round(
        1000 * 8 / 3600 * hourly + STARTS_PER_MONTH * HOURS_PER_START * hourly + 4, 2
    )
    # A measured, slower model needs more busy hours, and past one instance's working hours a second.
    slow = recommend(Workload(modality="image", requests=200_000, seconds_per_image=12))
    endpoint = next(o for o in slow.options if "weekdays" in o.detail)
    assert endpoint.instances == math.ceil(200_000 * 12 / 3600 / WORKING_HOURS_PER_MONTH) == 3
    assert any("at 12 s an image" in r for r in slow.reasons)
    assert slow.profile == "product-imagery"


def test_a_pipeline_s_unpriced_line_names_the_image_evaluation_and_no_storage_on_local_nvme():
    from genai_stack.planning.cost import estimate

    profile = load_profile("product-imagery")
    result = estimate(profile, {})
    (line,) = [n for n in result.unpriced if n.startswith("training pipeline brand-sdxl")]
    assert "then 1 x ml.g5.2xlarge on demand for the image evaluation, at most 2 h" in line
    assert "GB of training storage" not in line  # ml.g5 has local NVMe: SageMaker provisions no EBS
