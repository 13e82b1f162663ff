"""An in-process S3 Vectors data plane behind a real botocore `s3vectors` client.

moto (5.2) has vector buckets and indexes but no QueryVectors, so this answers the client's HTTP
requests itself, from a `before-send` hook: the client serializes every call exactly as it would for
AWS (its service model checks the parameters, the filter and metadata are JSON documents on the
wire) and parses the answers as AWS's. What it implements, as the Amazon S3 API reference describes
it: PutVectors (a key replaces its vector), QueryVectors (topK nearest by cosine distance, 1 -
cosine similarity; the metadata filter's $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $and,
$or; queryMode: ENHANCED filters before the search, CLASSIC, the index's default here, among the
nearest; returnMetadata, returnDistance), GetVectors and DeleteVectors. Every request's Signature
Version 4 signature is checked against the body received, as AWS checks it (403
SignatureDoesNotMatch otherwise). `outage` makes every call fail with a 503, `latency` delays each
answer.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from tests.support.stubs import offline_client


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def signed_as_sent(request) -> bool:
    """Recompute the request's SigV4 signature (offline_client's credentials, its X-Amz-Date and
    signed headers) over the body as sent, and compare it with the Authorization header's."""
    authorization = _text(request.headers["Authorization"])
    fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(","))
    names = fields["SignedHeaders"].split(";")
    headers = {name: _text(request.headers[name]) for name in names if name != "host"}
    copy = AWSRequest(method=request.method, url=request.url, data=request.body, headers=headers)
    copy.context["timestamp"] = _text(request.headers["X-Amz-Date"])
    signer = SigV4Auth(Credentials("testing", "testing"), "s3vectors", "us-east-1")
    expected = signer.signature(signer.string_to_sign(copy, signer.canonical_request(copy)), copy)
    return expected == fields["Signature"]


def cosine_distance(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - (dot / norm if norm else 0.0)


def matches(metadata: dict[str, Any], condition: dict[str, Any]) -> bool:
    for field, test in condition.items():
        if field == "$and":
            if not all(matches(metadata, c) for c in test):
                return False
            continue
        if field == "$or":
            if not any(matches(metadata, c) for c in test):
                return False
            continue
        if not isinstance(test, dict):
            test = {"$eq": test}
        value = metadata.get(field)
        for op, operand in test.items():
            ok = _test(op, value, operand, present=field in metadata)
            if not ok:
                return False
    return True


def _test(op: str, value: Any, operand: Any, *, present: bool) -> bool:
    if op == "$exists":
        return present == operand
    if op in ("$in", "$nin"):
        return (value in operand) == (op == "$in")
    if op in ("$eq", "$ne"):
        return (value == operand) == (op == "$eq")
    if value is None:
        return False
    return {
        "$gt": value > operand,
        "$gte": value >= operand,
        "$lt": value < operand,
        "$lte": value <= operand,
    }[op]


class S3VectorsFake:
    def __init__(self, *, non_filterable: tuple[str, ...] = ("entry",)) -> None:
        self.indexes: dict[str, dict[str, tuple[list[float], dict[str, Any]]]] = {}
        self.non_filterable = non_filterable
        self.outage = False
        self.fail_next = 0  # this many calls fail with a 503 before the store answers again
        self.index_mode = "CLASSIC"
        self.latency = 0.0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.seconds = 0.0  # spent answering: the store's own time, which a benchmark leaves out

    def client(self):
        client = offline_client("s3vectors")
        client.meta.events.register("before-send.s3vectors", self._answer)
        return client

    def _answer(self, request, **_: Any) -> AWSResponse:
        started = time.perf_counter()
        try:
            return self._operation(request)
        finally:
            self.seconds += time.perf_counter() - started

    def _operation(self, request) -> AWSResponse:
        if not signed_as_sent(request):
            return self._reply(403, {"message": "signature mismatch"}, error="SignatureDoesNotMatch")
        operation = urlsplit(request.url).path.strip("/")
        body = json.loads(request.body or b"{}")
        self.calls.append((operation, body))
        if self.latency:
            time.sleep(self.latency)
        if self.outage or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            return self._reply(503, {"message": "Service unavailable"}, error="ServiceUnavailableException")
        index = self.indexes.setdefault(body.get("indexArn", ""), {})
        if operation == "PutVectors":
            for vector in body["vectors"]:
                index[vector["key"]] = (vector["data"]["float32"], vector.get("metadata") or {})
            return self._reply(200, {})
        if operation == "QueryVectors":
            wanted = body.get("filter")
            if wanted and any(key in json.dumps(wanted) for key in self.non_filterable):
                return self._reply(
                    400, {"message": "filter on non-filterable metadata"}, error="ValidationException"
                )
            # ENHANCED filters before the search; CLASSIC (the default of an index in a bucket made
            # before 30 September 2026) during it: here, among the top K nearest, so a filter that
            # matches few vectors finds fewer than K, as the "Metadata filtering" page warns.
            enhanced = body.get("queryMode", self.index_mode) == "ENHANCED"
            candidates = sorted(
                (cosine_distance(body["queryVector"]["float32"], data), key, metadata)
                for key, (data, metadata) in index.items()
                if not (enhanced and wanted) or matches(metadata, wanted)
            )
            if not enhanced:
                candidates = [c for c in candidates[: body["topK"]] if not wanted or matches(c[2], wanted)]
            vectors = []
            for distance, key, metadata in candidates[: body["topK"]]:
                item: dict[str, Any] = {"key": key}
                if body.get("returnDistance"):
                    item["distance"] = distance
                if body.get("returnMetadata"):
                    item["metadata"] = metadata
                vectors.append(item)
            return self._reply(200, {"vectors": vectors, "distanceMetric": "cosine"})
        if operation == "GetVectors":
            found = [{"key": k, "metadata": index[k][1]} for k in body["keys"] if k in index]
            return self._reply(200, {"vectors": found})
        if operation == "DeleteVectors":
            for key in body["keys"]:
                index.pop(key, None)
            return self._reply(200, {})
        return self._reply(400, {"message": f"{operation} is not faked"}, error="ValidationException")

    @staticmethod
    def _reply(status: int, document: dict[str, Any], *, error: str | None = None) -> AWSResponse:
        headers = {"Content-Type": "application/json"}
        if error:
            headers["x-amzn-ErrorType"] = error
        return AWSResponse(
            "https://s3vectors.us-east-1.api.aws", status, headers, _Raw(json.dumps(document).encode())
        )
