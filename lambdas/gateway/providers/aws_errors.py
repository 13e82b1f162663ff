"""How AWS SDK errors map onto retry decisions."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from ..errors import ProviderError

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
MESSAGE_CHARS = 500  # how much of a model server's error text reaches the caller


def model_message(raw: str | bytes | None) -> str:
    """The message of a model server's error body: OpenAI's and vLLM's `{"error": {"message"}}`,
    vLLM's `{"message"}`, TGI's and LMI's `{"error": "..."}`, FastAPI's `{"detail"}`, else the text."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else (raw or "")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        elif isinstance(error, str):
            text = error
        elif isinstance(data.get("message"), str):
            text = data["message"]
        elif isinstance(data.get("detail"), str):
            text = data["detail"]
    return text.strip()[:MESSAGE_CHARS] or "no message"


def model_server_error(target: str, status: int, body: str | bytes | None) -> ProviderError:
    """A model server answered `status`: 5xx is the target's failure, 408 a timeout and 429
    throttling (all retried, then fallen back from); any other 4xx is the caller's request, refused
    by the model with its own message (answered as a 400, no fallback: every target would refuse it)."""
    message = model_message(body)
    if status >= 500 or status in (408, 429):
        return ProviderError(
            f"{target}: model answered HTTP {status} ({message})",
            retryable=True,
            throttled=status == 429,
            timeout=status == 408,
        )
    return ProviderError(
        f"{target}: model answered HTTP {status} ({message})", retryable=False, client_message=message
    )


def provider_error(target: str, error: Exception) -> ProviderError:
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError)):
        return ProviderError(f"{target}: timed out", retryable=True, timeout=True)
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ModelError":
            # InvokeEndpoint's ModelError (HTTP 424): the container answered with an error status,
            # given as OriginalStatusCode, its body as OriginalMessage (SageMaker Runtime API
            # Reference, InvokeEndpoint, "Errors"; ModelError:
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html,
            # https://docs.aws.amazon.com/botocore/latest/reference/services/sagemaker-runtime/client/exceptions/ModelError.html).
            # Without an original status it is the container's failure.
            original = error.response.get("OriginalStatusCode")
            body = error.response.get("OriginalMessage") or error.response.get("Error", {}).get("Message")
            return model_server_error(f"{target} ModelError", int(original or 500), body)
        message = str(error.response.get("Error", {}).get("Message") or "")[:MESSAGE_CHARS]
        if code == "ValidationException":
            # Bedrock's 400 for a request the model cannot take (input too long for its context,
            # a parameter out of range): the caller's request, answered as a 400 with Bedrock's
            # message and not retried or fallen back from (Bedrock API reference, Converse, Errors:
            # "ValidationException ... Input validation failed", HTTP 400:
            # https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).
            return ProviderError(
                f"{target}: {code} ({message})", retryable=False, client_message=message or code
            )
        retryable = code in RETRYABLE or status >= 500
        # Other 4xx (AccessDenied, ResourceNotFound: our configuration) stay our fault, with the
        # reason kept for the log and the 502's message.
        detail = f" ({message})" if message else ""
        return ProviderError(f"{target}: {code}{detail}", retryable=retryable, throttled=code in THROTTLED)
    return ProviderError(f"{target}: {type(error).__name__}", retryable=True)
