"""The service roles of a profile, built from its sections: one function per kind, so the approach
stack that uses a role and the foundation's retired copy (stacks/retired_roles.py) build it with the
same construct ID and the same arguments.

Each role lives in the stack of the resource that uses it (docs/architecture.md "Where each role
lives"): the knowledge bases' in the bedrock stack, the model hosts' in the hosting stack, the
endpoints' in the inference stack, the training jobs' and customization jobs' in the training stack.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.components.bedrock_customization_role import BedrockCustomizationRole
from genai_stack.components.knowledge_base_role import KnowledgeBaseRole
from genai_stack.components.model_endpoint_role import ModelEndpointRole
from genai_stack.components.model_host_role import ModelHostRole
from genai_stack.components.model_host_user_data import NEURON_COMPILED_PREFIX, wheelhouse_prefix
from genai_stack.components.training_job_role import TrainingJobRole, output_prefix
from genai_stack.components.vector_store import VectorStorage
from genai_stack.config import BedrockCustomization, InferenceEndpoint, KnowledgeBase, ModelHost, Training
from genai_stack.config import TrainingPipeline as TrainingPipelineSettings


def knowledge_base_role(
    scope: Construct,
    kb: KnowledgeBase,
    *,
    storage: VectorStorage,
    data_bucket: s3.IBucket,
    encryption_key: kms.IKey,
) -> KnowledgeBaseRole:
    return KnowledgeBaseRole(
        scope,
        f"KnowledgeBaseRole-{kb.name}",
        name=kb.name,
        embedding_model_id=kb.embedding_model,
        storage=storage,
        data_bucket=data_bucket,
        prefix=kb.prefix,
        encryption_key=encryption_key,
    )


def model_host_role(
    scope: Construct, host: ModelHost, *, artifacts_bucket: s3.IBucket, encryption_key: kms.IKey
) -> ModelHostRole:
    """Reads the host's weights (and vLLM's wheels on GPU); on Inferentia2 also writes the compiled model."""
    return ModelHostRole(
        scope,
        f"ModelHostRole-{host.name}",
        host_name=host.name,
        artifacts_bucket=artifacts_bucket,
        prefix=host.model.prefix,
        encryption_key=encryption_key,
        compiled_prefix=(
            host.model.prefix + NEURON_COMPILED_PREFIX if host.server == "vllm-neuron" else None
        ),
        wheelhouse_prefix=wheelhouse_prefix() if host.server == "vllm-gpu" else None,
    )


def endpoint_role(
    scope: Construct,
    endpoint: InferenceEndpoint,
    *,
    profile_name: str,
    training: Training | None,
    artifacts_bucket: s3.IBucket,
    encryption_key: kms.IKey,
) -> ModelEndpointRole:
    """The endpoint's execution (and monitor) role; it also reads the models of every training pipeline
    that deploys to the endpoint (`deploy_to`)."""
    role = ModelEndpointRole(
        scope,
        f"EndpointRole-{endpoint.name}",
        settings=endpoint,
        endpoint_name=f"{profile_name}-{endpoint.name}",
        artifacts_bucket=artifacts_bucket,
        encryption_key=encryption_key,
        region=Stack.of(scope).region,
    )
    for pipeline in training.pipelines if training else ():
        if endpoint.name in pipeline.deploy_to:
            role.read_trained_models(f"{output_prefix(pipeline)}*")
    return role


def training_role(
    scope: Construct,
    pipeline: TrainingPipelineSettings,
    *,
    data_bucket: s3.IBucket,
    artifacts_bucket: s3.IBucket,
    encryption_key: kms.IKey,
) -> TrainingJobRole:
    return TrainingJobRole(
        scope,
        f"TrainingRole-{pipeline.name}",
        settings=pipeline,
        data_bucket=data_bucket,
        artifacts_bucket=artifacts_bucket,
        encryption_key=encryption_key,
        region=Stack.of(scope).region,
    )


def customization_role(
    scope: Construct,
    job: BedrockCustomization,
    *,
    data_bucket: s3.IBucket,
    artifacts_bucket: s3.IBucket,
    encryption_key: kms.IKey,
) -> BedrockCustomizationRole:
    return BedrockCustomizationRole(
        scope,
        f"CustomizationRole-{job.name}",
        settings=job,
        data_bucket=data_bucket,
        artifacts_bucket=artifacts_bucket,
        encryption_key=encryption_key,
    )
