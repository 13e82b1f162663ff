"""VectorStore: an S3 Vectors bucket with one index per knowledge base and the gateway's semantic
cache index (stateful, retained)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3vectors as s3vectors
from constructs import Construct

# Bedrock writes the chunk text and its metadata into these two keys of every vector; they can be
# larger than S3 Vectors allows for filterable metadata, so they are declared non-filterable.
BEDROCK_NON_FILTERABLE_KEYS = ("AMAZON_BEDROCK_TEXT", "AMAZON_BEDROCK_METADATA")


# The gateway's semantic cache (lambdas/gateway/semantic_cache.py) keeps each answer in one
# non-filterable key: an answer is larger than the 2 KB S3 Vectors allows for filterable metadata, and
# one key lets the entry's fields change without replacing the index.
SEMANTIC_CACHE_NON_FILTERABLE_KEYS = ("entry",)


@dataclass(frozen=True)
class IndexSpec:
    name: str
    dimensions: int
    non_filterable_keys: tuple[str, ...] = BEDROCK_NON_FILTERABLE_KEYS


@dataclass(frozen=True)
class S3VectorsStorage:
    """Where a knowledge base keeps its vectors: an S3 Vectors index."""

    index_arn: str


@dataclass(frozen=True)
class AuroraStorage:
    """Where a knowledge base keeps its vectors: a pgvector table in Aurora PostgreSQL (Data API)."""

    cluster_arn: str
    secret_arn: str  # the login Bedrock uses
    database: str
    table: str  # schema-qualified


@dataclass(frozen=True)
class KendraStorage:
    """Where a knowledge base finds its passages: an existing Amazon Kendra GenAI index, which holds,
    embeds and syncs its documents itself (Bedrock user guide, "Build a knowledge base with an Amazon
    Kendra GenAI index": https://docs.aws.amazon.com/bedrock/latest/userguide/knowledge-base-build-kendra-genai-index.html)."""

    index_arn: str


VectorStorage = S3VectorsStorage | AuroraStorage | KendraStorage


class VectorStore(Construct):
    """AWS::S3Vectors::VectorBucket (SSE-KMS with the platform key) and an AWS::S3Vectors::Index per spec.

    S3 Vectors has no idle compute: storage and queries are billed by use. Every index property is
    create-only (a change replaces the index and empties it), which is why indexes are retained and
    their logical IDs pinned. The key policy lets the S3 Vectors indexing service decrypt for its
    background index maintenance (Amazon S3 user guide, "Data protection and encryption in S3 Vectors").
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        indexes: Sequence[IndexSpec],
    ) -> None:
        super().__init__(scope, construct_id)
        if not indexes:
            raise ValueError("a vector store needs at least one index")
        stack = Stack.of(self)
        encryption = s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
            sse_type="aws:kms", kms_key_arn=encryption_key.key_arn
        )
        self.bucket = s3vectors.CfnVectorBucket(self, "Bucket", encryption_configuration=encryption)
        self.bucket.apply_removal_policy(RemovalPolicy.RETAIN)
        encryption_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowS3VectorsIndexing",
                principals=[iam.ServicePrincipal("indexing.s3vectors.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="s3vectors", resource="bucket", resource_name="*"
                        )
                    },
                },
            )
        )
        self.indexes: dict[str, s3vectors.CfnIndex] = {}
        for spec in indexes:
            index = s3vectors.CfnIndex(
                self,
                f"Index-{spec.name}",
                vector_bucket_arn=self.bucket.attr_vector_bucket_arn,
                data_type="float32",
                dimension=spec.dimensions,
                distance_metric="cosine",
                metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                    non_filterable_metadata_keys=list(spec.non_filterable_keys)
                ),
            )
            index.apply_removal_policy(RemovalPolicy.RETAIN)
            self.indexes[spec.name] = index

    def index_arn(self, name: str) -> str:
        return self.indexes[name].attr_index_arn
