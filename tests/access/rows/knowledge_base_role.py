"""Bedrock knowledge base service roles: what Bedrock does with the role of each knowledge base
(AWS::Bedrock::KnowledgeBase RoleArn) while it ingests its data sources and answers queries.

- Embedding: bedrock:InvokeModel on the embedding model (EmbeddingModelArn).
- S3 data source: s3:ListBucket on the bucket with s3:prefix = the data source's inclusion prefix,
  s3:GetObject on the documents under it, kms:Decrypt through S3 for an SSE-KMS bucket.
- Amazon RDS (Aurora) vector store: rds:DescribeDBClusters, rds-data:ExecuteStatement and
  rds-data:BatchExecuteStatement on the cluster, secretsmanager:GetSecretValue on the credentials secret.
- S3 Vectors vector store: the vector actions on the index ARN.
  Bedrock user guide, "Create a service role for Amazon Bedrock Knowledge Bases":
  https://docs.aws.amazon.com/bedrock/latest/userguide/kb-permissions.html
- Transient data of an ingestion job encrypted with the data source's key
  (ServerSideEncryptionConfiguration.KmsKeyArn): kms:GenerateDataKey and kms:Decrypt on that key;
  a secret encrypted with a customer managed key: kms:Decrypt through Secrets Manager.
  Bedrock user guide, "Encryption of knowledge base resources":
  https://docs.aws.amazon.com/bedrock/latest/userguide/encryption-kb.html
- S3 Vectors actions and the Index resource type: Amazon S3 user guide, "Identity and Access
  management in S3 Vectors": https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-access-management.html
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.bedrock_arns import foundation_model
from tests.access.rows.pgvector_schema import secret_rows
from tests.access.rows.s3_objects import TLS, denied_object, get_object, list_objects
from tests.access.rows.service_resources import Resource, bucket, resources, s3_arn

KB_WHY = "Bedrock ingests and queries the knowledge base with its service role (kb-permissions)"
TRANSIENT_WHY = (
    "an ingestion job encrypts its transient data with the data source's key (encryption-kb, "
    "Encryption of transient data storage during data ingestion)"
)
VECTOR_ACTIONS = (
    "s3vectors:PutVectors",
    "s3vectors:GetVectors",
    "s3vectors:DeleteVectors",
    "s3vectors:QueryVectors",
    "s3vectors:GetIndex",
)
ANOTHER_EMBEDDING_MODEL = "cohere.embed-english-v3"


def _data_sources(deployment: Deployment, knowledge_base: Resource) -> list[dict]:
    kb_id = deployment.resolver.get_att(knowledge_base.stack, knowledge_base.logical_id, "KnowledgeBaseId")
    return [
        r.properties
        for r in resources(deployment, "AWS::Bedrock::DataSource")
        if r.properties["KnowledgeBaseId"] == kb_id
    ]


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    knowledge_bases = [
        r for r in resources(deployment, "AWS::Bedrock::KnowledgeBase") if r.properties["RoleArn"] == role.arn
    ]
    if not knowledge_bases:
        return None
    result: list[Call] = []
    for knowledge_base in knowledge_bases:
        config = knowledge_base.properties["KnowledgeBaseConfiguration"]["VectorKnowledgeBaseConfiguration"]
        result.append(Call("bedrock:InvokeModel", config["EmbeddingModelArn"], f"{KB_WHY}: embeddings"))
        for source in _data_sources(deployment, knowledge_base):
            s3 = source["DataSourceConfiguration"]["S3Configuration"]
            bucket_name = s3["BucketArn"].rsplit(":", 1)[-1]
            for prefix in s3.get("InclusionPrefixes", [""]):
                result += list_objects(deployment, bucket_name, prefix, f"{KB_WHY}: list the documents")
                result += get_object(
                    deployment, bucket_name, f"{prefix}faq/billing.pdf", f"{KB_WHY}: read a document"
                )
                result.append(
                    denied_object(
                        deployment,
                        "s3:GetObject",
                        bucket_name,
                        "knowledge-bases/another-kb/doc.pdf",
                        "not another knowledge base's documents",
                    )
                )
            key = (source.get("ServerSideEncryptionConfiguration") or {}).get("KmsKeyArn")
            if key:
                result += [
                    Call(action, key, TRANSIENT_WHY) for action in ("kms:GenerateDataKey", "kms:Decrypt")
                ]
        result += _storage_rows(deployment, knowledge_base.properties["StorageConfiguration"])
    result += [
        Call(
            "bedrock:InvokeModel",
            foundation_model(deployment, ANOTHER_EMBEDDING_MODEL),
            "only the knowledge base's embedding model",
            expect="deny",
        ),
        Call(
            "s3:GetObject",
            s3_arn(deployment, bucket(deployment, "Artifacts"), "models/weights.bin"),
            "not another bucket",
            context=TLS,
            expect="deny",
        ),
    ]
    return result


def _storage_rows(deployment: Deployment, storage: dict) -> list[Call]:
    if storage["Type"] == "S3_VECTORS":
        index = storage["S3VectorsConfiguration"]["IndexArn"]
        return [Call(action, index, f"{KB_WHY}: the S3 Vectors index") for action in VECTOR_ACTIONS] + [
            Call(
                "s3vectors:PutVectors",
                index.rsplit("/index/", 1)[0] + "/index/another-index",
                "not another index",
                expect="deny",
            )
        ]
    if storage["Type"] == "RDS":
        rds = storage["RdsConfiguration"]
        cluster = rds["ResourceArn"]
        return [
            Call("rds:DescribeDBClusters", cluster, f"{KB_WHY}: the Aurora cluster"),
            Call("rds-data:ExecuteStatement", cluster, f"{KB_WHY}: vectors through the Data API"),
            Call("rds-data:BatchExecuteStatement", cluster, f"{KB_WHY}: vectors through the Data API"),
            *secret_rows(
                deployment,
                rds["CredentialsSecretArn"],
                f"{KB_WHY}: the Data API reads the login; a CMK-encrypted secret needs kms:Decrypt (encryption-kb)",
                "rds-data.ExecuteStatement",
            ),
            Call(
                "rds-data:ExecuteStatement",
                deployment.arn("rds", "cluster:another-cluster"),
                "not another cluster",
                expect="deny",
            ),
            Call(
                "secretsmanager:GetSecretValue",
                deployment.arn("secretsmanager", "secret:another-secret-AbCdEf"),
                "not another secret",
                expect="deny",
            ),
        ]
    raise NotImplementedError(f"knowledge base storage {storage['Type']} has no rows")


BUILDERS = (rows,)
