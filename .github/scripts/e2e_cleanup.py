"""Remove what a profile's stacks retain after `cdk destroy`, by the profile's tag, and list what is
left. For the e2e workflow's throwaway profiles only: it deletes data for good.

Usage: python .github/scripts/e2e_cleanup.py NAME REGION [REGION ...]
(the profile's region, and us-east-1 where a profile's cost stack lives when its region lacks Budgets)

The stacks retain their stateful resources on purpose (docs/operations.md, "Deleting a profile"), so
`cdk destroy` leaves them. Found with the Resource Groups Tagging API (genai-stack:profile = NAME):
- S3 buckets: every object version and delete marker removed (governance locks bypassed), then the
  bucket;
- CloudWatch Logs groups, DynamoDB tables, SNS topics, Secrets Manager secrets (without a recovery
  window; a secret Aurora manages goes with its cluster);
- S3 Vectors buckets (their indexes first); SageMaker model package groups (their versions first);
- KMS keys: deletion scheduled after the shortest window, 7 days;
- Aurora clusters: deletion protection off, their instances and the cluster deleted without a final
  snapshot.
What remains (and anything that failed) is printed, and the exit status is 1 when something is left:
resources still deleting (Aurora) and keys pending deletion do not count.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

TAG = "genai-stack:profile"


def tagged(tagging: Any, name: str) -> list[str]:
    arns = []
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": TAG, "Values": [name]}]):
        arns += [r["ResourceARN"] for r in page.get("ResourceTagMappingList", [])]
    return arns


def empty_and_delete_bucket(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if objects:
            answer = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": objects, "Quiet": True}, BypassGovernanceRetention=True
            )
            if answer.get("Errors"):  # Quiet mode reports only what failed
                first = answer["Errors"][0]
                raise RuntimeError(
                    f"{len(answer['Errors'])} object(s) not deleted, e.g. {first['Key']}: {first['Message']}"
                )
    s3.delete_bucket(Bucket=bucket)


def delete_cluster(rds: Any, identifier: str) -> None:
    rds.modify_db_cluster(DBClusterIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    for member in cluster.get("DBClusterMembers", []):
        rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)


def delete_vector_bucket(s3vectors: Any, bucket: str) -> None:
    for page in s3vectors.get_paginator("list_indexes").paginate(vectorBucketName=bucket):
        for index in page.get("indexes", []):
            s3vectors.delete_index(vectorBucketName=bucket, indexName=index["indexName"])
    s3vectors.delete_vector_bucket(vectorBucketName=bucket)


def delete_package_group(sagemaker: Any, group: str) -> None:
    for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        for package in page.get("ModelPackageSummaryList", []):
            sagemaker.delete_model_package(ModelPackageName=package["ModelPackageArn"])
    sagemaker.delete_model_package_group(ModelPackageGroupName=group)


def remover(arn: str, client: Callable[[str], Any]) -> Callable[[], None] | None:
    """How to remove the resource `arn` names, or None for what deleting the stacks removes anyway."""
    service = arn.split(":")[2]
    resource = arn.split(":", 5)[5]
    if service == "s3":
        return lambda: empty_and_delete_bucket(client("s3"), resource)
    if service == "logs" and resource.startswith("log-group:"):
        group = resource.removeprefix("log-group:").removesuffix(":*")
        return lambda: client("logs").delete_log_group(logGroupName=group)
    if service == "dynamodb" and resource.startswith("table/"):
        return lambda: client("dynamodb").delete_table(TableName=resource.removeprefix("table/"))
    if service == "secretsmanager" and not resource.startswith(
        "secret:rds!"
    ):  # Aurora's own: with its cluster
        return lambda: client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    if service == "sns":
        return lambda: client("sns").delete_topic(TopicArn=arn)
    if service == "s3vectors" and resource.startswith("bucket/") and "/index/" not in resource:
        return lambda: delete_vector_bucket(client("s3vectors"), resource.removeprefix("bucket/"))
    if service == "sagemaker" and resource.startswith("model-package-group/"):
        return lambda: delete_package_group(
            client("sagemaker"), resource.removeprefix("model-package-group/")
        )
    if service == "kms" and resource.startswith("key/"):
        return lambda: client("kms").schedule_key_deletion(
            KeyId=resource.removeprefix("key/"), PendingWindowInDays=7
        )
    if service == "rds" and resource.startswith("cluster:"):
        return lambda: delete_cluster(client("rds"), resource.removeprefix("cluster:"))
    return None


def clean(name: str, client: Callable[[str], Any]) -> list[str]:
    """Remove what is left of profile `name`; returns what could not be removed, with why."""
    problems = []
    for arn in tagged(client("resourcegroupstaggingapi"), name):
        remove = remover(arn, client)
        if remove is None:
            continue
        try:
            remove()
            print(f"removed {arn}")
        except Exception as error:  # each resource on its own: report it and go on
            problems.append(f"{arn}: {error}")
    return problems


def going(arn: str, client: Callable[[str], Any]) -> bool:
    """Whether a resource is on its way out: a key pending deletion, an Aurora cluster or instance
    deleting, a secret Aurora manages (deleted with its cluster)."""
    service, resource = arn.split(":")[2], arn.split(":", 5)[5]
    if service == "kms":
        key = client("kms").describe_key(KeyId=resource.removeprefix("key/"))["KeyMetadata"]
        return key["KeyState"] == "PendingDeletion"
    if service == "rds" and resource.startswith("cluster:"):
        clusters = client("rds").describe_db_clusters(DBClusterIdentifier=resource.removeprefix("cluster:"))
        return clusters["DBClusters"][0]["Status"] == "deleting"
    if service == "rds" and resource.startswith("db:"):
        instances = client("rds").describe_db_instances(DBInstanceIdentifier=resource.removeprefix("db:"))
        return instances["DBInstances"][0]["DBInstanceStatus"] == "deleting"
    return service == "secretsmanager" and resource.startswith("secret:rds!")


def left(name: str, client: Callable[[str], Any]) -> list[str]:
    """What still carries the tag and is not on its way out."""
    return [arn for arn in tagged(client("resourcegroupstaggingapi"), name) if not going(arn, client)]


def main(argv: list[str]) -> int:
    import boto3

    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    name, regions = argv[1], list(dict.fromkeys(argv[2:]))
    problems, remaining = [], []
    for region in regions:
        session = boto3.Session(region_name=region)
        clients: dict[str, Any] = {}

        def client(service: str, session: Any = session, clients: dict[str, Any] = clients) -> Any:
            clients.setdefault(service, session.client(service))
            return clients[service]

        problems += clean(name, client)
        remaining += left(name, client)
    for line in problems:
        print(f"::warning::could not remove {line}")
    for arn in remaining:
        print(f"::warning::left behind: {arn}")
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
