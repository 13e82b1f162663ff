"""Shared look-ups for the service-role row families: the deployment's resources of one type with
their resolved properties, S3 URIs, ECR image repositories and log streams, each as AWS names them.

- S3 URIs `s3://BUCKET/KEY` name the bucket and the key (prefix) the service reads or writes.
- An ECR image `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG` is pulled from the repository
  arn:${Partition}:ecr:${Region}:${Account}:repository/${RepositoryName} (Service Authorization
  Reference, Amazon ECR: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerregistry.html).
- Log groups and streams: arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName} and
  ...:log-group:${LogGroupName}:log-stream:${LogStreamName} (Service Authorization Reference,
  Amazon CloudWatch Logs: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.access.deployment import Deployment
from tests.access.rows import Call


@dataclass(frozen=True)
class Resource:
    stack: str
    logical_id: str
    path: str
    properties: Mapping[str, Any]  # resolved


def resources(deployment: Deployment, resource_type: str) -> Iterator[Resource]:
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != resource_type:
                continue
            yield Resource(
                stack,
                logical_id,
                resource.get("Metadata", {}).get("aws:cdk:path", logical_id),
                deployment.resolver.resolve(stack, resource.get("Properties", {})),
            )


def ref_by_path(deployment: Deployment, resource_type: str, path_suffix: str) -> str:
    """Ref (name or id) of the one resource of the type whose construct path ends with the suffix."""
    found = [
        deployment.resolver.ref(stack, logical_id)
        for stack, template in deployment.templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
        and resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix)
    ]
    if len(found) != 1:
        raise KeyError(f"{deployment.profile}: {len(found)} {resource_type} at *{path_suffix}")
    return found[0]


def bucket(deployment: Deployment, name: str) -> str:
    """The bucket of the foundation stack called `name` (Data, Artifacts)."""
    return ref_by_path(deployment, "AWS::S3::Bucket", f"/Foundation/{name}/Bucket/Resource")


def s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    assert uri.startswith("s3://"), uri
    bucket_name, _, key = uri[len("s3://") :].partition("/")
    return bucket_name, key


def s3_arn(deployment: Deployment, bucket_name: str, key: str | None = None) -> str:
    return f"arn:{deployment.partition}:s3:::{bucket_name}" + ("" if key is None else f"/{key}")


def ecr_repository(deployment: Deployment, image: str) -> str:
    registry, _, rest = image.partition("/")
    account, _, _, region = registry.split(".")[:4]
    repository = rest.split("@", 1)[0].rsplit(":", 1)[0]
    return deployment.arn("ecr", f"repository/{repository}", region=region, account=account)


def log_group_arn(deployment: Deployment, group: str) -> str:
    return deployment.arn("logs", f"log-group:{group}")


def log_stream_arn(deployment: Deployment, group: str, stream: str) -> str:
    return deployment.arn("logs", f"log-group:{group}:log-stream:{stream}")


def write_log_rows(deployment: Deployment, group: str, stream: str, why: str) -> list[Call]:
    """CreateLogStream and PutLogEvents are authorized on the log stream."""
    arn = log_stream_arn(deployment, group, stream)
    return [Call("logs:CreateLogStream", arn, why), Call("logs:PutLogEvents", arn, why)]


def another_log_group_row(deployment: Deployment, stream: str, why: str) -> Call:
    return Call(
        "logs:PutLogEvents",
        log_stream_arn(deployment, "another-log-group", stream),
        why,
        expect="deny",
    )
