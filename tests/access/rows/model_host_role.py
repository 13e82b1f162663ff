"""EC2 model host instance roles: what the host does with its instance profile.

- Boot (stacks/templates model host user data): `aws s3 sync s3://ARTIFACTS/models/<name>/ ...`
  lists the prefix (s3:ListBucket with s3:prefix, ListObjectsV2) and reads each object (s3:GetObject),
  kms:Decrypt through S3 for the SSE-KMS artifacts bucket (rows/s3_objects.py cites the S3 pages).
- Neuron hosts: `aws s3 ls <prefix>neuron-compiled/<key>/_COMPLETE` (ListBucket with that s3:prefix)
  and a sync of the compiled model down (GetObject); after /health a host that compiled uploads it
  (`aws s3 sync` / `aws s3 cp -`: s3:PutObject, which also authorizes multipart uploads' parts, and
  kms:GenerateDataKey for SSE-KMS) under `<prefix>neuron-compiled/` and nowhere else.
- GPU hosts whose AMI has no vLLM venv: `aws s3 sync s3://ARTIFACTS/wheels/vllm-<version>/<cpXY>/ ...`
  (ListBucket with that s3:prefix, GetObject of each wheel), staged by `genai-stack wheelhouse`; read
  only, only this vLLM version's wheels.
- The CloudWatch agent (stacks/components/model_host_user_data.py cloudwatch_agent_config) puts the
  boot and server logs to the host's log group, stream `<instance-id>/boot|server`
  (logs:CreateLogStream, logs:PutLogEvents), and metrics in the namespace GenAiStack/ModelHosts
  (cloudwatch:PutMetricData with cloudwatch:namespace). CloudWatch agent guide, "Create IAM roles
  and users for use with the CloudWatch agent" and "Manually create or edit the CloudWatch agent
  configuration file": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/create-iam-roles-for-cloudwatch-agent.html,
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html
- Session Manager: the SSM Agent registers (ssm:UpdateInstanceInformation), opens its channels
  (ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel, OpenDataChannel) and polls
  (ec2messages:GetMessages). Systems Manager user guide, "Step 2: Verify or add instance permissions
  for Session Manager": https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-getting-started-instance-profile.html
"""

from __future__ import annotations

from genai_stack.components.model_host_fleet import METRICS_NAMESPACE
from genai_stack.components.model_host_user_data import NEURON_COMPILED_PREFIX, wheelhouse_prefix
from genai_stack.config import load_profile
from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.s3_objects import TLS, denied_object, get_object, list_objects, put_object
from tests.access.rows.service_resources import bucket, ref_by_path, s3_arn, write_log_rows

WHY = "the model host boots with its instance role (user data)"
INSTANCE = "i-0123456789abcdef0"
# A compiled-model key as model_host.sh.tmpl builds it (release, settings, versions, hashes).
COMPILED_KEY = (
    "neuron2.28-tp2-len8192-seqs8-nxdi0.7.14366-cc2.21.18209.0_043b1bf7-config0123abcd4567-args89ef0123abcd"
)
SSM_WHY = "SSM Agent for Session Manager (session-manager-getting-started-instance-profile)"


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    if role.service_principals != ("ec2.amazonaws.com",) or "/ModelHostRole-" not in role.path:
        return None
    host_name = role.path.split("/ModelHostRole-", 1)[1].split("/", 1)[0]
    hosting = load_profile(deployment.profile).hosting
    hosts = {h.name: h for h in hosting.hosts}
    host = hosts[host_name]
    artifacts = bucket(deployment, "Artifacts")
    hosting_stack, foundation_stack = (
        next(name for name in deployment.templates if name.endswith(suffix))
        for suffix in ("-hosting", "-foundation")
    )
    prefix = host.model.prefix
    log_group = ref_by_path(deployment, "AWS::Logs::LogGroup", f"/Host-{host_name}/Logs/Resource")
    result = [
        *list_objects(deployment, artifacts, prefix, f"{WHY}: aws s3 sync lists the model prefix"),
        *get_object(deployment, artifacts, f"{prefix}config.json", f"{WHY}: aws s3 sync reads the weights"),
        *write_log_rows(deployment, log_group, f"{INSTANCE}/boot", f"{WHY}: CloudWatch agent logs"),
        *write_log_rows(deployment, log_group, f"{INSTANCE}/server", f"{WHY}: CloudWatch agent logs"),
        Call(
            "cloudwatch:PutMetricData",
            "*",
            f"{WHY}: CloudWatch agent metrics",
            context={"cloudwatch:namespace": METRICS_NAMESPACE},
        ),
        Call("ssm:UpdateInstanceInformation", deployment.arn("ec2", f"instance/{INSTANCE}"), SSM_WHY),
        *(
            Call(f"ssmmessages:{action}", "*", SSM_WHY)
            for action in (
                "CreateControlChannel",
                "CreateDataChannel",
                "OpenControlChannel",
                "OpenDataChannel",
            )
        ),
        Call("ec2messages:GetMessages", "*", SSM_WHY),
        Call(
            "cloudformation:SignalResource",
            deployment.resolver.resolve(hosting_stack, {"Ref": "AWS::StackId"}),
            f"{WHY}: aws cloudformation signal-resource after /health (model_host.sh.tmpl)",
        ),
        Call(
            "cloudformation:SignalResource",
            deployment.resolver.resolve(foundation_stack, {"Ref": "AWS::StackId"}),
            "only the hosting stack waits for the hosts' signals",
            expect="deny",
        ),
    ]
    compiled = f"{prefix}{NEURON_COMPILED_PREFIX}{COMPILED_KEY}/"
    if host.server == "vllm-neuron":
        why = f"{WHY}: the compiled model (model_host.sh.tmpl)"
        result += [
            *list_objects(deployment, artifacts, f"{compiled}_COMPLETE", f"{why}: aws s3 ls the marker"),
            *get_object(deployment, artifacts, f"{compiled}model.pt", f"{why}: aws s3 sync loads it"),
            *put_object(deployment, artifacts, f"{compiled}model.pt", f"{why}: aws s3 sync uploads it"),
            *put_object(deployment, artifacts, f"{compiled}_COMPLETE", f"{why}: the marker, last"),
            denied_object(
                deployment,
                "s3:PutObject",
                artifacts,
                f"{prefix}config.json",
                "never over the weights (writes only under neuron-compiled/)",
            ),
        ]
    wheels = f"{wheelhouse_prefix()}cp310/"
    wheel = f"{wheels}vllm-0.31.0-cp38-abi3-manylinux_2_31_x86_64.whl"
    if host.server == "vllm-gpu":
        why = f"{WHY}: vLLM from the wheelhouse (model_host.sh.tmpl)"
        result += [
            *list_objects(deployment, artifacts, wheels, f"{why}: aws s3 sync lists it"),
            *get_object(deployment, artifacts, wheel, f"{why}: aws s3 sync reads each wheel"),
            denied_object(
                deployment,
                "s3:PutObject",
                artifacts,
                f"{compiled}model.pt",
                "GPU hosts compile nothing and write nothing",
            ),
            denied_object(
                deployment, "s3:PutObject", artifacts, wheel, "the wheelhouse is read only for hosts"
            ),
            denied_object(
                deployment,
                "s3:GetObject",
                artifacts,
                "wheels/vllm-0.0.1/cp310/vllm-0.0.1-py3-none-any.whl",
                "only the pinned vLLM version's wheels",
            ),
        ]
    else:
        result.append(
            denied_object(
                deployment,
                "s3:GetObject",
                artifacts,
                wheel,
                "Neuron hosts use the AMI's vLLM, never the wheelhouse",
            )
        )
    for other in hosts.values():
        if other.model.prefix != prefix:
            result.append(
                denied_object(
                    deployment,
                    "s3:PutObject",
                    artifacts,
                    f"{other.model.prefix}{NEURON_COMPILED_PREFIX}{COMPILED_KEY}/model.pt",
                    f"not another host's compiled model ({other.name})",
                )
            )
            result.append(
                denied_object(
                    deployment,
                    "s3:GetObject",
                    artifacts,
                    f"{other.model.prefix}config.json",
                    f"not another host's model ({other.name})",
                )
            )
    result += [
        Call(
            "s3:ListBucket",
            s3_arn(deployment, artifacts),
            "not the whole bucket",
            context={**TLS, "s3:prefix": "models/"},
            expect="deny",
        ),
        Call(
            "cloudwatch:PutMetricData",
            "*",
            "only the hosts' namespace",
            context={"cloudwatch:namespace": "AWS/EC2"},
            expect="deny",
        ),
        Call(
            "logs:PutLogEvents",
            deployment.arn("logs", f"log-group:another-log-group:log-stream:{INSTANCE}/boot"),
            "only the host's log group",
            expect="deny",
        ),
    ]
    return result


BUILDERS = (rows,)
