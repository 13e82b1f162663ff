"""A moto server on loopback for the gateway's DynamoDB cache: a real HTTP endpoint, no AWS."""

from __future__ import annotations

import boto3
import pytest

from tests.support.moto_server import moto_server


@pytest.fixture(scope="session")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def dynamodb(moto_endpoint):
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def cache_table(dynamodb, request):
    name = f"cache-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    dynamodb.delete_table(TableName=name)
