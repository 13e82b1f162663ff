"""Bearer keys, end to end: the key authorizer's logic and function (DynamoDB on a moto server), the
local server checking keys the same way (the official openai client with only `api_key=`), the
answers of the deployed path and the local adapter compared (auth included), and `genai-stack keys`
against moto's API Gateway and DynamoDB."""

from __future__ import annotations

import importlib
import io
import json
import urllib.error
import urllib.request

import boto3
import openai
import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from typer.testing import CliRunner

from genai_stack.cli.keys import KeyManager, KeyOperationError, key_table_name, usage_plan_name
from lambdas.gateway.errors import gateway_response
from lambdas.gateway.local import serve
from lambdas.gateway.service import Gateway
from lambdas.gateway_authorizer.keys import (
    KEY_TABLE_OUTPUT,
    DynamoKeyStore,
    FileKeyStore,
    KeyRecord,
    Unauthorized,
    authorize,
    bearer_key,
    key_hash,
    new_key,
    stage_resources,
)
from tests.lambdas.gateway.conftest import moto_client
from tests.lambdas.gateway.fakes import FixedEmbeddings, ScriptedChat, answer

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/api/POST/v1/chat/completions"


class Keys:
    def __init__(self, records: dict[str, KeyRecord]) -> None:
        self.records = records
        self.looked_up: list[str] = []

    def lookup(self, hashed: str) -> KeyRecord | None:
        self.looked_up.append(hashed)
        return self.records.get(hashed)


# -- the authorizer's answer ------------------------------------------------------------------------
def test_a_known_key_is_allowed_on_every_method_with_its_tenant_and_usage_plan_key():
    key = new_key()
    store = Keys({key_hash(key): KeyRecord("marketing-tw", "k1a2b3")})
    answer = authorize(f"Bearer {key}", METHOD_ARN, store)
    (statement,) = answer["policyDocument"]["Statement"]
    # Cached per key for every method: the policy names the stage, not the first method called.
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/api/*/*",
    }
    assert answer["usageIdentifierKey"] == key  # API Gateway meters the tenant's usage plan by it
    assert answer["context"] == {"tenant": "marketing-tw", "keyId": "k1a2b3"}
    assert answer["principalId"] == "k1a2b3"
    assert store.looked_up == [key_hash(key)]  # the store sees a hash, never the key


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer short",
        "Basic dXNlcjpwYXNz",
        "bearer " + "a" * 30,
        "Bearer " + "a" * 30 + "-x",
    ],
)
def test_a_missing_malformed_or_unknown_key_is_unauthorized(header):
    with pytest.raises(Unauthorized):
        authorize(header, METHOD_ARN, Keys({}))
    with pytest.raises(Unauthorized):  # well formed but unknown
        authorize(f"Bearer {new_key()}", METHOD_ARN, Keys({}))


def test_minted_keys_are_valid_api_gateway_key_values_and_distinct():
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert 20 <= len(key) <= 128
        assert key.isalnum()
        assert bearer_key(f"Bearer {key}") == key


def test_stage_resources_refuses_what_is_not_a_method_arn():
    with pytest.raises(ValueError, match="execute-api"):
        stage_resources("arn:aws:lambda:us-east-1:123456789012:function:x")


# -- the authorizer function on DynamoDB (moto server) ----------------------------------------------
@pytest.fixture
def key_table(cache_table):
    """A table keyed by the string `pk`, as the key table is (the same shape as the cache table's)."""
    return cache_table


def put_key(dynamodb, table: str, key: str, tenant: str, key_id: str) -> None:
    dynamodb.put_item(
        TableName=table,
        Item={
            "pk": {"S": key_hash(key)},
            "tenant": {"S": tenant},
            "key_id": {"S": key_id},
            "created_at": {"S": "t"},
        },
    )


@pytest.fixture
def authorizer(dynamodb, key_table, monkeypatch):
    module = importlib.import_module("lambdas.gateway_authorizer.handler")
    monkeypatch.setattr(module, "key_store", lambda: DynamoKeyStore(dynamodb, key_table))
    module.logs = io.StringIO()
    monkeypatch.setattr(
        module, "logger", Logger(service=f"authorizer-test-{id(module.logs)}", stream=module.logs)
    )
    return module


def test_the_authorizer_function_allows_a_stored_key_and_never_logs_it(
    authorizer, dynamodb, key_table, capsys
):
    key = new_key()
    put_key(dynamodb, key_table, key, "marketing-en", "kid42")
    answer = authorizer.on_event(
        {"type": "TOKEN", "authorizationToken": f"Bearer {key}", "methodArn": METHOD_ARN}, None
    )
    assert answer["context"]["tenant"] == "marketing-en"
    assert answer["usageIdentifierKey"] == key
    logs = authorizer.logs.getvalue()
    assert "kid42" in logs
    assert key not in logs
    assert key[3:20] not in logs


def test_the_authorizer_function_raises_exactly_unauthorized_for_an_unknown_key(authorizer, capsys):
    """API Gateway answers 401 only for the message "Unauthorized" (any other error is a 500)."""
    key = new_key()
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.on_event(
            {"type": "TOKEN", "authorizationToken": f"Bearer {key}", "methodArn": METHOD_ARN}, None
        )
    logs = authorizer.logs.getvalue()
    assert "refused" in logs
    assert key not in logs


# -- the local server checks keys like the deployed API ---------------------------------------------
@pytest.fixture(scope="module")
def handler_module():
    import os

    previous = os.environ.get("GATEWAY_CONFIG")
    os.environ["GATEWAY_CONFIG"] = json.dumps({"chat": {"copywriter": [{"kind": "bedrock", "model": "m"}]}})
    module = importlib.reload(importlib.import_module("lambdas.gateway.handler"))
    module.gateway = lambda: Gateway(
        chat_routes={"copywriter": [ScriptedChat("bedrock:m", answer("Hello."))]},
        embedding_routes={"embedder": FixedEmbeddings()},
    )
    yield module
    if previous is None:
        os.environ.pop("GATEWAY_CONFIG", None)
    else:
        os.environ["GATEWAY_CONFIG"] = previous


@pytest.fixture
def keyed_server(handler_module, tmp_path):
    store = FileKeyStore(tmp_path / "keys.json")
    key = store.add("marketing-tw")
    seen: list[dict] = []

    def on_event(event, context):
        seen.append(event["requestContext"])
        return handler_module.on_event(event, context)

    server = serve(on_event, keys=store)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", key, seen, store
    server.shutdown()


def test_an_openai_client_with_only_api_key_is_served_and_its_tenant_is_the_name(keyed_server):
    base_url, key, seen, store = keyed_server
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    reply = client.chat.completions.create(model="copywriter", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == "Hello."
    (context,) = seen
    assert context["authorizer"]["tenant"] == "marketing-tw"
    assert key not in json.dumps(context)
    assert key not in (store.path.read_text())  # the key file holds hashes only


def test_a_wrong_key_is_a_401_openai_error_and_never_reaches_the_handler(keyed_server):
    base_url, _, seen, _ = keyed_server
    client = openai.OpenAI(base_url=base_url, api_key=new_key(), max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.models.list()
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert seen == []


def test_a_request_without_a_key_is_refused_too(keyed_server):
    base_url, _, seen, _ = keyed_server
    request = urllib.request.Request(base_url + "/models")  # noqa: S310 - loopback
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - loopback test server
    assert raised.value.code == 401
    assert json.loads(raised.value.read())["error"]["code"] == "invalid_api_key"
    assert seen == []


def test_a_key_added_to_the_file_works_without_a_restart(keyed_server):
    base_url, _, _, store = keyed_server
    later = store.add("marketing-en")
    assert openai.OpenAI(base_url=base_url, api_key=later, max_retries=0).models.list().data


# -- the deployed path and the local adapter answer alike --------------------------------------------
def api_gateway_401(synthesized, profile: str) -> tuple[int, dict]:
    """What the deployed API answers when the authorizer says Unauthorized: the template's gateway
    response, rendered as API Gateway renders it ($context.error.messageString is the quoted message)."""
    resources = synthesized.template(profile, "Orchestration")["Resources"]
    (response,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::GatewayResponse"
        and r["Properties"]["ResponseType"] == "UNAUTHORIZED"
    ]
    body = response["ResponseTemplates"]["application/json"].replace(
        "$context.error.messageString", '"Unauthorized"'
    )
    return int(response["StatusCode"]), json.loads(body)


def test_the_deployed_path_and_the_local_adapter_answer_identically(
    synthesized, keyed_server, authorizer, dynamodb, key_table, handler_module
):
    base_url, key, _, _ = keyed_server
    put_key(dynamodb, key_table, key, "marketing-tw", "kid7")
    # A wrong key: API Gateway's 401 from the template, and the local server's.
    wrong = urllib.request.Request(base_url + "/models", headers={"Authorization": f"Bearer {new_key()}"})  # noqa: S310 - loopback test server
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(wrong, timeout=5)  # noqa: S310 - loopback test server
    assert (raised.value.code, json.loads(raised.value.read())) == api_gateway_401(synthesized, "managed-api")
    assert api_gateway_401(synthesized, "managed-api") == gateway_response("UNAUTHORIZED", "Unauthorized")
    # A good key: the authorizer function's answer in the proxy event as API Gateway builds it
    # ("Input to a Lambda proxy integration": requestContext.authorizer holds the context and the
    # principalId; identity.apiKeyId the usage-plan key's id), against the local server's answer.
    allowed = authorizer.on_event(
        {"type": "TOKEN", "authorizationToken": f"Bearer {key}", "methodArn": METHOD_ARN}, None
    )
    event = {
        "httpMethod": "GET",
        "path": "/v1/models",
        "headers": {"authorization": f"Bearer {key}"},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": "r1",
            "identity": {"apiKeyId": allowed["principalId"]},
            "authorizer": {**allowed["context"], "principalId": allowed["principalId"]},
        },
    }
    deployed = handler_module.on_event(event, None)
    local = urllib.request.Request(base_url + "/models", headers={"Authorization": f"Bearer {key}"})  # noqa: S310 - loopback test server
    with urllib.request.urlopen(local, timeout=5) as response:  # noqa: S310 - loopback test server
        assert (response.status, json.loads(response.read())) == (
            deployed["statusCode"],
            json.loads(deployed["body"]),
        )
    assert handler_module.tenant_of(event["requestContext"]) == "marketing-tw"


# -- genai-stack keys against moto's API Gateway and DynamoDB ---------------------------------------
@pytest.fixture
def apigateway(moto_endpoint):
    return moto_client(moto_endpoint, "apigateway")


@pytest.fixture
def manager(apigateway, dynamodb, key_table, request):
    profile = f"p{abs(hash(request.node.name)) % 10**8}"
    api = apigateway.create_rest_api(name=f"{profile}-gateway")["id"]
    for tenant in ("marketing-tw", "marketing-en"):
        apigateway.create_usage_plan(name=usage_plan_name(profile, tenant))
    yield KeyManager(apigateway=apigateway, dynamodb=dynamodb, profile=profile, table=key_table)
    apigateway.delete_rest_api(restApiId=api)


def plan_keys(apigateway, profile: str, tenant: str) -> set[str]:
    (plan,) = [
        p for p in apigateway.get_usage_plans()["items"] if p["name"] == usage_plan_name(profile, tenant)
    ]
    return {k["id"] for k in apigateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}


def test_a_created_key_is_in_the_tenant_s_usage_plan_and_passes_the_authorizer(manager, apigateway, dynamodb):
    key, issued = manager.create("marketing-tw")
    assert apigateway.get_api_key(apiKey=issued.key_id, includeValue=True)["value"] == key
    assert plan_keys(apigateway, manager.profile, "marketing-tw") == {issued.key_id}
    assert plan_keys(apigateway, manager.profile, "marketing-en") == set()
    answer = authorize(f"Bearer {key}", METHOD_ARN, DynamoKeyStore(dynamodb, manager.table))
    assert answer["context"] == {"tenant": "marketing-tw", "keyId": issued.key_id}
    stored = json.dumps(dynamodb.scan(TableName=manager.table)["Items"])
    assert key not in stored
    assert key_hash(key) in stored


def test_rotate_issues_a_new_key_and_revokes_the_old_ones_everywhere(manager, apigateway, dynamodb):
    old_key, old = manager.create("marketing-tw")
    other_key, _other = manager.create("marketing-en")
    new_key_value, new, revoked = manager.rotate("marketing-tw")
    assert [r.key_id for r in revoked] == [old.key_id]
    store = DynamoKeyStore(dynamodb, manager.table)
    with pytest.raises(Unauthorized):
        authorize(f"Bearer {old_key}", METHOD_ARN, store)
    with pytest.raises(ClientError, match="NotFound"):
        apigateway.get_api_key(apiKey=old.key_id)
    assert authorize(f"Bearer {new_key_value}", METHOD_ARN, store)["context"]["keyId"] == new.key_id
    assert authorize(f"Bearer {other_key}", METHOD_ARN, store)["context"]["tenant"] == "marketing-en"
    assert [i.key_id for i in manager.list("marketing-tw")] == [new.key_id]


def test_revoke_one_key_or_all_and_say_so_when_there_is_none(manager):
    _, first = manager.create("marketing-tw")
    _, second = manager.create("marketing-tw")
    assert [r.key_id for r in manager.revoke("marketing-tw", key_id=first.key_id)] == [first.key_id]
    assert [i.key_id for i in manager.list()] == [second.key_id]
    manager.revoke("marketing-tw")
    with pytest.raises(KeyOperationError, match="no keys to revoke"):
        manager.revoke("marketing-tw")


def test_a_failed_create_leaves_no_key_behind(manager, apigateway, dynamodb):
    dynamodb.delete_table(TableName=manager.table)
    try:
        with pytest.raises(ClientError):
            manager.create("marketing-tw")
        names = [k["name"] for k in apigateway.get_api_keys()["items"]]
        assert not [n for n in names if n.startswith(f"{manager.profile}-")]
    finally:  # the fixture deletes the table again
        dynamodb.create_table(
            TableName=manager.table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def test_a_tenant_without_a_deployed_usage_plan_is_a_clear_error(manager):
    with pytest.raises(KeyOperationError, match=r"usage plan .*-gateway-nobody not found"):
        manager.create("nobody")


def test_the_key_table_comes_from_the_foundation_stack_output():
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cloudformation) as stub:
        for outputs in ([{"OutputKey": KEY_TABLE_OUTPUT, "OutputValue": "p-foundation-GatewayKeys-1"}], []):
            stack = {
                "StackName": "p-foundation",
                "CreationTime": "2026-01-01",
                "StackStatus": "CREATE_COMPLETE",
            }
            stub.add_response(
                "describe_stacks", {"Stacks": [{**stack, "Outputs": outputs}]}, {"StackName": "p-foundation"}
            )
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id p-foundation does not exist"
        )
        assert key_table_name(cloudformation, "p") == "p-foundation-GatewayKeys-1"
        with pytest.raises(KeyOperationError, match="no GatewayKeyTableName output"):
            key_table_name(cloudformation, "p")
        with pytest.raises(KeyOperationError, match="deploy the profile first"):
            key_table_name(cloudformation, "p")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "managed-api", "nobody"], "tenant 'nobody' is not in profile managed-api"),
        (["keys", "list", "customer-service"], "has no gateway with auth: api_key"),
        (["keys", "rotate", "no-such-profile", "t"], "no-such-profile"),
    ],
)
def test_the_keys_command_refuses_what_the_profile_does_not_have(args, message):
    from genai_stack.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
