"""The service roles that release 0.1 kept in the foundation stack, kept there unused for one release.

Release 0.2 builds each service role in the approach stack that uses it (stacks/service_roles.py).
Deleting the 0.1 roles in the same release would break a deployed profile's update: `cdk deploy --all`
updates the foundation first, so CloudFormation would delete each role while the knowledge bases,
endpoints, hosts and jobs of the not yet updated approach stacks still run with it (and IAM refuses to
delete a host role that an instance profile holds). And an approach stack whose update fails rolls back
to its 0.1 template, which reads the roles' ARNs through Fn::GetStackOutput: the outputs must still
exist then, or the rollback fails too.

So 0.2 keeps the 0.1 roles in the foundation, with their construct IDs (hence their logical IDs and
names) and their published outputs, and nothing in the templates uses them; the approach stacks switch
to their own roles in the same deploy. Release 0.3 deletes this module and its call in stacks/stage.py
(tests/stacks/test_retired_roles.py fails from version 0.3.0 on until it is gone).

One use outside the templates remains: a model that the model deployer created under 0.1 for an
approved version names the 0.1 endpoint role, and an endpoint that serves it keeps it across this
upgrade (lambdas/model_deployer/logic.py config_for_settings). An approval under 0.2 creates a model
with the new role (logic.model_name digests the role), which docs/operations.md, "Upgrading", asks for
before 0.3; 0.3 should also refuse to go ahead while an endpoint serves such a model.
"""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, CfnResource, Stack
from constructs import Construct

from genai_stack.config import Profile
from genai_stack.foundation_stack import FoundationStack
from genai_stack.service_roles import (
    customization_role,
    endpoint_role,
    knowledge_base_role,
    model_host_role,
    training_role,
)

RETIRED_IN = "0.2.0"  # the release whose approach stacks stopped using these roles
REMOVE_IN = "0.3.0"  # the release that deletes them
# Template metadata on each retired resource: a reviewer sees it in the diff, and the offline access
# checks (tests/access) leave these roles out, since nothing uses them.
RETIRED_METADATA = "genai-stack:retired"


def keep_retired_roles(foundation: FoundationStack, profile: Profile) -> None:
    """Build the 0.1 service roles of `profile` in `foundation`, unused, and publish what 0.1's
    approach stacks read of them: each role's ARN, and the host roles' names (their instance
    profiles)."""
    bucket, artifacts, key = foundation.data_bucket, foundation.artifacts_bucket, foundation.key
    published: list[str] = []
    retired: list[Construct] = []
    # Kendra knowledge bases came after 0.1: no 0.1 stack reads a role of theirs.
    for kb in (k for k in profile.bedrock.knowledge_bases if not k.on_kendra) if profile.bedrock else ():
        role = knowledge_base_role(
            foundation,
            kb,
            storage=foundation.knowledge_base_storage[kb.name],
            data_bucket=bucket,
            encryption_key=key,
        )
        retired.append(role)
        published.append(role.role.role_arn)
    for host in profile.hosting.hosts if profile.hosting else ():
        role = model_host_role(foundation, host, artifacts_bucket=artifacts, encryption_key=key)
        retired.append(role)
        published.append(role.role.role_name)
    for endpoint in profile.inference.endpoints if profile.inference else ():
        roles = endpoint_role(
            foundation,
            endpoint,
            profile_name=profile.name,
            training=profile.training,
            artifacts_bucket=artifacts,
            encryption_key=key,
        )
        retired.append(roles)
        published.append(roles.role.role_arn)
        if roles.monitor_role is not None:
            published.append(roles.monitor_role.role_arn)
    for pipeline in profile.training.pipelines if profile.training else ():
        role = training_role(
            foundation, pipeline, data_bucket=bucket, artifacts_bucket=artifacts, encryption_key=key
        )
        retired.append(role)
        published.append(role.role.role_arn)
    for job in profile.training.customizations if profile.training else ():
        role = customization_role(
            foundation, job, data_bucket=bucket, artifacts_bucket=artifacts, encryption_key=key
        )
        retired.append(role)
        published.append(role.role.role_arn)
    for value in published:
        _publish(foundation, value)
    for construct in retired:
        for resource in construct.node.find_all():
            if isinstance(resource, CfnResource):
                resource.add_metadata(
                    RETIRED_METADATA,
                    {"retired_in": RETIRED_IN, "remove_in": REMOVE_IN, "why": "stacks/retired_roles.py"},
                )


def _publish(stack: Stack, value: str) -> None:
    """The output aws-cdk-lib 2.275 writes for a weak cross-stack reference to `value` (its
    `Publish/Output<reference>` construct, core/lib/private/refs.js createGetStackOutput), so the
    output keeps the logical ID that 0.1's approach stacks read. tests/stacks/test_retired_roles.py
    compares the IDs with 0.1's."""
    scope = stack.node.try_find_child("Publish") or Construct(stack, "Publish")
    output_id = "Output" + json.dumps(stack.resolve(value), separators=(",", ":"))
    if scope.node.try_find_child(output_id) is None:
        CfnOutput(scope, output_id, value=value)
