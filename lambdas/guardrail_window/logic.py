"""Which guardrail versions the model-access policy accepts: the current one and the one that was
current before the last change.

Why: a guardrail change publishes version N+1 in the bedrock stack and that stack's policy then names
N+1, but the gateway (orchestration stack, deployed after it) still sends N until its own update.
Bedrock's condition key `bedrock:GuardrailIdentifier` takes a list of `ARN:VERSION` values (Bedrock
user guide, "Enforce the use of specific guardrails in model inference requests", example 5:
https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails-permissions-id.html), so the policy
names both while the rollout runs. CloudFormation sends an Update's previous properties
(OldResourceProperties), which is the only place the previous version number exists at deploy time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Window:
    current: str  # ARN:VERSION now published
    previous: str  # ARN:VERSION current before the last Update (the current one after a Create)

    def data(self) -> dict[str, str]:
        return {"Current": self.current, "Previous": self.previous}


def identifier(guardrail_arn: str, version: str) -> str:
    """The value Bedrock evaluates for `bedrock:GuardrailIdentifier` with a numeric version."""
    return f"{guardrail_arn}:{version}"


def window(
    request_type: Literal["Create", "Update"],
    *,
    guardrail_arn: str,
    version: str,
    old_guardrail_arn: str | None = None,
    old_version: str | None = None,
) -> Window:
    """A Create accepts only the new version; an Update accepts the new one and the one it replaces
    (a rollback is an Update too: it then accepts the restored version and the abandoned one)."""
    current = identifier(guardrail_arn, version)
    if request_type == "Update" and old_guardrail_arn and old_version:
        return Window(current=current, previous=identifier(old_guardrail_arn, old_version))
    return Window(current=current, previous=current)
