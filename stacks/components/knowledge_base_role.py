"""KnowledgeBaseRole: the service role a Bedrock knowledge base assumes to read its documents and
write its vectors. It lives beside the data it reads (the foundation stack)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.model_access import foundation_model_arn
from genai_stack.components.vector_store import KendraStorage, S3VectorsStorage, VectorStorage

# S3 Vectors actions the knowledge base uses on its index to write, read and remove vectors
# (Amazon S3 user guide, "Identity and Access management in S3 Vectors": vector-level actions take
# the Index resource type; QueryVectors with metadata also needs GetVectors).
VECTOR_ACTIONS = [
    "s3vectors:PutVectors",
    "s3vectors:GetVectors",
    "s3vectors:DeleteVectors",
    "s3vectors:QueryVectors",
    "s3vectors:GetIndex",
]


# What a knowledge base on a Kendra GenAI index does with it (Bedrock user guide, "Create a service role
# for Amazon Bedrock Knowledge Bases", permissions to access your Amazon Kendra GenAI index).
KENDRA_ACTIONS = ["kendra:Retrieve", "kendra:DescribeIndex"]


def storage_statements(storage: VectorStorage) -> list[iam.PolicyStatement]:
    """What the knowledge base needs on its vector store."""
    if isinstance(storage, KendraStorage):
        return [
            iam.PolicyStatement(
                sid="RetrieveFromTheIndex", actions=KENDRA_ACTIONS, resources=[storage.index_arn]
            )
        ]
    if isinstance(storage, S3VectorsStorage):
        return [
            iam.PolicyStatement(
                sid="UseTheVectorIndex", actions=VECTOR_ACTIONS, resources=[storage.index_arn]
            )
        ]
    # Aurora through the Data API (Bedrock user guide, "Create a service role for Amazon Bedrock
    # Knowledge Bases": permissions for an Amazon RDS vector store).
    return [
        iam.PolicyStatement(
            sid="DescribeTheCluster", actions=["rds:DescribeDBClusters"], resources=[storage.cluster_arn]
        ),
        iam.PolicyStatement(
            sid="QueryTheCluster",
            actions=["rds-data:ExecuteStatement", "rds-data:BatchExecuteStatement"],
            resources=[storage.cluster_arn],
        ),
        iam.PolicyStatement(
            sid="ReadTheLogin", actions=["secretsmanager:GetSecretValue"], resources=[storage.secret_arn]
        ),
    ]


class KnowledgeBaseRole(Construct):
    """Follows the Bedrock user guide ("Create a service role for Amazon Bedrock Knowledge Bases"):
    trusted by bedrock.amazonaws.com for knowledge bases of this account and region only;
    InvokeModel on the embedding model; ListBucket on the data bucket limited to the prefix and
    GetObject under it; decrypt with the platform key; on the vector store, the vector actions on the
    one S3 Vectors index, or Data API access to the Aurora cluster with its login secret.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        embedding_model_id: str | None,
        storage: VectorStorage,
        data_bucket: s3.Bucket,
        prefix: str,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            description=f"Bedrock knowledge base {name}: "
            + (
                "retrieve from its Kendra index"
                if isinstance(storage, KendraStorage)
                else f"embed the documents under {prefix}"
            ),
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="bedrock", resource="knowledge-base", resource_name="*"
                        )
                    },
                },
            ),
        )
        if isinstance(storage, KendraStorage):
            # The index embeds and reads its documents itself: the role only retrieves from it.
            for statement in storage_statements(storage):
                self.role.add_to_policy(statement)
            return
        statements = [
            iam.PolicyStatement(
                sid="EmbedWithTheModel",
                actions=["bedrock:InvokeModel"],
                resources=[foundation_model_arn(stack.region, embedding_model_id)],
            ),
            iam.PolicyStatement(
                sid="ListTheDocumentPrefix",
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadTheDocuments",
                actions=["s3:GetObject"],
                resources=[data_bucket.arn_for_objects(f"{prefix}*")],
            ),
            # The platform key, for three things the service does with this role: read KMS-encrypted
            # documents (kms:Decrypt through S3), encrypt the transient data of an ingestion job with the
            # data source's customer key (kms:GenerateDataKey and kms:Decrypt; Bedrock user guide,
            # encryption-kb.html, "Encryption of transient data storage during data ingestion"), and
            # write to a vector store encrypted with that key (the S3 Vectors bucket, SSE-KMS; the
            # Aurora login secret). Without GenerateDataKey every ingestion job fails.
            iam.PolicyStatement(
                sid="UseThePlatformKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[encryption_key.key_arn],
            ),
            *storage_statements(storage),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        compliance.acknowledge(
            self.role,
            compliance.KNOWLEDGE_BASE_DOCUMENTS.on_resolved(data_bucket.arn_for_objects(f"{prefix}*")),
        )
