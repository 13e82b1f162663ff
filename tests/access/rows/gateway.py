"""The model gateway (lambdas/gateway): its calls follow its configuration (GATEWAY_CONFIG, read by
lambdas/gateway/config.py), so the rows are derived from the resolved configuration of each
deployed function, target by target.

Calls (file: line of the call):
- bedrock-runtime Converse (providers/bedrock.py BedrockChat.chat): bedrock:InvokeModel on the
  target's application inference profile (`invoke`) and what it copies (bedrock_arns.py
  invocation_targets), with bedrock:GuardrailIdentifier when a guardrail is configured; also
  ApplyGuardrail on the guardrail (and kms:Decrypt on its key) because the request names it.
- bedrock-runtime InvokeModel (providers/bedrock.py BedrockEmbeddings.embed): bedrock:InvokeModel,
  likewise through the embedding alias's application inference profile.
- bedrock-runtime ApplyGuardrail (guardrail.py Guardrail.check, retrieval.py grounding_check).
- bedrock-runtime ConverseStream (BedrockChat.stream): bedrock:InvokeModelWithResponseStream, likewise.
- sagemaker-runtime InvokeEndpoint / InvokeEndpointWithResponseStream (providers/openai_format.py
  SageMakerChat.chat / .stream): sagemaker:InvokeEndpoint / sagemaker:InvokeEndpointWithResponseStream
  on arn:${Partition}:sagemaker:${Region}:${Account}:endpoint/${EndpointName}
  (Service Authorization Reference, SageMaker AI; endpoint names are stored lower case in ARNs).
- dynamodb GetItem / PutItem (cache.py): arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}
  (Service Authorization Reference, DynamoDB).
- dynamodb UpdateItem (allowance.py SpendLedger.admit / settle) on the spend table, when tenants have
  allowances: the conditional ADD and the settling ADD.
- dynamodb GetItem / PutItem (feedback.py FeedbackStore) on the feedback table, with gateway.feedback:
  the answer's record and its rating.
- s3vectors QueryVectors / PutVectors (semantic_cache.py SemanticCache.lookup / store), with
  gateway.semantic_cache: s3vectors:QueryVectors, and s3vectors:GetVectors because the query has a
  metadata filter and returnMetadata (Amazon S3 API reference, QueryVectors, Permissions), and
  s3vectors:PutVectors, on arn:${Partition}:s3vectors:${Region}:${Account}:bucket/${BucketName}/index/${IndexName}
  (Service Authorization Reference, Amazon S3 Vectors); kms:Decrypt on the vector bucket's key,
  which S3 Vectors calls for the caller ("Data protection and encryption in S3 Vectors": required for
  every vector-level operation), with kms:ViaService s3vectors.<region>.amazonaws.com. The embedding of
  the question is the embedding alias's InvokeModel above.
- bedrock-agent-runtime Retrieve (retrieval.py Retriever.retrieve): bedrock:Retrieve on the knowledge base.
- bedrock GetCustomModelDeployment / GetProvisionedModelThroughput (providers/bedrock.py
  CustomModelChat._resolve) on custom-model-deployment/${ResourceId} / provisioned-model/${ResourceId},
  then Converse / ConverseStream (bedrock:InvokeModel / InvokeModelWithResponseStream) on that ARN:
  only resources carrying the profile's tag, which the customization pipeline puts on them.
- bedrock-runtime InvokeModel (images.py BedrockImages.generate): bedrock:InvokeModel on the image
  model's foundation-model ARN, without a guardrail (image models are exempt from the
  GuardrailIdentifier condition: stacks/components/model_access.py says why); ApplyGuardrail on the
  prompt and on each image (images.py ImageService._guard).
- s3 PutObject (images.py ImageStore.put) under gateway-images/ in the data bucket, SSE-KMS:
  kms:GenerateDataKey through S3; the pre-signed GET URL acts as the role (s3:GetObject, kms:Decrypt
  through S3), so GetObject is a row too (no boto3 call: the URL's holder makes it).
- acm-pca GetCertificateAuthorityCertificate (providers/http_pool.py PrivateCaTrust, once per cold
  start per CA): acm-pca:GetCertificateAuthorityCertificate on the CA an HTTPS self-hosted target
  trusts (`trust_ca`), arn:${Partition}:acm-pca:${Region}:${Account}:certificate-authority/${CertificateAuthorityId}
  (Service Authorization Reference, AWS Private Certificate Authority).
"""

from __future__ import annotations

from genai_stack.config import PROFILE_TAG
from lambdas.gateway.config import Settings
from tests.access.deployment import Deployment, Function
from tests.access.rows import Call, resource_tag_context
from tests.access.rows.bedrock_arns import (
    CONVERSE_WHY,
    apply_guardrail_rows,
    foundation_model,
    guardrail,
    invocation_targets,
)
from tests.access.rows.s3_objects import TLS, get_object, list_objects, put_object

PACKAGE = "gateway"
HANDLERS = ("lambdas.gateway.handler.on_event",)
APIS = frozenset(
    {
        "bedrock-runtime.Converse",
        "bedrock-runtime.ConverseStream",
        "bedrock-runtime.InvokeModel",
        "bedrock-runtime.ApplyGuardrail",
        "sagemaker-runtime.InvokeEndpoint",
        "sagemaker-runtime.InvokeEndpointWithResponseStream",
        "sagemaker-runtime.InvokeEndpointAsync",
        "s3.GetObject",
        "s3.ListObjectsV2",
        "dynamodb.GetItem",
        "dynamodb.PutItem",
        "dynamodb.UpdateItem",
        "bedrock-agent-runtime.Retrieve",
        "s3vectors.QueryVectors",
        "s3vectors.PutVectors",
        "bedrock.GetCustomModelDeployment",
        "bedrock.GetProvisionedModelThroughput",
        "s3.PutObject",
        "acm-pca.GetCertificateAuthorityCertificate",
    }
)
ANOTHER_CA = "certificate-authority/11111111-2222-4333-8444-555555555555"
ANOTHER_MODEL = "amazon.nova-pro-v1:0"  # a model no built-in profile's gateway uses
ANOTHER_APP_PROFILE = "application-inference-profile/anotherprof1"  # e.g. another profile's


def rows(function: Function, deployment: Deployment) -> list[Call]:
    settings = Settings.model_validate_json(function.environment["GATEWAY_CONFIG"])
    result: list[Call] = []
    rail = (
        guardrail(deployment, settings.guardrail.identifier, settings.guardrail.version)
        if settings.guardrail
        else None
    )
    with_rail = {"bedrock:GuardrailIdentifier": rail.identifier} if rail else {}

    chat_models = sorted(
        {(t.model, t.invoke) for targets in settings.chat.values() for t in targets if t.kind == "bedrock"},
        key=str,
    )
    for model, through in chat_models:
        for resource, context in invocation_targets(deployment, model, through):
            result.append(
                Call(
                    "bedrock:InvokeModel",
                    resource,
                    f"{CONVERSE_WHY}; chat target {model}",
                    context={**context, **with_rail},
                    api="bedrock-runtime.Converse",
                )
            )
            result.append(
                Call(
                    "bedrock:InvokeModelWithResponseStream",
                    resource,
                    f"ConverseStream (stream: true; providers/bedrock.py BedrockChat.stream) needs "
                    f"bedrock:InvokeModelWithResponseStream; chat target {model}",
                    context={**context, **with_rail},
                    api="bedrock-runtime.ConverseStream",
                )
            )
            if rail and deployment.guardrail_enforced:  # bedrock.guardrail.mandatory
                result.append(
                    Call(
                        "bedrock:InvokeModelWithResponseStream",
                        resource,
                        "a streamed answer must not come without the profile's guardrail either",
                        context=context,
                        expect="deny",
                    )
                )
                result.append(
                    Call(
                        "bedrock:InvokeModel",
                        resource,
                        "a chat model must not answer without the profile's guardrail",
                        context=context,
                        expect="deny",
                    )
                )
                result.append(
                    Call(
                        "bedrock:InvokeModel",
                        resource,
                        "nor with another version of the guardrail",
                        context={
                            **context,
                            "bedrock:GuardrailIdentifier": f"{rail.arn}:{int(rail.version) + 1}",
                        },
                        expect="deny",
                    )
                )
    if chat_models:
        result.append(
            Call(
                "bedrock:InvokeModel",
                foundation_model(deployment, ANOTHER_MODEL),
                "a model the configuration does not name is refused",
                context=with_rail,
                expect="deny",
            )
        )
        result.append(
            Call(
                "bedrock:InvokeModel",
                deployment.arn("bedrock", ANOTHER_APP_PROFILE),
                "another profile's application inference profile is refused (its spend is not ours)",
                context=with_rail,
                expect="deny",
            )
        )
        if rail:
            result += apply_guardrail_rows(deployment, rail, api="bedrock-runtime.Converse")

    for alias, target in sorted(settings.embeddings.items()):
        for resource, context in invocation_targets(deployment, target.model, target.invoke):
            result.append(
                Call(
                    "bedrock:InvokeModel",
                    resource,
                    f"embedding alias {alias}: InvokeModel (providers/bedrock.py BedrockEmbeddings)",
                    context=context,
                    api="bedrock-runtime.InvokeModel",
                )
            )

    endpoints = sorted(
        {t.endpoint for targets in settings.chat.values() for t in targets if t.kind == "sagemaker"}
    )
    for endpoint in endpoints:
        result.append(
            Call(
                "sagemaker:InvokeEndpoint",
                deployment.arn("sagemaker", f"endpoint/{endpoint.lower()}"),
                "SageMaker chat target (providers/openai_format.py SageMakerChat)",
                api="sagemaker-runtime.InvokeEndpoint",
            )
        )
        result.append(
            Call(
                "sagemaker:InvokeEndpointWithResponseStream",
                deployment.arn("sagemaker", f"endpoint/{endpoint.lower()}"),
                "streamed answers (SageMakerChat.stream); a separate action in the Service "
                "Authorization Reference, SageMaker AI",
                api="sagemaker-runtime.InvokeEndpointWithResponseStream",
            )
        )
    if endpoints:
        result.append(
            Call(
                "sagemaker:InvokeEndpoint",
                deployment.arn("sagemaker", "endpoint/another-endpoint"),
                "an endpoint the configuration does not name is refused",
                expect="deny",
            )
        )
    guarded_elsewhere = any(t.kind != "bedrock" for targets in settings.chat.values() for t in targets)
    # ApplyGuardrail: SageMaker and self-hosted targets, the grounding check, and the semantic cache's
    # check of a new prompt before it gets a stored answer.
    if rail and (guarded_elsewhere or settings.knowledge_bases or settings.semantic_cache):
        result += apply_guardrail_rows(deployment, rail, api="bedrock-runtime.ApplyGuardrail")

    result += table_rows(settings, deployment)
    result += semantic_cache_rows(settings, deployment)
    result += custom_model_rows(settings, deployment, with_rail)

    result += image_rows(settings, deployment, rail)

    trusted = sorted({t.trust_ca for targets in settings.chat.values() for t in targets if t.trust_ca})
    for authority in trusted:
        result.append(
            Call(
                "acm-pca:GetCertificateAuthorityCertificate",
                authority,
                "the CA the hosts' HTTPS certificates come from, read to verify them (http_pool.py PrivateCaTrust)",
                api="acm-pca.GetCertificateAuthorityCertificate",
            )
        )
    if trusted:
        result.append(
            Call(
                "acm-pca:GetCertificateAuthorityCertificate",
                deployment.arn("acm-pca", ANOTHER_CA),
                "no other CA",
                expect="deny",
            )
        )

    for name, knowledge_base_id in sorted(settings.knowledge_bases.items()):
        result.append(
            Call(
                "bedrock:Retrieve",
                deployment.arn("bedrock", f"knowledge-base/{knowledge_base_id}"),
                f"retrieval from knowledge base {name} (retrieval.py Retriever)",
                api="bedrock-agent-runtime.Retrieve",
            )
        )
    if settings.knowledge_bases:
        result.append(
            Call(
                "bedrock:Retrieve",
                deployment.arn("bedrock", "knowledge-base/ANOTHERKB1"),
                "another tenant's knowledge base is refused",
                expect="deny",
            )
        )
    return result


def endpoint_image_rows(deployment: Deployment, alias: str, endpoint) -> list[Call]:
    """An image alias on an asynchronous endpoint (images.py EndpointImages): the request body put
    under the gateway's input prefix, InvokeEndpointAsync on the endpoint (its own IAM action:
    Service Authorization Reference, Amazon SageMaker AI), the answer read from the output or failure
    location SageMaker returns (async/<endpoint>/output/, failure/)."""
    why = f"image alias {alias}: images.py EndpointImages"
    base = endpoint.input_prefix.removesuffix("input/gateway/")
    return [
        *put_object(deployment, endpoint.bucket, f"{endpoint.input_prefix}0123abcd.json", why),
        Call(
            "sagemaker:InvokeEndpointAsync",
            deployment.arn("sagemaker", f"endpoint/{endpoint.endpoint.lower()}"),
            why,
            api="sagemaker-runtime.InvokeEndpointAsync",
        ),
        *list_objects(
            deployment, endpoint.bucket, f"{base}output/0123abcd.out", f"{why}: is the answer there"
        ),
        *list_objects(
            deployment, endpoint.bucket, f"{base}failure/0123abcd-error.out", f"{why}: or the error"
        ),
        *get_object(deployment, endpoint.bucket, f"{base}output/0123abcd.out", why),
        *get_object(deployment, endpoint.bucket, f"{base}failure/0123abcd-error.out", why),
        Call(
            "s3:PutObject",
            f"arn:{deployment.partition}:s3:::{endpoint.bucket}/{base}input/other-caller.json",
            "only the gateway's own input prefix",
            context=TLS,
            expect="deny",
        ),
        Call(
            "s3:GetObject",
            f"arn:{deployment.partition}:s3:::{endpoint.bucket}/models/brand-sdxl/model.safetensors",
            "not the endpoint's weights",
            context=TLS,
            expect="deny",
        ),
        Call(
            "sagemaker:InvokeEndpointAsync",
            deployment.arn("sagemaker", "endpoint/another-endpoint"),
            "no other endpoint",
            expect="deny",
        ),
    ]


def image_rows(settings: Settings, deployment: Deployment, rail) -> list[Call]:
    """POST /v1/images/generations: the image model, the guardrail checks, the stored images."""
    result: list[Call] = []
    for alias, target in sorted(settings.images.items()):
        for model in (target.model, target.fallback):
            if model is None:
                continue
            result.append(
                Call(
                    "bedrock:InvokeModel",
                    foundation_model(deployment, model),
                    f"image alias {alias}: InvokeModel (images.py BedrockImages), without a guardrail "
                    "(ApplyGuardrail checks the prompt and the images)",
                    api="bedrock-runtime.InvokeModel",
                )
            )
        if target.endpoint is not None:
            result += endpoint_image_rows(deployment, alias, target.endpoint)
    if not settings.images:
        return result
    if rail:
        result += apply_guardrail_rows(deployment, rail, api="bedrock-runtime.ApplyGuardrail")
    store = settings.image_store
    assert store is not None, "image aliases come with the image store"
    name = "gateway-images/tenant-a/2026/12/01/0123456789abcdef.png"
    result += put_object(deployment, store.bucket, name, "images.py ImageStore.put (url responses)")
    result += get_object(deployment, store.bucket, name, "the pre-signed GET URL acts as the role", api=None)
    for other in ("documents/faq.pdf", "invocation-logs/AWSLogs/x.json.gz", "gateway-imagesX/a.png"):
        for action in ("s3:PutObject", "s3:GetObject"):
            result.append(
                Call(
                    action,
                    f"arn:{deployment.partition}:s3:::{store.bucket}/{other}",
                    "only the gateway-images/ prefix of the data bucket",
                    context=TLS,
                    expect="deny",
                )
            )
    result.append(
        Call(
            "s3:PutObject",
            f"arn:{deployment.partition}:s3:::another-bucket/gateway-images/a.png",
            "only the profile's data bucket",
            context=TLS,
            expect="deny",
        )
    )
    # The cache (model_gateway.py) and a guardrail encrypted with the platform key grant the key
    # without a condition; otherwise it is usable through S3 only.
    if not settings.cache and not (rail and rail.key_arn == store.key_id):
        result.append(
            Call(
                "kms:Decrypt",
                store.key_id,
                "the platform key only through S3 (kms:ViaService)",
                context={"kms:ViaService": f"sqs.{deployment.region}.amazonaws.com"},
                expect="deny",
            )
        )
    return result


def table_rows(settings: Settings, deployment: Deployment) -> list[Call]:
    """The gateway's DynamoDB tables, each with the operations its code calls and none other: the
    cache (read and written whole), the tenants' spend (only counted), the feedback (nothing deleted)."""
    tables = [
        (settings.cache, ("GetItem", "PutItem"), "response cache (cache.py ResponseCache)", "UpdateItem"),
        (settings.spend, ("UpdateItem",), "tenants' allowances (allowance.py SpendLedger)", "DeleteItem"),
        (
            settings.feedback,
            ("GetItem", "PutItem"),
            "user feedback (feedback.py FeedbackStore)",
            "DeleteItem",
        ),
    ]
    result = []
    for table_settings, operations, why, refused in tables:
        if table_settings is None:
            continue
        table = deployment.arn("dynamodb", f"table/{table_settings.table}")
        result += [Call(f"dynamodb:{op}", table, why, api=f"dynamodb.{op}") for op in operations]
        result.append(Call(f"dynamodb:{refused}", table, f"{why}: not {refused}", expect="deny"))
    if result:
        result.append(
            Call(
                "dynamodb:GetItem",
                deployment.arn("dynamodb", "table/another-table"),
                "only its own tables",
                expect="deny",
            )
        )
    return result


def semantic_cache_rows(settings: Settings, deployment: Deployment) -> list[Call]:
    """The semantic cache: its own index only (not the knowledge bases' beside it), the three actions
    its code needs and not DeleteVectors; the vector bucket's key through S3 Vectors."""
    semantic = settings.semantic_cache
    if semantic is None:
        return []
    why = "semantic cache (semantic_cache.py SemanticCache)"
    index = semantic.index_arn
    result = [
        Call("s3vectors:QueryVectors", index, f"{why}: the lookup", api="s3vectors.QueryVectors"),
        Call("s3vectors:GetVectors", index, f"{why}: the lookup's filter and metadata need it"),
        Call("s3vectors:PutVectors", index, f"{why}: the answer of a miss", api="s3vectors.PutVectors"),
        Call("s3vectors:DeleteVectors", index, f"{why}: nothing deleted", expect="deny"),
    ]
    bucket = index.rsplit("/index/", 1)[0]
    for other in ("product-facts", "another-index"):
        result.append(
            Call(
                "s3vectors:QueryVectors",
                f"{bucket}/index/{other}",
                f"{why}: only its own index",
                expect="deny",
            )
        )
    keys = [
        deployment.resolver.resolve(stack, resource["Properties"]["EncryptionConfiguration"]["KmsKeyArn"])
        for stack, _, resource in deployment._resources("AWS::S3Vectors::VectorBucket")
    ]
    (key,) = keys  # the profile's one vector bucket
    via = {"kms:ViaService": f"s3vectors.{deployment.region}.amazonaws.com"}
    result.append(
        Call("kms:Decrypt", key, f"{why}: S3 Vectors decrypts the index for the caller", context=via)
    )
    return result


def custom_model_rows(settings: Settings, deployment: Deployment, with_rail: dict[str, str]) -> list[Call]:
    """Custom-model targets: the lookup and the call, on a serving resource with the profile's tags
    (customization_tags: what the pipelines put on them), and neither on one without."""
    kinds = {
        "on_demand": ("bedrock:GetCustomModelDeployment", "custom-model-deployment"),
        "provisioned": ("bedrock:GetProvisionedModelThroughput", "provisioned-model"),
    }
    served = sorted(
        {t.serving for targets in settings.chat.values() for t in targets if t.kind == "bedrock_custom"}
    )
    if not served:
        return []
    # The profile's own tag, one of those the pipeline puts on what it creates (customization_tags),
    # is what the statements are held to.
    tagged = resource_tag_context({PROFILE_TAG: deployment.profile})
    result = []
    for serving in served:
        lookup, resource_type = kinds[serving]
        resource = deployment.arn("bedrock", f"{resource_type}/abcd1234efgh")
        result += [
            Call(
                lookup,
                resource,
                "CustomModelChat._resolve",
                context=tagged,
                api=f"bedrock.{lookup.split(':')[1]}",
            ),
            Call(lookup, resource, "not a serving resource of another profile", expect="deny"),
            Call(
                "bedrock:InvokeModel",
                resource,
                f"{CONVERSE_WHY}; the custom model's ARN is the modelId",
                context={**tagged, **with_rail},
                api="bedrock-runtime.Converse",
            ),
            Call(
                "bedrock:InvokeModelWithResponseStream",
                resource,
                "ConverseStream of the custom model",
                context={**tagged, **with_rail},
                api="bedrock-runtime.ConverseStream",
            ),
            Call(
                "bedrock:InvokeModel",
                resource,
                "not another profile's custom model",
                context=with_rail,
                expect="deny",
            ),
        ]
        if with_rail and deployment.guardrail_enforced:
            result.append(
                Call(
                    "bedrock:InvokeModel",
                    resource,
                    "a custom model must not answer without the profile's guardrail",
                    context=tagged,
                    expect="deny",
                )
            )
    return result
