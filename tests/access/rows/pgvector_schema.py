"""pgvector schema custom resource (lambdas/pgvector_schema): reads the Bedrock login's secret
(handler.py: secretsmanager GetSecretValue) and runs the statements through the RDS Data API
(logic.py run: rds-data ExecuteStatement with the admin secret).

- rds-data:ExecuteStatement on arn:${Partition}:rds:${Region}:${Account}:cluster:${DbClusterInstanceName}
  (Service Authorization Reference, RDS Data API:
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrdsdataapi.html);
  the caller also needs secretsmanager:GetSecretValue on the secret it passes ("Authorizing access to
  the RDS Data API": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.access.html).
- secretsmanager:GetSecretValue on the secret ARN; a secret encrypted with a customer managed key
  also needs kms:Decrypt through Secrets Manager, whose encryption context is the secret's ARN
  ("Secret encryption and decryption in AWS Secrets Manager":
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

PACKAGE = "pgvector_schema"
HANDLERS = ("lambdas.pgvector_schema.handler.on_event",)
APIS = frozenset({"secretsmanager.GetSecretValue", "rds-data.ExecuteStatement"})


def _secret_key(deployment: Deployment, secret_arn: str) -> str | None:
    """The key of a secret of the templates: a Secrets Manager secret, or the secret Aurora manages for a
    cluster's master password (AWS::RDS::DBCluster MasterUserSecret.KmsKeyId)."""
    resolver = deployment.resolver
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if (
                resource["Type"] == "AWS::SecretsManager::Secret"
                and resolver.ref(stack, logical_id) == secret_arn
            ):
                key = resource["Properties"].get("KmsKeyId")
                return resolver.resolve(stack, key) if key else None
            if (
                resource["Type"] == "AWS::RDS::DBCluster"
                and resource["Properties"].get("ManageMasterUserPassword")
                and resolver.get_att(stack, logical_id, "MasterUserSecret.SecretArn") == secret_arn
            ):
                key = resource["Properties"].get("MasterUserSecret", {}).get("KmsKeyId")
                return resolver.resolve(stack, key) if key else None
    raise KeyError(f"no secret {secret_arn} in {deployment.profile}")


def secret_rows(deployment: Deployment, secret_arn: str, why: str, api: str) -> list[Call]:
    result = [Call("secretsmanager:GetSecretValue", secret_arn, why, api=api)]
    key = _secret_key(deployment, secret_arn)
    if key:
        result.append(
            Call(
                "kms:Decrypt",
                key,
                f"{why}: the secret is encrypted with a customer managed key (security-encryption)",
                context={
                    "kms:ViaService": f"secretsmanager.{deployment.region}.amazonaws.com",
                    "kms:EncryptionContext:SecretARN": secret_arn,
                },
                api=api,
            )
        )
    return result


def rows(function: Function, deployment: Deployment) -> list[Call]:
    template = deployment.templates[function.stack]
    result: list[Call] = []
    for resource in template["Resources"].values():
        if resource["Type"] != "Custom::PgvectorSchema":
            continue
        properties = deployment.resolver.resolve(function.stack, resource["Properties"])
        result += secret_rows(
            deployment,
            properties["BedrockSecretArn"],
            "handler.py reads the Bedrock login",
            "secretsmanager.GetSecretValue",
        )
        result.append(
            Call(
                "rds-data:ExecuteStatement",
                properties["ClusterArn"],
                "logic.py run",
                api="rds-data.ExecuteStatement",
            )
        )
        result += secret_rows(
            deployment,
            properties["AdminSecretArn"],
            "the Data API reads the admin secret as the caller",
            "rds-data.ExecuteStatement",
        )
    return result + elsewhere(deployment, "secretsmanager:GetSecretValue")


def elsewhere(deployment: Deployment, secret_action: str) -> list[Call]:
    """What a role of the vector store must not do: `secret_action` on another secret, SQL on another
    cluster."""
    return [
        Call(
            secret_action,
            deployment.arn("secretsmanager", "secret:another-secret-AbCdEf"),
            "no other secret",
            expect="deny",
        ),
        Call(
            "rds-data:ExecuteStatement",
            deployment.arn("rds", "cluster:another-cluster"),
            "no other cluster",
            expect="deny",
        ),
    ]
