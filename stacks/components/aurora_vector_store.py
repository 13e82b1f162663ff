"""AuroraVectorStore: Aurora PostgreSQL Serverless v2 with pgvector for Bedrock knowledge bases.

It scales to zero: with a minimum of 0 ACUs the cluster pauses after `auto_pause` without
connections and resumes on the next request (Aurora user guide, "Scaling to Zero ACUs with
automatic pause and resume for Aurora Serverless v2"), so idle cost is storage only. Bedrock reaches
it through the RDS Data API, so the cluster sits in isolated subnets with no inbound rule at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.python_custom_resource import PythonCustomResource
from genai_stack.components.python_function import encrypted_log_group
from genai_stack.components.vector_store import AuroraStorage, IndexSpec

DATABASE = "vectors"
SCHEMA = "bedrock_integration"  # lambdas/pgvector_schema/logic.py creates it
ENGINE = rds.AuroraPostgresEngineVersion.VER_16_8


class AuroraVectorStore(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        tables: Sequence[IndexSpec],
        min_capacity: float,
        max_capacity: float,
        auto_pause: Duration,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        if not tables:
            raise ValueError("an Aurora vector store needs at least one table")
        self.vpc = ec2.Vpc(
            self,
            "Network",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=26
                )
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        encrypted_log_group(
                            self, "FlowLogs", encryption_key=encryption_key, days=log_retention_days
                        )
                    )
                )
            },
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE),
            writer=rds.ClusterInstance.serverless_v2("writer"),
            serverless_v2_min_capacity=min_capacity,
            serverless_v2_max_capacity=max_capacity,
            serverless_v2_auto_pause_duration=auto_pause,
            default_database_name=DATABASE,
            credentials=rds.Credentials.from_generated_secret("postgres", encryption_key=encryption_key),
            enable_data_api=True,
            iam_authentication=True,
            storage_encrypted=True,
            storage_encryption_key=encryption_key,
            deletion_protection=True,
            backup=rds.BackupProps(retention=Duration.days(7)),
            cloudwatch_logs_exports=["postgresql"],
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            removal_policy=RemovalPolicy.RETAIN,
        )
        writer = self.cluster.node.find_child("writer").node.default_child
        compliance.skip_checkov(writer, compliance.SERVERLESS_WRITER_NO_ENHANCED_MONITORING)
        # aws-cdk-lib restricts the VPC's default security group with a provider function of its own.
        restrict_default_sg = Stack.of(self).node.try_find_child(
            "Custom::VpcRestrictDefaultSGCustomResourceProvider"
        )
        if restrict_default_sg is not None:
            compliance.skip_checkov(
                restrict_default_sg.node.find_child("Handler"),
                *compliance.VPC_DEFAULT_SG_PROVIDER_CHECKOV_SKIPS,
            )
        self.bedrock_secret = rds.DatabaseSecret(
            self, "BedrockLogin", username="bedrock_user", encryption_key=encryption_key
        )
        for secret in (self.cluster.node.find_child("Secret"), self.bedrock_secret):
            secret.apply_removal_policy(RemovalPolicy.RETAIN)
            compliance.acknowledge(secret, compliance.VECTOR_STORE_SECRET_NOT_ROTATED)

        schema = PythonCustomResource(
            self,
            "Schema",
            package="pgvector_schema",
            description="Custom resource: pgvector schema for Bedrock knowledge bases",
            resource_type="Custom::PgvectorSchema",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            # A paused cluster answers DatabaseResumingException while it resumes; the handler retries
            # with exponential backoff until 20 s before this timeout (lambdas/pgvector_schema/logic.py).
            # A changed `dimensions` fails the Create/Update before any DDL, and the rollback Update
            # (the old dimensions) succeeds: a table is never silently kept at the old size, nor
            # dropped under a knowledge base that still serves from it. The way to new dimensions is a
            # knowledge base under a new name (a new table, a new knowledge base ingested afresh).
            timeout_seconds=600,
            properties={
                "ClusterArn": self.cluster.cluster_arn,
                "AdminSecretArn": self.cluster.secret.secret_arn,
                "BedrockSecretArn": self.bedrock_secret.secret_arn,
                "Database": DATABASE,
                "Tables": json.dumps(
                    [{"name": t.name, "dimensions": t.dimensions} for t in tables], sort_keys=True
                ),
            },
        )
        handler = schema.handler.function
        handler.add_to_role_policy(
            iam.PolicyStatement(
                sid="RunTheSchemaStatements",
                actions=["rds-data:ExecuteStatement"],
                resources=[self.cluster.cluster_arn],
            )
        )
        self.cluster.secret.grant_read(handler)
        self.bedrock_secret.grant_read(handler)
        self.schema = schema.resource
        self.schema.node.add_dependency(self.cluster)
        self.storage = {
            t.name: AuroraStorage(
                cluster_arn=self.cluster.cluster_arn,
                secret_arn=self.bedrock_secret.secret_arn,
                database=DATABASE,
                table=f"{SCHEMA}.{t.name}",
            )
            for t in tables
        }
