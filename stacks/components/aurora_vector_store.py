"""AuroraVectorStore: Aurora PostgreSQL Serverless v2 with pgvector for Bedrock knowledge bases.

It scales to zero: with a minimum of 0 ACUs the cluster pauses after `auto_pause` without
connections and resumes on the next request (Aurora user guide, "Scaling to Zero ACUs with
automatic pause and resume for Aurora Serverless v2"), so idle cost is storage only. Bedrock reaches
it through the RDS Data API, so the cluster sits in isolated subnets with no inbound rule at all.

Its two logins are rotated on the profile's schedule, neither through a network path to the cluster:
- the admin (master user, under a name of the profile's) has a password Aurora manages in Secrets
  Manager, encrypted with the platform key, and rotates itself ("managed rotation": Aurora user guide,
  "Password management with Amazon Aurora and AWS Secrets Manager",
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-secrets-manager.html);
- the Bedrock login is rotated by lambdas/login_rotation, which changes the password as the admin
  through the Data API (alternating users by default).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from aws_cdk import Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.python_custom_resource import PythonCustomResource
from genai_stack.components.python_function import PythonFunction, encrypted_log_group
from genai_stack.components.tag_conditions import via_service
from genai_stack.components.vector_store import AuroraStorage, IndexSpec
from genai_stack.lambdas.pgvector_schema.logic import ROLE as BEDROCK_ROLE

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
        admin_username: str,
        rotation_days: int,
        login_rotation: Literal["alternating_users", "single_user"],
    ) -> None:
        super().__init__(scope, construct_id)
        if not tables:
            raise ValueError("an Aurora vector store needs at least one table")
        if not 1 <= rotation_days <= 1000:  # RotationRules.AutomaticallyAfterDays
            raise ValueError(f"rotation_days must be 1 to 1000, not {rotation_days}")
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
            # The master user's name; its password is Aurora's to manage (below), never in the template.
            credentials=rds.Credentials.from_password(admin_username, SecretValue.unsafe_plain_text("-")),
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
        # Aurora generates the admin password, keeps it in a secret of its own encrypted with the
        # platform key, and rotates it (ManageMasterUserPassword, MasterUserSecret.KmsKeyId:
        # CloudFormation AWS::RDS::DBCluster; aws-cdk-lib's DatabaseCluster does not offer them). Aurora
        # deletes that secret only with the cluster, which is retained.
        cluster = self.cluster.node.default_child
        cluster.add_property_deletion_override("MasterUserPassword")
        cluster.manage_master_user_password = True
        cluster.master_user_secret = rds.CfnDBCluster.MasterUserSecretProperty(
            kms_key_id=encryption_key.key_arn
        )
        self.admin_secret_arn = cluster.attr_master_user_secret_secret_arn
        self.bedrock_secret = rds.DatabaseSecret(
            self, "BedrockLogin", username=BEDROCK_ROLE, encryption_key=encryption_key
        )
        self.bedrock_secret.apply_removal_policy(RemovalPolicy.RETAIN)
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
                "AdminSecretArn": self.admin_secret_arn,
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
        read_secret(handler, self.admin_secret_arn, encryption_key, sid="ReadTheAdminSecret")
        self.bedrock_secret.grant_read(handler)
        self.schema = schema.resource
        self.schema.node.add_dependency(self.cluster)
        self._rotate_logins(
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            rotation_days=rotation_days,
            login_rotation=login_rotation,
        )
        self.storage = {
            t.name: AuroraStorage(
                cluster_arn=self.cluster.cluster_arn,
                secret_arn=self.bedrock_secret.secret_arn,
                database=DATABASE,
                table=f"{SCHEMA}.{t.name}",
            )
            for t in tables
        }

    def _rotate_logins(
        self,
        *,
        encryption_key: kms.IKey,
        log_retention_days: int,
        rotation_days: int,
        login_rotation: str,
    ) -> None:
        """The admin secret on the profile's schedule (managed rotation: a rotation schedule with no
        function; RotateSecret's RotationLambdaARN: "For secrets that use managed rotation, omit this
        field", https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html),
        and the Bedrock login by lambdas/login_rotation on the same schedule. Neither rotates at
        deploy time (RotateImmediatelyOnUpdate false): the first rotation comes after `rotation_days`,
        or at once with `aws secretsmanager rotate-secret --secret-id <arn>`."""
        rules = secretsmanager.CfnRotationSchedule.RotationRulesProperty(
            automatically_after_days=rotation_days
        )
        admin_rotation = secretsmanager.CfnRotationSchedule(
            self,
            "AdminRotation",
            secret_id=self.admin_secret_arn,
            rotation_rules=rules,
            rotate_immediately_on_update=False,
        )
        admin_rotation.node.add_dependency(self.cluster)
        rotation = PythonFunction(
            self,
            "LoginRotation",
            package="login_rotation",
            with_packages=("pgvector_schema",),
            description="Rotates the Aurora vector store's Bedrock login through the RDS Data API",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            # Each step waits out a resuming cluster (the Data API resumes a paused cluster in seconds).
            timeout_seconds=120,
            environment={
                "CLUSTER_ARN": self.cluster.cluster_arn,
                "ADMIN_SECRET_ARN": self.admin_secret_arn,
                "DATABASE": DATABASE,
                "LOGIN_SECRET_ARN": self.bedrock_secret.secret_arn,
                "STRATEGY": login_rotation,
            },
        )
        function = rotation.function
        # The execution role of a rotation function (Secrets Manager user guide, "Lambda rotation
        # function execution role permissions":
        # https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets-required-permissions-function.html):
        # the four rotation calls on this secret only, GetRandomPassword (no resource type), and the key.
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RotateTheBedrockLogin",
                actions=[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                resources=[self.bedrock_secret.secret_arn],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="GeneratePasswords",
                actions=["secretsmanager:GetRandomPassword"],
                resources=["*"],  # GetRandomPassword has no resource type (Service Authorization Reference)
            )
        )
        compliance.acknowledge(rotation.role, compliance.RANDOM_PASSWORD_NO_RESOURCE)
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="SetTheLoginPasswordAsTheAdmin",
                actions=["rds-data:ExecuteStatement"],
                resources=[self.cluster.cluster_arn],
            )
        )
        read_secret(function, self.admin_secret_arn, encryption_key, sid="ReadTheAdminSecret")
        # PutSecretValue encrypts the new version: GenerateDataKey through Secrets Manager, bound to
        # this secret ("Secret encryption and decryption in AWS Secrets Manager").
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="EncryptTheBedrockLogin",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[encryption_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": via_service(self, "secretsmanager"),
                        "kms:EncryptionContext:SecretARN": self.bedrock_secret.secret_arn,
                    }
                },
            )
        )
        # Secrets Manager invokes the function for this account's secrets only.
        invoke = lambda_.CfnPermission(
            self,
            "SecretsManagerInvokesRotation",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=Stack.of(self).account,
        )
        schedule = secretsmanager.CfnRotationSchedule(
            self,
            "LoginRotationSchedule",
            secret_id=self.bedrock_secret.secret_arn,
            rotation_lambda_arn=function.function_arn,
            rotation_rules=rules,
            rotate_immediately_on_update=False,
        )
        # The schema resource creates the login role (and sets its first password) before any rotation.
        schedule.node.add_dependency(invoke)
        schedule.node.add_dependency(self.schema)
        self.login_rotation = rotation


def read_secret(function: lambda_.IFunction, secret_arn: str, key: kms.IKey, *, sid: str) -> None:
    """GetSecretValue on one secret encrypted with `key`, and the key's Decrypt through Secrets Manager
    for that secret only ("Secret encryption and decryption in AWS Secrets Manager":
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html). The Data API
    reads the secret a call names with the caller's rights ("Authorizing access to the RDS Data API")."""
    function.add_to_role_policy(
        iam.PolicyStatement(sid=sid, actions=["secretsmanager:GetSecretValue"], resources=[secret_arn])
    )
    function.add_to_role_policy(
        iam.PolicyStatement(
            sid=f"{sid}Key",
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": via_service(function, "secretsmanager"),
                    "kms:EncryptionContext:SecretARN": secret_arn,
                }
            },
        )
    )
