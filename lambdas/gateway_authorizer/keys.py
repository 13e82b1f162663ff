"""Gateway keys: what a key looks like, how it is stored (a SHA-256 hash, never the key) and how a
request's `Authorization: Bearer <key>` becomes API Gateway's authorizer answer.

Shared by the authorizer function (lambdas/gateway_authorizer/handler.py), `genai-stack keys`
(stacks/cli/keys.py), which mints keys, and the local server (lambdas/gateway/local.py), which checks
them the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import string
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# An API Gateway API key value is an alphanumeric string of 20 to 128 characters (CreateApiKey;
# "Set up API keys for REST APIs in API Gateway"). A key is `gsk` and 45 random alphanumeric
# characters (about 268 bits), so that it is both a valid usage-plan key and easy to spot in a leak.
KEY_PREFIX = "gsk"
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_RANDOM_CHARACTERS = 45
# API Gateway checks the Authorization header against this before it invokes the authorizer; a
# missing or malformed header (anything but a key as minted here) is answered 401 without a Lambda
# invocation or a key-table read (AWS::ApiGateway::Authorizer
# IdentityValidationExpression, "Use API Gateway Lambda authorizers",
# https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html).
TOKEN_PATTERN = rf"^Bearer {KEY_PREFIX}[A-Za-z0-9]{{{KEY_RANDOM_CHARACTERS}}}$"  # exactly what new_key mints
_TOKEN = re.compile(TOKEN_PATTERN)
# How long API Gateway keeps the authorizer's answer for a key (AuthorizerResultTtlInSeconds; default
# 300, at most 3600: "Authorizer", API Gateway API reference,
# https://docs.aws.amazon.com/apigateway/latest/api/API_Authorizer.html).
AUTHORIZER_CACHE_SECONDS = 300
KEY_TABLE_OUTPUT = "GatewayKeyTableName"  # the foundation stack's output `genai-stack keys` reads
UNAUTHORIZED = "Unauthorized"  # the error a TOKEN authorizer raises for API Gateway to answer 401


def new_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_CHARACTERS))


def key_hash(key: str) -> str:
    """What the key table stores and logs may show: the key's SHA-256, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_key(header: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (what every OpenAI client sends), else None."""
    if not header or not _TOKEN.match(header):
        return None
    return header.removeprefix("Bearer ")


@dataclass(frozen=True)
class KeyRecord:
    tenant: str
    key_id: str  # the API Gateway API key id (the usage plan meters it); locally an id of our own


class KeyStore(Protocol):
    def lookup(self, hashed: str) -> KeyRecord | None: ...


class Unauthorized(Exception):
    """No such key: the authorizer raises "Unauthorized" and API Gateway answers 401."""


def stage_resources(method_arn: str) -> str:
    """Every method of the stage: `arn:aws:execute-api:region:account:api/stage/*/*`. The result is
    cached per key for all methods (a TOKEN authorizer's cache is keyed by the token alone), so a
    policy naming only the first method called would refuse the next one from the cache."""
    prefix, _, path = method_arn.partition(":execute-api:")
    if not prefix or not path:
        raise ValueError(f"not an execute-api method ARN: {method_arn!r}")
    location, _, rest = path.partition("/")
    stage = rest.split("/", 1)[0]
    return f"{prefix}:execute-api:{location}/{stage}/*/*"


def authorize(header: str | None, method_arn: str, store: KeyStore) -> dict[str, Any]:
    """The authorizer's answer for a known key: allow every method of the stage, tell API Gateway
    which usage-plan key to meter (`usageIdentifierKey`, with the API's key source AUTHORIZER: "the
    Lambda authorizer function must return one of the usage plan's API keys", "Output from an API
    Gateway Lambda authorizer", https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html),
    and pass the tenant's name to the gateway function (requestContext.authorizer.tenant)."""
    key = bearer_key(header)
    record = store.lookup(key_hash(key)) if key else None
    if record is None:
        raise Unauthorized(UNAUTHORIZED)
    return {
        "principalId": record.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": stage_resources(method_arn)}
            ],
        },
        "context": {"tenant": record.tenant, "keyId": record.key_id},
        "usageIdentifierKey": key,
    }


class DynamoKeyStore:
    """The profile's key table (foundation stack): partition key `pk` = key_hash(key)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def lookup(self, hashed: str) -> KeyRecord | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": hashed}},
            ProjectionExpression="tenant, key_id",
        ).get("Item")
        if not item:
            return None
        return KeyRecord(tenant=item["tenant"]["S"], key_id=item["key_id"]["S"])


class FileKeyStore:
    """`make gateway-local`'s keys: a JSON file {hash: {"tenant", "key_id"}}, reread when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._records: dict[str, KeyRecord] = {}

    def lookup(self, hashed: str) -> KeyRecord | None:
        with self._lock:
            stamp = self.path.stat().st_mtime if self.path.exists() else None
            if stamp != self._stamp:
                data = json.loads(self.path.read_text(encoding="utf-8")) if stamp is not None else {}
                self._records = {h: KeyRecord(r["tenant"], r["key_id"]) for h, r in data.items()}
                self._stamp = stamp
            return self._records.get(hashed)

    def add(self, tenant: str) -> str:
        """Mint a key for `tenant`, store its hash, return the key (shown once)."""
        key = new_key()
        with self._lock:
            data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
            hashed = key_hash(key)
            data[hashed] = {"tenant": tenant, "key_id": f"local-{hashed[:12]}"}
            self.path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            self.path.chmod(0o600)
            self._stamp = None
        return key
