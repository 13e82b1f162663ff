"""KnowledgeBase: a Bedrock knowledge base on an S3 Vectors index, fed from a data-bucket prefix."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.components.model_access import foundation_model_arn
from genai_stack.components.vector_store import KendraStorage, S3VectorsStorage, VectorStorage
from genai_stack.config import Chunking, FixedChunking, HierarchicalChunking, SemanticChunking


def chunking_configuration(chunking: Chunking) -> bedrock.CfnDataSource.ChunkingConfigurationProperty:
    D = bedrock.CfnDataSource
    if isinstance(chunking, FixedChunking):
        return D.ChunkingConfigurationProperty(
            chunking_strategy="FIXED_SIZE",
            fixed_size_chunking_configuration=D.FixedSizeChunkingConfigurationProperty(
                max_tokens=chunking.max_tokens, overlap_percentage=chunking.overlap_percent
            ),
        )
    if isinstance(chunking, SemanticChunking):
        return D.ChunkingConfigurationProperty(
            chunking_strategy="SEMANTIC",
            semantic_chunking_configuration=D.SemanticChunkingConfigurationProperty(
                max_tokens=chunking.max_tokens,
                buffer_size=chunking.buffer_size,
                breakpoint_percentile_threshold=chunking.breakpoint_percentile_threshold,
            ),
        )
    if isinstance(chunking, HierarchicalChunking):
        return D.ChunkingConfigurationProperty(
            chunking_strategy="HIERARCHICAL",
            hierarchical_chunking_configuration=D.HierarchicalChunkingConfigurationProperty(
                level_configurations=[
                    D.HierarchicalChunkingLevelConfigurationProperty(max_tokens=chunking.parent_max_tokens),
                    D.HierarchicalChunkingLevelConfigurationProperty(max_tokens=chunking.child_max_tokens),
                ],
                overlap_tokens=chunking.overlap_tokens,
            ),
        )
    raise TypeError(f"unknown chunking {chunking!r}")


def storage_configuration(storage: VectorStorage) -> bedrock.CfnKnowledgeBase.StorageConfigurationProperty:
    K = bedrock.CfnKnowledgeBase
    if isinstance(storage, S3VectorsStorage):
        return K.StorageConfigurationProperty(
            type="S3_VECTORS",
            s3_vectors_configuration=K.S3VectorsConfigurationProperty(index_arn=storage.index_arn),
        )
    # Column names of the table lambdas/pgvector_schema creates.
    return K.StorageConfigurationProperty(
        type="RDS",
        rds_configuration=K.RdsConfigurationProperty(
            resource_arn=storage.cluster_arn,
            credentials_secret_arn=storage.secret_arn,
            database_name=storage.database,
            table_name=storage.table,
            field_mapping=K.RdsFieldMappingProperty(
                primary_key_field="id",
                vector_field="embedding",
                text_field="chunks",
                metadata_field="metadata",
                custom_metadata_field="custom_metadata",
            ),
        ),
    )


class KnowledgeBase(Construct):
    """AWS::Bedrock::KnowledgeBase (VECTOR, S3_VECTORS storage) + AWS::Bedrock::DataSource (S3 prefix);
    on a Kendra GenAI index (`KendraStorage`), a KENDRA knowledge base and no data source: the index
    syncs its own data sources (CloudFormation: KnowledgeBaseConfiguration Type KENDRA with
    KendraKnowledgeBaseConfiguration.KendraIndexArn, and no StorageConfiguration).

    `role` is the knowledge base's service role (`KnowledgeBaseRole`, built beside the data it
    reads). The data source keeps embedded data when it is deleted (DataDeletionPolicy RETAIN).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        description: str,
        embedding_model_id: str | None,
        dimensions: int | None,
        storage: VectorStorage,
        role: iam.IRole,
        data_bucket: s3.IBucket,
        prefix: str,
        chunking: Chunking,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = role
        self.data_source_id: str | None = None
        if isinstance(storage, KendraStorage):
            K = bedrock.CfnKnowledgeBase
            self.knowledge_base = K(
                self,
                "KnowledgeBase",
                name=name,
                description=description,
                role_arn=self.role.role_arn,
                knowledge_base_configuration=K.KnowledgeBaseConfigurationProperty(
                    type="KENDRA",
                    kendra_knowledge_base_configuration=K.KendraKnowledgeBaseConfigurationProperty(
                        kendra_index_arn=storage.index_arn
                    ),
                ),
            )
            self.knowledge_base.node.add_dependency(role)
            self.arn = self.knowledge_base.attr_knowledge_base_arn
            self.id = self.knowledge_base.attr_knowledge_base_id
            return
        if embedding_model_id is None or dimensions is None:
            raise ValueError(
                f"knowledge base {name}: a vector store needs the embedding model and dimensions"
            )
        model_arn = foundation_model_arn(Stack.of(self).region, embedding_model_id)
        self.knowledge_base = bedrock.CfnKnowledgeBase(
            self,
            "KnowledgeBase",
            name=name,
            description=description,
            role_arn=self.role.role_arn,
            knowledge_base_configuration=bedrock.CfnKnowledgeBase.KnowledgeBaseConfigurationProperty(
                type="VECTOR",
                vector_knowledge_base_configuration=bedrock.CfnKnowledgeBase.VectorKnowledgeBaseConfigurationProperty(
                    embedding_model_arn=model_arn,
                    embedding_model_configuration=bedrock.CfnKnowledgeBase.EmbeddingModelConfigurationProperty(
                        bedrock_embedding_model_configuration=bedrock.CfnKnowledgeBase.BedrockEmbeddingModelConfigurationProperty(
                            dimensions=dimensions, embedding_data_type="FLOAT32"
                        )
                    ),
                ),
            ),
            storage_configuration=storage_configuration(storage),
        )
        # Bedrock checks at creation that the role reaches the embedding model and the vector store
        # (CreateKnowledgeBase fails otherwise): create the knowledge base after the role's policies.
        self.knowledge_base.node.add_dependency(role)
        self.data_source = bedrock.CfnDataSource(
            self,
            "DataSource",
            name=f"{name}-documents",
            knowledge_base_id=self.knowledge_base.attr_knowledge_base_id,
            data_deletion_policy="RETAIN",
            data_source_configuration=bedrock.CfnDataSource.DataSourceConfigurationProperty(
                type="S3",
                s3_configuration=bedrock.CfnDataSource.S3DataSourceConfigurationProperty(
                    bucket_arn=data_bucket.bucket_arn, inclusion_prefixes=[prefix]
                ),
            ),
            server_side_encryption_configuration=bedrock.CfnDataSource.ServerSideEncryptionConfigurationProperty(
                kms_key_arn=encryption_key.key_arn
            ),
            vector_ingestion_configuration=bedrock.CfnDataSource.VectorIngestionConfigurationProperty(
                chunking_configuration=chunking_configuration(chunking)
            ),
        )
        self.arn = self.knowledge_base.attr_knowledge_base_arn
        self.id = self.knowledge_base.attr_knowledge_base_id
        self.data_source_id = self.data_source.attr_data_source_id
