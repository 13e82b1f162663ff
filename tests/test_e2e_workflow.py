"""The e2e workflow (.github/workflows/e2e.yml) and its cleanup (.github/scripts/e2e_cleanup.py):
actionlint passes; doctor, deploy, smoke, then the destroy and cleanup that run whatever happened
before; the cleanup removes what a profile's stacks retain, by tag, against a moto server."""

from __future__ import annotations

import importlib.util
import json
import urllib.request

import boto3
import pytest
import yaml

from tests.support import REPO_ROOT
from tests.support.moto_server import moto_server
from tests.test_workflow import actionlint, triggers

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "e2e.yml"
CLEANUP = REPO_ROOT / ".github" / "scripts" / "e2e_cleanup.py"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actionlint_passes_the_e2e_workflow():
    status, findings = actionlint(WORKFLOW)
    assert findings == []
    assert status == 0


def test_it_runs_by_hand_or_weekly_with_oidc_and_no_overlap():
    document = workflow()
    assert set(triggers(document)) == {"workflow_dispatch", "schedule"}
    assert document["permissions"] == {"contents": "read", "id-token": "write"}
    assert document["concurrency"]["cancel-in-progress"] is False


def names(job: dict) -> list[str]:
    return [s.get("name", s.get("uses", "")) for s in job["steps"]]


def test_doctor_deploy_smoke_then_destroy_which_runs_even_when_smoke_fails():
    job = workflow()["jobs"]["e2e"]
    order = names(job)
    doctor, deploy, smoke, destroy = (
        order.index(n) for n in ("Doctor", "Deploy", "Smoke", "Destroy and remove what the stacks retained")
    )
    assert doctor < deploy < smoke < destroy
    steps = {s.get("name"): s for s in job["steps"]}
    for name in (
        "Destroy and remove what the stacks retained",
        "Assume the e2e role again",
        "Keep the smoke report",
    ):
        assert steps[name]["if"].startswith("always()"), name
    for name in ("Doctor", "Deploy", "Smoke"):
        assert "if" not in steps[name]  # a failure stops the steps up to the cleanup, not the cleanup
    destroy_script = steps["Destroy and remove what the stacks retained"]["run"]
    assert destroy_script.index("update-termination-protection") < destroy_script.index("cdk destroy")
    assert destroy_script.index("cdk destroy") < destroy_script.index("e2e_cleanup.py")
    assert steps["Assume the smoke role"]["with"]["role-chaining"] is True
    assert "genai-stack smoke" in steps["Smoke"]["run"]
    # Every AWS call in the profile's own region, read from the profile (customer-service is in
    # us-west-2, the others in us-east-1); the cleanup also looks in us-east-1 (cost stacks).
    for name in ("Assume the e2e role", "Assume the smoke role", "Assume the e2e role again"):
        assert steps[name]["with"]["aws-region"] == "${{ steps.name.outputs.region }}", name
    assert steps["Assume the e2e role"]["with"]["role-duration-seconds"] == 14400
    assert '"${AWS_REGION}" us-east-1' in destroy_script


def test_the_run_s_profile_is_a_renamed_copy_beside_the_built_in_one(tmp_path):
    """Its prompt files are read relative to the profile's folder, so the copy lives in profiles/; its
    region comes from the profile itself."""
    import subprocess
    import sys

    naming = {s.get("name"): s for s in workflow()["jobs"]["e2e"]["steps"]}[
        "Name this run's copy of the profile"
    ]
    script = naming["run"].replace(".venv/bin/python", sys.executable)
    workdir = tmp_path / "repo"
    (workdir / "profiles").mkdir(parents=True)
    import shutil

    shutil.copytree(REPO_ROOT / "profiles", workdir / "profiles", dirs_exist_ok=True)
    output = tmp_path / "out"
    result = subprocess.run(  # noqa: S603 - bash on the workflow's own script
        [shutil.which("bash") or "/bin/bash", "-c", script],
        cwd=workdir,
        env={
            **__import__("os").environ,
            "RUN_ID": "4242",
            "PROFILE": "managed-api",
            "GITHUB_OUTPUT": str(output),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert output.read_text().split() == ["name=e2e4242", "region=us-east-1"]
    from genai_stack.config import load_profile

    copy = load_profile(str(workdir / "profiles" / "e2e4242.yaml"))  # its prompt files resolve
    assert copy.name == "e2e4242"


def test_scripts_take_event_data_only_through_the_environment():
    for each in workflow()["jobs"]["e2e"]["steps"]:
        assert "${{" not in each.get("run", ""), each.get("name")


# --------------------------------------------------------------------------------------------------
# The cleanup against a moto server


def load_cleanup():
    spec = importlib.util.spec_from_file_location("e2e_cleanup", CLEANUP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def client(endpoint):
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(reset).close()  # noqa: S310 - this module's moto server
    made = {}

    def make(service: str):
        if service not in made:
            made[service] = boto3.client(
                service,
                region_name="us-east-1",
                endpoint_url=endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return made[service]

    return make


TAGS = [{"Key": "genai-stack:profile", "Value": "e2e42"}]


def retained(client) -> dict[str, str]:
    """What a run's stacks leave behind, and one resource of another profile."""
    s3 = client("s3")
    s3.create_bucket(Bucket="e2e42-foundation-databucket-abc", ObjectLockEnabledForBucket=True)
    s3.put_bucket_tagging(Bucket="e2e42-foundation-databucket-abc", Tagging={"TagSet": TAGS})
    s3.put_object(
        Bucket="e2e42-foundation-databucket-abc",
        Key="locked.txt",
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate="2099-01-01T00:00:00Z",
        ContentMD5="nQmeS9Sk6tgDO0M0FbwbjA==",
    )
    s3.put_object(Bucket="e2e42-foundation-databucket-abc", Key="plain.txt", Body=b"y")
    s3.delete_object(Bucket="e2e42-foundation-databucket-abc", Key="plain.txt")  # a delete marker too
    s3.create_bucket(Bucket="team-foundation-databucket-def")
    s3.put_bucket_tagging(
        Bucket="team-foundation-databucket-def",
        Tagging={"TagSet": [{"Key": "genai-stack:profile", "Value": "team"}]},
    )
    client("logs").create_log_group(
        logGroupName="e2e42-foundation-flowlogs", tags={"genai-stack:profile": "e2e42"}
    )
    client("dynamodb").create_table(
        TableName="e2e42-foundation-keys",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=TAGS,
    )
    secret = client("secretsmanager").create_secret(Name="e2e42-login", SecretString="{}", Tags=TAGS)["ARN"]
    # Aurora's own admin secret: it goes with its cluster, DeleteSecret would be refused.
    aurora = client("secretsmanager").create_secret(Name="rds!cluster-0a1b", SecretString="{}", Tags=TAGS)[
        "ARN"
    ]
    topic = client("sns").create_topic(Name="e2e42-foundation-alarms", Tags=TAGS)["TopicArn"]
    key = client("kms").create_key(Tags=[{"TagKey": "genai-stack:profile", "TagValue": "e2e42"}])[
        "KeyMetadata"
    ]["Arn"]
    return {"secret": secret, "key": key, "aurora": aurora, "topic": topic}


def test_the_cleanup_removes_what_the_run_retained_and_nothing_of_another_profile(client):
    module = load_cleanup()
    made = retained(client)
    problems = module.clean("e2e42", client)
    assert problems == []
    assert [b["Name"] for b in client("s3").list_buckets()["Buckets"]] == ["team-foundation-databucket-def"]
    assert client("logs").describe_log_groups()["logGroups"] == []
    assert client("dynamodb").list_tables()["TableNames"] == []
    assert client("kms").describe_key(KeyId=made["key"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with pytest.raises(client("secretsmanager").exceptions.ResourceNotFoundException):
        client("secretsmanager").describe_secret(SecretId=made["secret"])
    assert client("sns").list_topics()["Topics"] == []
    assert client("secretsmanager").describe_secret(SecretId=made["aurora"])["Name"] == "rds!cluster-0a1b"
    assert module.left("e2e42", client) == []  # Aurora's secret is on its way out with its cluster


def test_what_cannot_be_removed_is_reported_and_listed(client, capsys):
    module = load_cleanup()
    client("logs").create_log_group(
        logGroupName="e2e42-foundation-flowlogs", tags={"genai-stack:profile": "e2e42"}
    )

    class Refusing:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            if name == "delete_log_group":
                raise RuntimeError("AccessDenied: logs:DeleteLogGroup")
            return getattr(self.real, name)

    def refusing(service: str):
        return Refusing(client(service)) if service == "logs" else client(service)

    problems = module.clean("e2e42", refusing)
    assert len(problems) == 1
    assert "AccessDenied: logs:DeleteLogGroup" in problems[0]
    assert [arn.split(":")[2] for arn in module.left("e2e42", client)] == ["logs"]
    assert json.dumps(problems)  # printable as the workflow's warnings


# --------------------------------------------------------------------------------------------------
# The weekly catalog refresh

CATALOG = REPO_ROOT / ".github" / "workflows" / "catalog.yml"


def test_actionlint_passes_the_catalog_workflow():
    status, findings = actionlint(CATALOG)
    assert findings == []
    assert status == 0


def test_the_refresh_runs_weekly_and_opens_a_pull_request_only_when_a_table_changed():
    document = yaml.safe_load(CATALOG.read_text())
    assert set(triggers(document)) == {"workflow_dispatch", "schedule"}
    steps = {s.get("name"): s for s in document["jobs"]["refresh"]["steps"] if s.get("name")}
    assert "genai-stack catalog refresh" in steps["Refresh"]["run"]
    assert "--check" not in steps["Refresh"]["run"]
    assert "make docs-cost" in steps["Refresh"]["run"]  # the cost pages move with the prices
    opening = steps["Open a pull request when a table changed"]["run"]
    assert opening.index("git diff --quiet") < opening.index("gh pr create")
    assert "exit 0" in opening.split("gh pr create")[0]  # nothing changed: no pull request
    for each in document["jobs"]["refresh"]["steps"]:
        assert "${{" not in each.get("run", ""), each.get("name")


def test_objects_s3_refuses_to_delete_fail_the_bucket_by_name():
    module = load_cleanup()

    class Refusing:
        def get_paginator(self, name):
            class Pages:
                def paginate(self, **_):
                    return [{"Versions": [{"Key": "held.txt", "VersionId": "v1"}]}]

            return Pages()

        def delete_objects(self, **_):
            return {
                "Errors": [
                    {"Key": "held.txt", "VersionId": "v1", "Code": "AccessDenied", "Message": "Access Denied"}
                ]
            }

        def delete_bucket(self, **_):
            pytest.fail("a bucket with objects left is not deleted")

    with pytest.raises(RuntimeError, match=r"1 object\(s\) not deleted, e\.g\. held\.txt: Access Denied"):
        module.empty_and_delete_bucket(Refusing(), "e2e42-foundation-databucket-abc")
