"""`genai-stack keys create|list|revoke|rotate PROFILE TENANT`: the gateway's bearer keys, without a
deploy. A key is an API Gateway API key in the tenant's usage plan (rate, burst, quota: what API
Gateway meters) and its SHA-256 in the profile's key table (what the key authorizer checks,
lambdas/gateway_authorizer). The key is printed once and stored nowhere else.

AWS calls (your credentials, the profile's region): cloudformation DescribeStacks (the foundation
stack's key table output), apigateway GET /usageplans, POST /apikeys, POST
/usageplans/{id}/keys, DELETE /apikeys/{id}, dynamodb PutItem / Scan / DeleteItem on the key table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from genai_stack.cli.app import app, console, errors, fail, load_or_fail, print_json
from genai_stack.lambdas.gateway_authorizer.keys import KEY_TABLE_OUTPUT, key_hash, new_key

keys_app = typer.Typer(
    help="Issue, list, revoke and rotate the gateway's bearer keys (gateway.auth: api_key).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


class KeyOperationError(Exception):
    """A key operation that cannot go on, with what to do."""


def usage_plan_name(profile: str, tenant: str) -> str:
    """The tenant's usage plan (stacks/components/model_gateway.py usage_plan_name under a profile)."""
    return f"{profile}-gateway-{tenant}"


def key_table_name(cloudformation: Any, profile: str) -> str:
    stack = f"{profile}-foundation"
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        raise KeyOperationError(f"stack {stack} not found ({error}): deploy the profile first") from None
    for output in described.get("Outputs", []):
        if output["OutputKey"] == KEY_TABLE_OUTPUT:
            return output["OutputValue"]
    raise KeyOperationError(
        f"stack {stack} has no {KEY_TABLE_OUTPUT} output: deploy this version of the profile"
    )


@dataclass(frozen=True)
class IssuedKey:
    tenant: str
    key_id: str
    created_at: str


class KeyManager:
    """The key operations over injected clients (tests use moto)."""

    def __init__(self, *, apigateway: Any, dynamodb: Any, profile: str, table: str) -> None:
        self.apigateway = apigateway
        self.dynamodb = dynamodb
        self.profile = profile
        self.table = table

    def _plan_id(self, tenant: str) -> str:
        name = usage_plan_name(self.profile, tenant)
        for page in self.apigateway.get_paginator("get_usage_plans").paginate():
            for plan in page.get("items", []):
                if plan["name"] == name:
                    return plan["id"]
        raise KeyOperationError(
            f"usage plan {name} not found: deploy the profile's orchestration stack first"
        )

    def create(self, tenant: str) -> tuple[str, IssuedKey]:
        """A new key for `tenant`: the key (to hand over once) and what is kept about it."""
        plan = self._plan_id(tenant)
        key = new_key()
        created_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        api_key = self.apigateway.create_api_key(
            name=f"{self.profile}-{tenant}-{created_at.replace(':', '')}",
            description=f"genai-stack {self.profile} gateway key of tenant {tenant}",
            enabled=True,
            value=key,
            tags={"genai-stack:profile": self.profile, "genai-stack:tenant": tenant},
        )
        try:
            self.apigateway.create_usage_plan_key(usagePlanId=plan, keyId=api_key["id"], keyType="API_KEY")
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": key_hash(key)},
                    "tenant": {"S": tenant},
                    "key_id": {"S": api_key["id"]},
                    "created_at": {"S": created_at},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except (ClientError, BotoCoreError):
            self.apigateway.delete_api_key(apiKey=api_key["id"])  # no half-made key stays behind
            raise
        return key, IssuedKey(tenant=tenant, key_id=api_key["id"], created_at=created_at)

    def _records(self, tenant: str | None) -> list[tuple[str, IssuedKey]]:
        records = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
            for item in page.get("Items", []):
                issued = IssuedKey(item["tenant"]["S"], item["key_id"]["S"], item["created_at"]["S"])
                if tenant is None or issued.tenant == tenant:
                    records.append((item["pk"]["S"], issued))
        return sorted(records, key=lambda record: (record[1].tenant, record[1].created_at))

    def list(self, tenant: str | None = None) -> list[IssuedKey]:
        return [issued for _, issued in self._records(tenant)]

    def revoke(self, tenant: str, *, key_id: str | None = None, keep: str | None = None) -> list[IssuedKey]:
        """Remove the tenant's keys (or the one `key_id`): the table row first (the authorizer refuses it
        once its cached answer expires), then the API key (API Gateway refuses it from then on)."""
        revoked = []
        for hashed, issued in self._records(tenant):
            if (key_id and issued.key_id != key_id) or issued.key_id == keep:
                continue
            self.dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": hashed}})
            try:
                self.apigateway.delete_api_key(apiKey=issued.key_id)
            except ClientError as error:
                if error.response["Error"]["Code"] != "NotFoundException":
                    raise
            revoked.append(issued)
        if not revoked:
            which = f"key {key_id}" if key_id else "keys"
            raise KeyOperationError(
                f"tenant {tenant} has no {which} to revoke (genai-stack keys list {self.profile})"
            )
        return revoked

    def rotate(self, tenant: str) -> tuple[str, IssuedKey, list[IssuedKey]]:
        """A new key, then every older key of the tenant revoked."""
        key, issued = self.create(tenant)
        old = [i for i in self.list(tenant) if i.key_id != issued.key_id]
        revoked = self.revoke(tenant, keep=issued.key_id) if old else []
        return key, issued, revoked


def _manager(profile: str, tenant: str | None) -> KeyManager:
    """The profile's key manager; a tenant the profile does not list, or a profile without keys, fails."""
    loaded = load_or_fail(profile)
    if loaded.gateway is None or loaded.gateway.auth != "api_key":
        fail(f"profile {loaded.name} has no gateway with auth: api_key, so it has no keys")
    tenants = [t.name for t in loaded.gateway.tenants]
    if tenant is not None and tenant not in tenants:
        fail(
            f"tenant {tenant!r} is not in profile {loaded.name} "
            f"(gateway.tenants: {', '.join(tenants) or 'none'})"
        )
    import boto3

    session = boto3.Session(region_name=loaded.region)
    try:
        table = key_table_name(session.client("cloudformation"), loaded.name)
    except KeyOperationError as error:
        fail(str(error))
    except BotoCoreError as error:
        fail(f"no usable AWS credentials for {loaded.region}: {error}")
    return KeyManager(
        apigateway=session.client("apigateway"),
        dynamodb=session.client("dynamodb"),
        profile=loaded.name,
        table=table,
    )


def _run(operation):
    try:
        return operation()
    except KeyOperationError as error:
        fail(str(error))
    except (BotoCoreError, ClientError) as error:
        fail(f"AWS refused the key operation: {error}")


Profile = Annotated[str, typer.Argument(help="A built-in profile name or a profile file.")]
Tenant = Annotated[str, typer.Argument(help="A tenant of the profile's gateway.tenants.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _issued(key: str, issued: IssuedKey, revoked: Sequence[IssuedKey], json_output: bool) -> None:
    if json_output:
        print_json({"key": key, **asdict(issued), "revoked": [asdict(r) for r in revoked]})
        return
    errors.print(
        f"Key {issued.key_id} of tenant {issued.tenant}: shown once, only its hash is kept. "
        "Clients use it as their OpenAI api_key.",
        highlight=False,
    )
    for old in revoked:
        errors.print(f"Revoked {old.key_id} (created {old.created_at}).", highlight=False)
    typer.echo(key)  # alone on stdout: KEY=$(genai-stack keys create PROFILE TENANT)


@keys_app.command("create")
def create(profile: Profile, tenant: Tenant, json_output: Json = False) -> None:
    """Issue a key for TENANT (in its usage plan) and print it once.

    [b]Example[/]: KEY=$(genai-stack keys create managed-api marketing-tw)
    """
    manager = _manager(profile, tenant)
    key, issued = _run(lambda: manager.create(tenant))
    _issued(key, issued, [], json_output)


@keys_app.command("list")
def list_keys(
    profile: Profile,
    tenant: Annotated[str | None, typer.Argument(help="Only this tenant's keys.")] = None,
    json_output: Json = False,
) -> None:
    """The keys of the profile (ids, tenants, creation times; never key values)."""
    manager = _manager(profile, tenant)
    issued = _run(lambda: manager.list(tenant))
    if json_output:
        print_json([asdict(i) for i in issued])
        return
    table = Table(title=f"gateway keys of {manager.profile}")
    for column in ("Tenant", "Key id", "Created"):
        table.add_column(column)
    for item in issued:
        table.add_row(item.tenant, item.key_id, item.created_at)
    console.print(table)


@keys_app.command("revoke")
def revoke(
    profile: Profile,
    tenant: Tenant,
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="Only this key (default: all the tenant's).")
    ] = None,
    json_output: Json = False,
) -> None:
    """Revoke TENANT's keys (or one key): API Gateway refuses them at once."""
    manager = _manager(profile, tenant)
    revoked = _run(lambda: manager.revoke(tenant, key_id=key_id))
    if json_output:
        print_json([asdict(r) for r in revoked])
        return
    for item in revoked:
        console.print(
            f"revoked {item.key_id} of tenant {item.tenant} (created {item.created_at})", highlight=False
        )


@keys_app.command("rotate")
def rotate(profile: Profile, tenant: Tenant, json_output: Json = False) -> None:
    """Issue a new key for TENANT and revoke its older ones (for an overlap, `create` now and
    `revoke --key-id` later)."""
    manager = _manager(profile, tenant)
    key, issued, revoked = _run(lambda: manager.rotate(tenant))
    _issued(key, issued, revoked, json_output)
