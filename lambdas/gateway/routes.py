"""Which route a proxy event is for."""

from __future__ import annotations

from typing import Any


def route_of(event: dict[str, Any]) -> str:
    """The route API Gateway matched (`resource`, with path parameters filled in), else the path.

    `path` is what the client asked for: behind a custom domain with a base path mapping it carries
    the base path too, while `resource` is the API's own resource path ("Input format of a Lambda
    function for proxy integration", API Gateway guide:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html).
    The local server's events have no `resource`: their path is the route."""
    resource = event.get("resource")
    if resource:
        for name, value in (event.get("pathParameters") or {}).items():
            resource = resource.replace("{" + name + "}", str(value))
        return resource.rstrip("/")
    return (event.get("path") or "").rstrip("/")
