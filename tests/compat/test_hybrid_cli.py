"""The AWS hybrid-environment guide's setup steps, with the AWS CLI against Corral."""

import json
import subprocess

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def aws(corral, *args, check=True):
    proc = subprocess.run(["aws", *args], env=corral.cli_env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def setup_role(corral, tmp_path, name="SSMServiceRole"):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(TRUST))
    out = json.loads(aws(corral, "iam", "create-role", "--role-name", name, "--assume-role-policy-document", f"file://{trust}").stdout)
    aws(corral, "iam", "attach-role-policy", "--role-name", name, "--policy-arn", CORE)
    return out


def test_service_role_and_activation(corral, tmp_path):
    role = setup_role(corral, tmp_path)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{corral.account_id}:role/SSMServiceRole"
    assert role["RoleId"].startswith("AROA")
    assert role["AssumeRolePolicyDocument"] == TRUST  # URL-encoded on the wire, decoded by the CLI

    attached = json.loads(aws(corral, "iam", "list-attached-role-policies", "--role-name", "SSMServiceRole").stdout)
    assert attached["AttachedPolicies"] == [{"PolicyName": "AmazonSSMManagedInstanceCore", "PolicyArn": CORE}]
    got = json.loads(aws(corral, "iam", "get-role", "--role-name", "SSMServiceRole").stdout)
    assert got["Role"]["RoleName"] == "SSMServiceRole"

    act = json.loads(
        aws(
            corral, "ssm", "create-activation", "--iam-role", "SSMServiceRole", "--registration-limit", "10",
            "--default-instance-name", "web", "--tags", "Key=env,Value=lab",
        ).stdout
    )
    assert len(act["ActivationCode"]) >= 20
    listed = json.loads(aws(corral, "ssm", "describe-activations").stdout)["ActivationList"]
    assert len(listed) == 1
    a = listed[0]
    assert a["ActivationId"] == act["ActivationId"]
    assert a["RegistrationLimit"] == 10 and a["RegistrationsCount"] == 0
    assert a["DefaultInstanceName"] == "web" and a["IamRole"] == "SSMServiceRole"
    assert a["Tags"] == [{"Key": "env", "Value": "lab"}]
    assert a["Expired"] is False
    assert "ActivationCode" not in a

    filtered = json.loads(
        aws(corral, "ssm", "describe-activations", "--filters", "FilterKey=IamRole,FilterValues=Other").stdout
    )["ActivationList"]
    assert filtered == []


def test_iam_errors_use_aws_codes(corral, tmp_path):
    setup_role(corral, tmp_path)
    trust = tmp_path / "trust.json"
    proc = aws(corral, "iam", "create-role", "--role-name", "ssmservicerole", "--assume-role-policy-document", f"file://{trust}", check=False)
    assert proc.returncode == 255 and "(EntityAlreadyExists)" in proc.stderr
    proc = aws(corral, "iam", "delete-role", "--role-name", "SSMServiceRole", check=False)
    assert "(DeleteConflict)" in proc.stderr
    proc = aws(corral, "iam", "get-role", "--role-name", "Nope", check=False)
    assert "(NoSuchEntity)" in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = aws(corral, "iam", "create-role", "--role-name", "Bad", "--assume-role-policy-document", f"file://{bad}", check=False)
    assert "(MalformedPolicyDocument)" in proc.stderr
    proc = aws(corral, "iam", "attach-role-policy", "--role-name", "SSMServiceRole", "--policy-arn", "arn:aws:iam::aws:policy/Nope", check=False)
    assert "(NoSuchEntity)" in proc.stderr
    aws(corral, "iam", "detach-role-policy", "--role-name", "SSMServiceRole", "--policy-arn", CORE)
    aws(corral, "iam", "delete-role", "--role-name", "SSMServiceRole")
    proc = aws(corral, "ssm", "create-activation", "--iam-role", "SSMServiceRole", check=False)
    assert "(ValidationException)" in proc.stderr and "Not existing role" in proc.stderr
