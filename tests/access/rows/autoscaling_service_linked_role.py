"""AWSServiceRoleForAutoScaling: EC2 Auto Scaling launches the model hosts, whose launch templates
encrypt the root volume with the platform key, as this service-linked role.

The key policy must let the role use the key and create grants for AWS resources (EC2 Auto Scaling
user guide, "Required AWS KMS key policy for use with encrypted volumes", example 1:
https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html);
without it, launches fail with Client.InternalError (AWS re:Post,
https://repost.aws/knowledge-center/kms-launch-ec2-instance). EBS asks for data keys without
plaintext and re-encrypts; the grant lets EC2 decrypt for the attached volume later, so a grant that
is not for an AWS resource stays refused.
"""

from __future__ import annotations

from tests.access.deployment import AUTO_SCALING_SLR, Deployment, Role
from tests.access.rows import Call
from tests.access.rows.service_resources import resources

WHY = "EC2 Auto Scaling launches hosts with CMK-encrypted EBS (key-policy-requirements-EBS-encryption)"
NOTIFY = "EC2 Auto Scaling notifications to the KMS-encrypted alarm topic (sns-key-management)"


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    if role.name != AUTO_SCALING_SLR:
        return None
    keys = sorted(
        {
            mapping["Ebs"]["KmsKeyId"]
            for template in resources(deployment, "AWS::EC2::LaunchTemplate")
            for mapping in template.properties["LaunchTemplateData"].get("BlockDeviceMappings", [])
            if "KmsKeyId" in mapping.get("Ebs", {})
        }
    )
    assert keys, f"{deployment.profile}: Auto Scaling groups without CMK-encrypted volumes"
    result: list[Call] = []
    for key in keys:
        result += [
            Call(action, key, WHY)
            for action in (
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            )
        ]
        # Its notifications to the alarm topic, encrypted with the same key: SNS asks for a data key
        # (with plaintext) and decrypts it on the publisher's behalf (SNS developer guide, "Enable
        # compatibility between event sources from AWS services and encrypted topics":
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
        result += [Call(action, key, NOTIFY) for action in ("kms:GenerateDataKey", "kms:Decrypt")]
        result += [
            Call("kms:CreateGrant", key, WHY, context={"kms:GrantIsForAWSResource": True}),
            Call(
                "kms:CreateGrant",
                key,
                "a grant not for an AWS resource (EBS) stays refused",
                context={"kms:GrantIsForAWSResource": False},
                expect="deny",
            ),
            Call("kms:ScheduleKeyDeletion", key, "the role never administers the key", expect="deny"),
        ]
    return result


BUILDERS = (rows,)
