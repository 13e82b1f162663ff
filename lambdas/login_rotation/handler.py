"""Lambda entry point: the rotation function Secrets Manager invokes for the Aurora vector store's
Bedrock login (logic.py has the steps).

Event (Secrets Manager user guide, "Lambda rotation functions"): Step (createSecret, setSecret,
testSecret, finishSecret), SecretId (the secret's ARN), ClientRequestToken (the new version's id).
Environment: CLUSTER_ARN, ADMIN_SECRET_ARN (Aurora's managed secret of the master user), DATABASE,
LOGIN_SECRET_ARN (the only secret this function rotates), STRATEGY (alternating_users | single_user).

A failed step raises: Secrets Manager records the rotation as failed and leaves AWSCURRENT where it
was, and the next attempt resumes from the pending version.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import Rotation, Store

logger = Logger(service="login-rotation")
# Stop waiting for a resuming cluster this long before Lambda's own timeout, to report a clear error.
SAFETY_MARGIN_SECONDS = 10.0


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # RotationToken (cross-account rotation only)

    step: Literal["createSecret", "setSecret", "testSecret", "finishSecret"] = Field(alias="Step")
    secret_id: str = Field(alias="SecretId", min_length=1)
    token: str = Field(alias="ClientRequestToken", min_length=32, max_length=64)


@cache
def clients() -> tuple[Any, Any]:
    return boto3.client("secretsmanager"), boto3.client("rds-data")


def store() -> Store:
    strategy = os.environ["STRATEGY"]
    if strategy not in ("alternating_users", "single_user"):
        raise ValueError(f"STRATEGY is {strategy!r}, not alternating_users or single_user")
    return Store(
        cluster_arn=os.environ["CLUSTER_ARN"],
        admin_secret_arn=os.environ["ADMIN_SECRET_ARN"],
        database=os.environ["DATABASE"],
        login_secret_arn=os.environ["LOGIN_SECRET_ARN"],
        strategy=strategy,  # type: ignore[arg-type]  # checked above
    )


def on_event(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"not a Secrets Manager rotation event: {error}") from None
    secrets, rds_data = clients()

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS

    rotation = Rotation(store(), secrets=secrets, rds_data=rds_data, time_left=time_left)
    done = rotation.run(parsed.step, parsed.secret_id, parsed.token)
    logger.info("rotation step", extra={"step": parsed.step, "version": parsed.token, "result": done})
    return {"Step": parsed.step, "Result": done}
