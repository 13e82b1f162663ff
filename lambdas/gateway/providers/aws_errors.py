"""How AWS SDK errors map onto retry decisions."""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from lambdas.gateway.errors import ProviderError

THROTTLED = {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}
RETRYABLE = THROTTLED | {
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
    "ModelNotReadyException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalDependencyException",
}


def provider_error(target: str, error: Exception) -> ProviderError:
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError)):
        return ProviderError(f"{target}: timed out", retryable=True, timeout=True)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        retryable = code in RETRYABLE or status >= 500
        return ProviderError(f"{target}: {code}", retryable=retryable, throttled=code in THROTTLED)
    return ProviderError(f"{target}: {type(error).__name__}", retryable=True)
