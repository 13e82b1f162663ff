"""A moto server on loopback for the gateway's DynamoDB cache: a real HTTP endpoint, no AWS."""

from __future__ import annotations

import boto3
import pytest

from tests.support.moto_server import moto_server


@pytest.fixture(scope="session")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


def moto_client(endpoint: str, service: str, **options):
    """A boto3 client of the moto server, with moto's test credentials."""
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        **options,
    )


@pytest.fixture
def dynamodb(moto_endpoint):
    return moto_client(moto_endpoint, "dynamodb")


def pk_table(dynamodb, request, prefix: str):
    """A table keyed by the string `pk` (as the foundation stack's gateway tables), named for the test;
    deleted after it."""
    name = f"{prefix}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    dynamodb.delete_table(TableName=name)


@pytest.fixture
def cache_table(dynamodb, request):
    yield from pk_table(dynamodb, request, "cache")


@pytest.fixture
def spend_table(dynamodb, request):
    yield from pk_table(dynamodb, request, "spend")


@pytest.fixture
def feedback_table(dynamodb, request):
    yield from pk_table(dynamodb, request, "feedback")
