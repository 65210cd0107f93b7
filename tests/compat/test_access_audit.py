"""IAM decides every call and CloudTrail records it: boto3 and the AWS CLI against Corral."""

import json
import subprocess
import time

import boto3
import botocore.exceptions
import pytest

TIER = "/ssm/managed-instance/activation-tier"


def aws(corral, *args, env=None, check=True):
    proc = subprocess.run(["aws", *args], env=env or corral.cli_env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def make_user(corral, name, policy_arn):
    aws(corral, "iam", "create-user", "--user-name", name)
    aws(corral, "iam", "attach-user-policy", "--user-name", name, "--policy-arn", policy_arn)
    key = json.loads(aws(corral, "iam", "create-access-key", "--user-name", name).stdout)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def client(corral, service, key):
    return boto3.client(
        service,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="us-east-1",
        endpoint_url=corral.endpoint,
        verify=str(corral.data_dir / "ca.pem"),
    )


def test_read_only_user_with_boto3(corral):
    key = make_user(corral, "alice", "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess")
    ssm = client(corral, "ssm", key)
    assert ssm.get_service_setting(SettingId=TIER)["ServiceSetting"]["SettingValue"] == "standard"
    ssm.describe_instance_information()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    err = e.value.response["Error"]
    assert err["Code"] == "AccessDeniedException"
    assert err["Message"].startswith(f"User: arn:aws:iam::{corral.account_id}:user/alice is not authorized to perform: ssm:UpdateServiceSetting")
    iam = client(corral, "iam", key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_user(UserName="mallory")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_lookup_events_with_the_cli(corral):
    key = make_user(corral, "alice", "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess")
    ssm = client(corral, "ssm", key)
    with pytest.raises(botocore.exceptions.ClientError):
        ssm.update_service_setting(SettingId=TIER, SettingValue="advanced")
    start = int(time.time()) - 3600
    out = json.loads(
        aws(corral, "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=Username,AttributeValue=alice").stdout
    )
    events = out["Events"]
    assert events, "alice's calls are recorded"
    denied = [e for e in events if e["EventName"] == "UpdateServiceSetting"]
    assert len(denied) == 1
    record = json.loads(denied[0]["CloudTrailEvent"])
    assert record["errorCode"] == "AccessDeniedException"
    assert record["userIdentity"]["userName"] == "alice"
    assert denied[0]["Username"] == "alice"
    assert denied[0]["ReadOnly"] == "false"
    assert denied[0]["AccessKeyId"] == key[0]

    out = json.loads(
        aws(
            corral, "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateAccessKey",
            "--start-time", str(start),
        ).stdout
    )
    assert [e["EventName"] for e in out["Events"]] == ["CreateAccessKey"]
    created = json.loads(out["Events"][0]["CloudTrailEvent"])
    assert created["responseElements"]["accessKey"]["secretAccessKey"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert key[1] not in out["Events"][0]["CloudTrailEvent"]

    # The CLI pages through everything (small pages force several NextTokens).
    everything = json.loads(aws(corral, "cloudtrail", "lookup-events", "--page-size", "3").stdout)["Events"]
    ids = [e["EventId"] for e in everything]
    assert len(ids) == len(set(ids)) >= 6


def test_audit_verify_and_export(corral, tmp_path):
    make_user(corral, "alice", "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess")
    binary = corral.proc.args[0]
    ok = subprocess.run([binary, "audit", "verify", "--data-dir", str(corral.data_dir)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok:" in ok.stdout
    out = tmp_path / "trail.jsonl"
    exp = subprocess.run(
        [binary, "audit", "export", "--data-dir", str(corral.data_dir), "--output", str(out)], capture_output=True, text=True, timeout=60
    )
    assert exp.returncode == 0, exp.stderr
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert any(r["eventName"] == "CreateUser" for r in lines)
