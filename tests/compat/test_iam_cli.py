"""IAM users, keys, groups and policies with the AWS CLI against Corral: the access-control
issue's flow (create a user, give it an inline policy, create its key) and list/get round trips."""

import json
import subprocess

OPS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ssm:Describe*", "ssm:Get*", "ssm:List*"], "Resource": "*"}],
}
CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def aws(corral, *args, check=True, env=None):
    proc = subprocess.run(["aws", *args], env=env or corral.cli_env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def out(corral, *args):
    return json.loads(aws(corral, *args).stdout)


def test_issue_flow_user_inline_policy_and_key(corral, tmp_path):
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps(OPS))

    user = out(corral, "iam", "create-user", "--user-name", "alice")["User"]
    assert user["Arn"] == f"arn:aws:iam::{corral.account_id}:user/alice"
    assert user["UserId"].startswith("AIDA")
    aws(corral, "iam", "put-user-policy", "--user-name", "alice", "--policy-name", "ops", "--policy-document", f"file://{ops}")
    key = out(corral, "iam", "create-access-key", "--user-name", "alice")["AccessKey"]
    assert key["UserName"] == "alice" and key["Status"] == "Active"
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40

    # Round trips.
    got = out(corral, "iam", "get-user-policy", "--user-name", "alice", "--policy-name", "ops")
    assert got["PolicyDocument"] == OPS  # URL-encoded on the wire, decoded by the CLI
    assert out(corral, "iam", "list-user-policies", "--user-name", "alice")["PolicyNames"] == ["ops"]
    assert out(corral, "iam", "get-user", "--user-name", "alice")["User"]["UserName"] == "alice"
    assert "alice" in [u["UserName"] for u in out(corral, "iam", "list-users")["Users"]]
    keys = out(corral, "iam", "list-access-keys", "--user-name", "alice")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in keys[0]

    # The new key signs requests as alice.
    env = corral.cli_env
    env.pop("AWS_PROFILE", None)
    env["AWS_ACCESS_KEY_ID"] = key["AccessKeyId"]
    env["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]
    env["AWS_CA_BUNDLE"] = str(corral.data_dir / "ca.pem")
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    who = json.loads(aws(corral, "sts", "get-caller-identity", "--endpoint-url", corral.endpoint, env=env).stdout)
    assert who["Arn"] == user["Arn"]

    # Deleting refuses while the key and policy exist, then works.
    proc = aws(corral, "iam", "delete-user", "--user-name", "alice", check=False)
    assert proc.returncode != 0 and "DeleteConflict" in proc.stderr
    aws(corral, "iam", "delete-access-key", "--user-name", "alice", "--access-key-id", key["AccessKeyId"])
    aws(corral, "iam", "delete-user-policy", "--user-name", "alice", "--policy-name", "ops")
    aws(corral, "iam", "delete-user", "--user-name", "alice")
    proc = aws(corral, "iam", "get-user", "--user-name", "alice", check=False)
    assert proc.returncode != 0 and "NoSuchEntity" in proc.stderr


def test_groups_and_managed_policies(corral, tmp_path):
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps(OPS))
    aws(corral, "iam", "create-user", "--user-name", "bob")
    group = out(corral, "iam", "create-group", "--group-name", "operators")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{corral.account_id}:group/operators"
    aws(corral, "iam", "add-user-to-group", "--group-name", "operators", "--user-name", "bob")
    got = out(corral, "iam", "get-group", "--group-name", "operators")
    assert [u["UserName"] for u in got["Users"]] == ["bob"]
    assert [g["GroupName"] for g in out(corral, "iam", "list-groups-for-user", "--user-name", "bob")["Groups"]] == ["operators"]

    policy = out(
        corral, "iam", "create-policy", "--policy-name", "ops", "--policy-document", f"file://{ops}",
        "--description", "operators",
    )["Policy"]
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{corral.account_id}:policy/ops"
    assert policy["DefaultVersionId"] == "v1"
    version = out(corral, "iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v1")["PolicyVersion"]
    assert version["Document"] == OPS and version["IsDefaultVersion"] is True
    v2 = out(
        corral, "iam", "create-policy-version", "--policy-arn", arn, "--policy-document", f"file://{ops}",
        "--set-as-default",
    )["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"] is True
    versions = out(corral, "iam", "list-policy-versions", "--policy-arn", arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v2", "v1"]

    aws(corral, "iam", "attach-group-policy", "--group-name", "operators", "--policy-arn", arn)
    aws(corral, "iam", "attach-user-policy", "--user-name", "bob", "--policy-arn", CORE)
    attached = out(corral, "iam", "list-attached-group-policies", "--group-name", "operators")["AttachedPolicies"]
    assert attached == [{"PolicyName": "ops", "PolicyArn": arn}]
    attached = out(corral, "iam", "list-attached-user-policies", "--user-name", "bob")["AttachedPolicies"]
    assert attached == [{"PolicyName": "AmazonSSMManagedInstanceCore", "PolicyArn": CORE}]
    assert out(corral, "iam", "get-policy", "--policy-arn", arn)["Policy"]["AttachmentCount"] == 1
    local = out(corral, "iam", "list-policies", "--scope", "Local")["Policies"]
    assert [p["PolicyName"] for p in local] == ["ops"]
    aws_managed = out(corral, "iam", "list-policies", "--scope", "AWS")["Policies"]
    assert CORE in [p["Arn"] for p in aws_managed]

    proc = aws(corral, "iam", "delete-policy", "--policy-arn", arn, check=False)
    assert proc.returncode != 0 and "DeleteConflict" in proc.stderr
    aws(corral, "iam", "detach-group-policy", "--group-name", "operators", "--policy-arn", arn)
    aws(corral, "iam", "delete-policy-version", "--policy-arn", arn, "--version-id", "v1")
    aws(corral, "iam", "delete-policy", "--policy-arn", arn)
    aws(corral, "iam", "remove-user-from-group", "--group-name", "operators", "--user-name", "bob")
    aws(corral, "iam", "delete-group", "--group-name", "operators")
    assert out(corral, "iam", "list-groups")["Groups"] == []

    aws(corral, "iam", "tag-user", "--user-name", "bob", "--tags", "Key=team,Value=ops")
    assert out(corral, "iam", "list-user-tags", "--user-name", "bob")["Tags"] == [{"Key": "team", "Value": "ops"}]


def readme_ops_policy():
    """The ops.json the README shows, read from the README itself so the two stay in step."""
    from conftest import ROOT

    text = (ROOT / "README.md").read_text()
    after = text.split("`ops.json` lets alice", 1)[1]
    block = after.split("```", 2)[1]
    return json.loads(block)


def test_readme_ops_policy_and_alices_own_profile(corral, tmp_path):
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps(readme_ops_policy()))
    aws(corral, "iam", "create-user", "--user-name", "alice")
    aws(corral, "iam", "put-user-policy", "--user-name", "alice", "--policy-name", "ops", "--policy-document", f"file://{ops}")
    key = out(corral, "iam", "create-access-key", "--user-name", "alice")["AccessKey"]

    # Her own ~/.aws files, filled in with `aws configure set` as the README shows.
    env = corral.cli_env
    env["AWS_CONFIG_FILE"] = str(tmp_path / "alice-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "alice-credentials")
    env.pop("AWS_PROFILE", None)
    for setting, value in [
        ("aws_access_key_id", key["AccessKeyId"]), ("aws_secret_access_key", key["SecretAccessKey"]),
        ("endpoint_url", corral.endpoint), ("ca_bundle", str(corral.data_dir / "ca.pem")), ("region", "us-east-1"),
    ]:
        aws(corral, "configure", "set", setting, value, "--profile", "alice", env=env)
    listed = json.loads(aws(corral, "ssm", "describe-instance-information", "--profile", "alice", env=env).stdout)
    assert listed["InstanceInformationList"] == []
    who = json.loads(aws(corral, "sts", "get-caller-identity", "--profile", "alice", env=env).stdout)
    assert who["Arn"].endswith(":user/alice")
    # Her policy lets her run commands only on machines tagged env=lab.
    proc = aws(corral, "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids",
               "mi-0123456789abcdef0", "--parameters", 'commands=["uptime"]', "--profile", "alice", env=env, check=False)
    assert proc.returncode != 0 and "AccessDeniedException" in proc.stderr, proc.stderr
    proc = aws(corral, "iam", "list-users", "--profile", "alice", env=env, check=False)
    assert proc.returncode != 0 and "AccessDenied" in proc.stderr
