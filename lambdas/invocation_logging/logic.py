"""Invocation logging logic over an injected `bedrock` client (tests pass a stubbed one).

Model invocation logging is one setting per account and Region, not a resource: whoever calls
PutModelInvocationLoggingConfiguration last wins, and DeleteModelInvocationLoggingConfiguration
removes it for everybody. So this module only overwrites or deletes a configuration it can prove
is its own (it equals what this resource's properties set), and asks for an explicit take-over
before replacing anyone else's.

"Equal" compares only the fields this resource sets (the two destinations and the four delivery
flags), with an absent flag read as false and an absent key prefix as "". Fields it never sets
(audio delivery, the large-data S3 location of the CloudWatch destination) are ignored, so a
service-side default for them cannot make our own configuration look foreign.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_KEY_PREFIX = "bedrock-invocation-logs/"

Action = Literal["configured", "replaced", "deleted", "retained", "absent"]


class ForeignConfigurationError(RuntimeError):
    """Another party's logging configuration is in place and the profile does not allow a take-over."""


@dataclass(frozen=True)
class LoggingSettings:
    """The invocation logging configuration one custom resource sets."""

    log_group_name: str
    role_arn: str
    bucket_name: str
    key_prefix: str = DEFAULT_KEY_PREFIX
    text_data_delivery: bool = True
    image_data_delivery: bool = True
    embedding_data_delivery: bool = True
    video_data_delivery: bool = False

    def logging_config(self) -> dict[str, Any]:
        """The `loggingConfig` of PutModelInvocationLoggingConfiguration (botocore model 2023-04-20)."""
        return {
            "cloudWatchConfig": {"logGroupName": self.log_group_name, "roleArn": self.role_arn},
            "s3Config": {"bucketName": self.bucket_name, "keyPrefix": self.key_prefix},
            "textDataDeliveryEnabled": self.text_data_delivery,
            "imageDataDeliveryEnabled": self.image_data_delivery,
            "embeddingDataDeliveryEnabled": self.embedding_data_delivery,
            "videoDataDeliveryEnabled": self.video_data_delivery,
        }


@dataclass(frozen=True)
class Outcome:
    """What a request did, for the custom resource response and the log.

    `configured` says whether this resource's configuration is in place afterwards; `detail`
    names the destinations of a configuration that was replaced or left alone.
    """

    physical_resource_id: str
    configured: bool
    action: Action
    detail: str = ""


def physical_resource_id(region: str, settings: LoggingSettings) -> str:
    """A stable id naming the Region and destinations this resource configures.

    It changes when a destination moves, so CloudFormation then deletes the old "resource";
    `remove` leaves the new configuration alone because it no longer equals the old properties.
    """
    return (
        f"bedrock-invocation-logging:{region}:{settings.log_group_name}:"
        f"{settings.bucket_name}/{settings.key_prefix}"
    )


def current_config(client: Any) -> dict[str, Any] | None:
    """The account's current logging configuration, or None when logging is not configured.

    A configuration without any destination delivers nothing, so it counts as none.
    """
    config = client.get_model_invocation_logging_configuration().get("loggingConfig")
    if not config or not (config.get("cloudWatchConfig") or config.get("s3Config")):
        return None
    return config


def _managed_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields this resource sets, normalised the way the service reports unset values."""
    cloudwatch = config.get("cloudWatchConfig") or {}
    s3 = config.get("s3Config") or {}
    return {
        "logGroupName": cloudwatch.get("logGroupName"),
        "roleArn": cloudwatch.get("roleArn"),
        "bucketName": s3.get("bucketName"),
        "keyPrefix": s3.get("keyPrefix") or "",
        **{
            flag: bool(config.get(flag, False))
            for flag in (
                "textDataDeliveryEnabled",
                "imageDataDeliveryEnabled",
                "embeddingDataDeliveryEnabled",
                "videoDataDeliveryEnabled",
            )
        },
    }


def is_set_by(config: Mapping[str, Any], settings: LoggingSettings) -> bool:
    """Whether `config` is exactly what `settings` would put (see the module docstring)."""
    return _managed_fields(config) == _managed_fields(settings.logging_config())


def describe(config: Mapping[str, Any]) -> str:
    """The destinations of a configuration, for error messages and logs."""
    parts = []
    if log_group := (config.get("cloudWatchConfig") or {}).get("logGroupName"):
        parts.append(f"CloudWatch log group '{log_group}'")
    s3 = config.get("s3Config") or {}
    if bucket := s3.get("bucketName"):
        parts.append(f"S3 bucket '{bucket}' with key prefix '{s3.get('keyPrefix') or ''}'")
    return " and ".join(parts) or "no destination"


def _foreign_message(region: str, config: Mapping[str, Any]) -> str:
    return (
        f"Bedrock model invocation logging in {region} is already configured by someone else "
        f"({describe(config)}). It is a single setting per account and Region, so this stack will "
        "not overwrite it. To replace it, set take_over: true in the profile's Bedrock invocation "
        "logging settings; to keep it, turn invocation logging off in the profile."
    )


def _never() -> bool:
    return False


def apply(
    client: Any,
    desired: LoggingSettings,
    *,
    previous: LoggingSettings | None = None,
    take_over: bool = False,
    rolling_back: Callable[[], bool] = _never,
) -> Outcome:
    """Create or Update: put `desired` unless that would silently overwrite someone else's setting.

    The current configuration may be overwritten when there is none, when it already equals
    `desired` (a retried Create), or when it equals `previous` (what this resource set before an
    Update). Anything else belongs to someone else: replaced only when `take_over` is true,
    otherwise a ForeignConfigurationError naming its destinations fails the deployment.

    Except in a rollback. CloudFormation rolls a failed Update back by sending this resource another
    Update with the old properties; if that fails too the stack stops in UPDATE_ROLLBACK_FAILED and
    needs ContinueUpdateRollback by hand (CloudFormation API reference, ContinueUpdateRollback:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html).
    A foreign configuration that failed the forward Update is still there during the rollback, so the
    ownership check would fail it again. `rolling_back()` (asked only when a foreign configuration is
    found) says whether this Update is a rollback; then the foreign configuration is left exactly as it
    is, never replaced (not even with `take_over`), and the request succeeds with action "retained":
    a rollback restores, it does not take anything over.
    """
    region = client.meta.region_name
    current = current_config(client)
    action: Action = "configured"
    detail = ""
    ours = [desired] if previous is None else [desired, previous]
    if current is not None and not any(is_set_by(current, settings) for settings in ours):
        if rolling_back():
            return Outcome(
                physical_resource_id(region, desired),
                configured=False,
                action="retained",
                detail=describe(current),
            )
        if not take_over:
            raise ForeignConfigurationError(_foreign_message(region, current))
        action, detail = "replaced", describe(current)
    client.put_model_invocation_logging_configuration(loggingConfig=desired.logging_config())
    return Outcome(physical_resource_id(region, desired), configured=True, action=action, detail=detail)


def remove(client: Any, settings: LoggingSettings) -> Outcome:
    """Delete: remove the configuration only if it is still the one `settings` put.

    A missing or different configuration is left as it is and never fails the Delete: it was
    deleted or replaced by someone else (or by this stack's own Update to new destinations),
    and a stack that cannot be deleted would be worse than a setting left in place.
    """
    region = client.meta.region_name
    resource_id = physical_resource_id(region, settings)
    current = current_config(client)
    if current is None:
        return Outcome(resource_id, configured=False, action="absent")
    if not is_set_by(current, settings):
        return Outcome(resource_id, configured=False, action="retained", detail=describe(current))
    client.delete_model_invocation_logging_configuration()
    return Outcome(resource_id, configured=False, action="deleted")
